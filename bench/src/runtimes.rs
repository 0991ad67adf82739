//! Cold starts per runtime: the same echo function written for each
//! runtime lambdabox serves, each started cold K times on a controller
//! without prewarmed containers and K times on one with them.
//!
//! There is no baseline to divide by here (RIE has no runtimes of its own):
//! the table shows what a user of each language waits for on this machine,
//! and the prewarmed column shows how much of it is the runtime itself. For
//! runtimes lambdabox starts ahead of need in prewarmed containers, a third
//! controller (`--prewarm-runtimes false`) measures the same prewarmed cold
//! start with the runtime started only at specialization: before and after,
//! in one run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::controller::Controller;
use crate::load;
use crate::report::{ColdStarts, Maybe};
use crate::{cold_starts, Ctx, Plan};

/// One runtime's echo function.
struct Echo {
    runtime: &'static str,
    /// What runs the handler, for the table.
    client: &'static str,
    handler: &'static str,
    /// The function's zip, or why it cannot be built on this machine.
    zip: Result<Vec<u8>>,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeCold {
    pub runtime: &'static str,
    pub client: &'static str,
    pub cold: Maybe<ColdStarts>,
    pub prewarmed: Maybe<ColdStarts>,
    /// Prewarmed, but the language runtime started at specialization
    /// (only for runtimes lambdabox otherwise starts ahead of need).
    pub prewarmed_runtime_late: Maybe<ColdStarts>,
}

/// The controllers the table is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    /// No prewarmed containers.
    Cold,
    /// Prewarmed containers, the runtime started in them at specialization.
    RuntimeLate,
    /// Prewarmed containers, the runtime started ahead where it can be.
    Prewarmed,
}

impl Pool {
    fn controller(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Pool::Cold => ("lambdabox-runtimes", &["--prewarm", "0"]),
            Pool::RuntimeLate => {
                ("lambdabox-runtimes-prewarm-late", &["--prewarm", "1", "--prewarm-runtimes", "false"])
            }
            Pool::Prewarmed => ("lambdabox-runtimes-prewarm", &["--prewarm", "1"]),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Pool::Cold => "",
            Pool::RuntimeLate => " prewarmed (runtime started late)",
            Pool::Prewarmed => " prewarmed",
        }
    }
}

/// Whether lambdabox starts `runtime`'s language runtime ahead of need.
fn started_ahead(runtime: &str) -> bool {
    lambdabox::function::Runtime::find(runtime).is_ok_and(|r| r.prestart.is_some())
}

const PYTHON: &str = "def handler(event, context):\n    return event\n";
const NODE: &str = "export const handler = async (event) => event;\n";
const RUBY: &str = "def handler(event:, context:)\n  event\nend\n";
/// A plain method taking and returning the event: no library needed to compile it.
const JAVA: &str = "package bench;\n\npublic class Echo {\n    public java.util.Map<String, Object> handle(java.util.Map<String, Object> event) {\n        return event;\n    }\n}\n";

fn echoes(work: &Path) -> Vec<Echo> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let java = || java_zip(work);
    let go = || go_zip(&root.join("tests/fixtures/provided-go/function"), work);
    let shell = || zip_dir(&root.join("tests/fixtures/provided/function"));
    vec![
        Echo { runtime: "python3.11", client: "awslambdaric", handler: "app.handler", zip: zip(&[("app.py", PYTHON)]) },
        Echo { runtime: "python3.13", client: "awslambdaric", handler: "app.handler", zip: zip(&[("app.py", PYTHON)]) },
        Echo {
            runtime: "nodejs18.x",
            client: "aws-lambda-ric",
            handler: "index.handler",
            zip: zip(&[("index.mjs", NODE)]),
        },
        Echo {
            runtime: "nodejs20.x",
            client: "aws-lambda-ric",
            handler: "index.handler",
            zip: zip(&[("index.mjs", NODE)]),
        },
        Echo { runtime: "ruby3.1", client: "lambdabox (Ruby)", handler: "app.handler", zip: zip(&[("app.rb", RUBY)]) },
        Echo { runtime: "ruby3.3", client: "lambdabox (Ruby)", handler: "app.handler", zip: zip(&[("app.rb", RUBY)]) },
        Echo {
            runtime: "java17",
            client: "aws-lambda-java-runtime-interface-client",
            handler: "bench.Echo::handle",
            zip: java(),
        },
        Echo {
            runtime: "java21",
            client: "aws-lambda-java-runtime-interface-client",
            handler: "bench.Echo::handle",
            zip: java(),
        },
        Echo { runtime: "provided.al2023", client: "Go, aws-lambda-go", handler: "echo", zip: go() },
        Echo { runtime: "provided", client: "shell bootstrap (curl)", handler: "echo", zip: shell() },
    ]
}

/// Every runtime (or those `only` names), cold without and with a
/// prewarmed pool.
pub async fn measure(
    plan: &Plan,
    ctx: &Ctx,
    memory_mb: u32,
    client: &load::Client,
    only: &[String],
) -> Result<Vec<RuntimeCold>> {
    let work = ctx.out.join("runtimes");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let mut echoes = echoes(&work);
    echoes.retain(|e| only.is_empty() || only.iter().any(|o| o == e.runtime));
    let mut rows: Vec<RuntimeCold> = echoes
        .iter()
        .map(|e| {
            let missing = e.zip.as_ref().err().map(|why| Maybe::NotAvailable { reason: format!("{why:#}") });
            RuntimeCold {
                runtime: e.runtime,
                client: e.client,
                cold: missing.clone().unwrap_or(Maybe::NotAvailable { reason: "not run".into() }),
                prewarmed: missing.clone().unwrap_or(Maybe::NotAvailable { reason: "not run".into() }),
                prewarmed_runtime_late: missing
                    .unwrap_or(Maybe::NotAvailable { reason: "not started ahead of need".into() }),
            }
        })
        .collect();
    let late = crate::controller::serve_supports(&ctx.lambdabox, "--prewarm-runtimes").await;
    for pool in [Pool::Cold, Pool::RuntimeLate, Pool::Prewarmed] {
        let wanted = |e: &Echo| pool != Pool::RuntimeLate || (late && started_ahead(e.runtime));
        if !echoes.iter().any(|e| e.zip.is_ok() && wanted(e)) {
            continue;
        }
        let (name, extra) = pool.controller();
        let lambdabox = ctx.controller(name, extra).await?;
        for (echo, row) in echoes.iter().zip(rows.iter_mut()) {
            let Ok(zip) = &echo.zip else { continue };
            if !wanted(echo) {
                continue;
            }
            let cold = one_runtime(plan, ctx, &lambdabox, echo, zip, memory_mb, client, pool).await;
            let slot = match pool {
                Pool::Cold => &mut row.cold,
                Pool::RuntimeLate => &mut row.prewarmed_runtime_late,
                Pool::Prewarmed => &mut row.prewarmed,
            };
            *slot = match cold {
                Ok(c) => Maybe::Measured { value: c },
                Err(e) => Maybe::NotAvailable { reason: format!("{e:#}") },
            };
        }
        lambdabox.stop().await?;
    }
    Ok(rows)
}

#[allow(clippy::too_many_arguments)]
async fn one_runtime(
    plan: &Plan,
    ctx: &Ctx,
    lambdabox: &Controller,
    echo: &Echo,
    zip: &[u8],
    memory_mb: u32,
    client: &load::Client,
    pool: Pool,
) -> Result<ColdStarts> {
    let name = echo.runtime.replace('.', "_");
    lambdabox.create_function_from(&name, echo.runtime, echo.handler, zip, memory_mb).await?;
    // The first start also reads the image from disk; it is not counted.
    lambdabox.target(client, &name)?.invoke().await.with_context(|| format!("{}: first invocation", echo.runtime))?;
    let who = format!("{}{}", echo.runtime, pool.label());
    let k = if pool == Pool::Prewarmed { plan.prewarmed_k } else { plan.runtime_cold_k };
    step!("{who}: {k} forced cold starts");
    cold_starts(plan, ctx, k, lambdabox, &name, client, &who).await
}

/// A zip of `(name, contents)` files.
pub(crate) fn zip(files: &[(&str, &str)]) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, body) in files {
        w.start_file(*name, zip::write::SimpleFileOptions::default().unix_permissions(0o644))?;
        w.write_all(body.as_bytes())?;
    }
    Ok(w.finish()?.into_inner())
}

/// A folder zipped as `lambdabox deploy` zips it.
fn zip_dir(dir: &Path) -> Result<Vec<u8>> {
    lambdabox::cli::code_zip(dir).with_context(|| format!("zipping {}", dir.display()))
}

/// The Java echo, compiled by the java17 image's javac (the JDK is in the
/// image) so the bench needs no JDK of its own.
fn java_zip(work: &Path) -> Result<Vec<u8>> {
    let src = work.join("java");
    std::fs::create_dir_all(src.join("bench"))?;
    std::fs::write(src.join("bench/Echo.java"), JAVA)?;
    let classes = work.join("java-classes");
    std::fs::create_dir_all(&classes)?;
    let status = Command::new("docker")
        .args(["run", "--rm", "--network", "none", "-v"])
        .arg(format!("{}:/src:ro", std::fs::canonicalize(&src)?.display()))
        .arg("-v")
        .arg(format!("{}:/out", std::fs::canonicalize(&classes)?.display()))
        .args(["lambdabox/java17:latest", "javac", "-d", "/out", "/src/bench/Echo.java"])
        .status()
        .context("running javac in lambdabox/java17 (docker CLI)")?;
    if !status.success() {
        bail!("javac in lambdabox/java17 failed ({status})");
    }
    zip_dir(&classes)
}

/// The Go conformance fixture (aws-lambda-go; `_HANDLER=echo` echoes),
/// built as Lambda's Go users build it.
fn go_zip(source: &Path, work: &Path) -> Result<Vec<u8>> {
    // Absolute: go runs in the fixture's folder.
    let out: PathBuf = std::path::absolute(work.join("go"))?;
    std::fs::create_dir_all(&out)?;
    let status = Command::new("go")
        .args(["build", "-tags", "lambda.norpc", "-trimpath", "-o"])
        .arg(out.join("bootstrap"))
        .arg(".")
        .current_dir(source)
        .envs([("GOOS", "linux"), ("GOARCH", "amd64"), ("CGO_ENABLED", "0")])
        .status()
        .context("no Go toolchain (go on PATH)")?;
    if !status.success() {
        bail!("go build of {} failed ({status})", source.display());
    }
    zip_dir(&out)
}
