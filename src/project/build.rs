//! Dependency builds, as `sam build --use-container` does them: the
//! manifest's tool runs inside a build image made from the function's own
//! runtime image (`lambdabox/build-<runtime>`: the runtime image plus pip,
//! npm or bundler, and make), so native wheels and modules match the
//! runtime. Go and Rust `provided` functions are compiled on the host
//! instead (static x86_64 Linux binaries named `bootstrap`), since the
//! images carry no toolchains.
//!
//! `Metadata.BuildMethod: makefile` runs the folder's own `make
//! build-<LogicalId>` with `ARTIFACTS_DIR` set, as SAM does: in the build
//! image for interpreted runtimes, on the host for `provided` (where the
//! compilers are). What it leaves in `ARTIFACTS_DIR` is the whole package.
//!
//! Results are cached under `.lambdabox/deps/<hash>` beside the template,
//! by the hash of the manifest and lockfile (for compiled code and
//! Makefiles, of every source file): an unchanged project rebuilds nothing.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Bump to rebuild every cached result (a recipe changed).
const RECIPE_VERSION: &str = "2";

/// Folders never zipped or watched: build output and tool caches.
pub const SKIPPED_DIRS: &[&str] = &[".lambdabox", ".aws-sam", ".git", "__pycache__"];

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{tool} failed for {dir}:\n{output}")]
    Tool { tool: String, dir: String, output: String },
    #[error("cannot run {tool}: {error}")]
    Spawn { tool: String, error: std::io::Error },
    #[error("{0}: no such folder")]
    Missing(String),
    #[error("build I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
}

/// What builds a function's dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manifest {
    /// `requirements.txt`: `pip install -r … -t`.
    Pip,
    /// `package.json`: `npm ci` with a lockfile, else `npm install`.
    Npm,
    /// `Gemfile`: `bundle install` into `vendor/bundle`.
    Bundler,
    /// `go.mod` for `provided`: `go build` on the host.
    Go,
    /// `Cargo.toml` for `provided`: `cargo build --release` on the host.
    Cargo,
    /// `Metadata.BuildMethod: makefile`: the folder's `make build-<LogicalId>`.
    Makefile,
}

/// One folder to build: what a function's `CodeUri` or a layer's
/// `ContentUri` names, with the runtime it is for.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub dir: &'a Path,
    /// The runtime whose manifest is looked for and whose image builds it
    /// (empty when unknown: a layer without CompatibleRuntimes).
    pub runtime: &'a str,
    /// `Some(logical id)` for `BuildMethod: makefile`: `make build-<id>`.
    pub makefile_of: Option<&'a str>,
}

impl Manifest {
    /// The manifest in `dir` that `runtime` builds, if any.
    pub fn detect(dir: &Path, runtime: &str) -> Option<Manifest> {
        let has = |f: &str| dir.join(f).is_file();
        match runtime {
            r if r.starts_with("python") && has("requirements.txt") => Some(Manifest::Pip),
            r if r.starts_with("nodejs") && has("package.json") => Some(Manifest::Npm),
            r if r.starts_with("ruby") && has("Gemfile") => Some(Manifest::Bundler),
            r if r.starts_with("provided") && has("go.mod") => Some(Manifest::Go),
            r if r.starts_with("provided") && has("Cargo.toml") => Some(Manifest::Cargo),
            _ => None,
        }
    }

    fn tool(self) -> &'static str {
        match self {
            Manifest::Pip => "pip install",
            Manifest::Npm => "npm",
            Manifest::Bundler => "bundle install",
            Manifest::Go => "go build",
            Manifest::Cargo => "cargo build",
            Manifest::Makefile => "make",
        }
    }

    /// Compiled functions ship the binary alone, not their sources; a
    /// Makefile's artifacts are the whole package.
    fn replaces_source(self) -> bool {
        matches!(self, Manifest::Go | Manifest::Cargo | Manifest::Makefile)
    }
}

/// What goes into a function's zip: its folder, then the built
/// dependencies over it.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub source: Option<PathBuf>,
    pub deps: Option<PathBuf>,
    /// The source's own `node_modules` is left out when npm built one.
    pub skip_node_modules: bool,
}

/// Build `job` (cached under `cache`), telling `progress` what runs.
pub fn build(job: Job<'_>, cache: &Path, progress: &dyn Fn(&str)) -> Result<Artifact, BuildError> {
    let Job { dir, runtime, .. } = job;
    if !dir.is_dir() {
        return Err(BuildError::Missing(dir.display().to_string()));
    }
    let manifest = match job.makefile_of {
        Some(_) if dir.join("Makefile").is_file() => Manifest::Makefile,
        Some(_) => return Err(BuildError::Missing(format!("{}/Makefile (BuildMethod is makefile)", dir.display()))),
        None => match Manifest::detect(dir, runtime) {
            Some(m) => m,
            None => return Ok(Artifact { source: Some(dir.to_path_buf()), deps: None, skip_node_modules: false }),
        },
    };
    let key = cache_key(job, manifest)?;
    let out = cache.join("deps").join(&key[..16]);
    if out.is_dir() {
        progress(&format!("{}: build unchanged (cached)", dir.display()));
    } else {
        let shown = if runtime.is_empty() { String::new() } else { format!(" for {runtime}") };
        progress(&format!("{}: {}{shown}…", dir.display(), manifest.tool()));
        std::fs::create_dir_all(cache.join("deps"))?;
        let temp = tempfile::Builder::new().prefix(".building-").tempdir_in(cache.join("deps"))?;
        run(job, manifest, temp.path(), cache)?;
        std::fs::rename(temp.keep(), &out)?;
        // A tool that writes into the source (cargo's first Cargo.lock)
        // changes the key: the result is the same build under that key too.
        let after = cache_key(job, manifest)?;
        let also = cache.join("deps").join(&after[..16]);
        if after != key && !also.exists() {
            std::os::unix::fs::symlink(&key[..16], &also)?;
        }
        progress(&format!("{}: {} done", dir.display(), manifest.tool()));
    }
    Ok(Artifact {
        source: (!manifest.replaces_source()).then(|| dir.to_path_buf()),
        deps: Some(out),
        skip_node_modules: manifest == Manifest::Npm,
    })
}

/// The manifest and lockfile (or, for compiled code and Makefiles, every
/// file) hashed with the runtime, the make target and the recipe.
fn cache_key(job: Job<'_>, manifest: Manifest) -> Result<String, BuildError> {
    let Job { dir, runtime, makefile_of } = job;
    let mut hash = Sha256::new();
    hash.update(format!("{RECIPE_VERSION}\0{runtime}\0{manifest:?}\0{}\0", makefile_of.unwrap_or_default()));
    let files: Vec<PathBuf> = match manifest {
        Manifest::Pip => vec!["requirements.txt".into()],
        Manifest::Npm => vec!["package.json".into(), "package-lock.json".into()],
        Manifest::Bundler => vec!["Gemfile".into(), "Gemfile.lock".into()],
        Manifest::Go | Manifest::Cargo | Manifest::Makefile => files_of(dir, &["target"])?.into_keys().collect(),
    };
    for rel in files {
        if let Ok(bytes) = std::fs::read(dir.join(&rel)) {
            hash.update(rel.to_string_lossy().as_bytes());
            hash.update([0]);
            hash.update(Sha256::digest(&bytes));
        }
    }
    Ok(hex::encode(hash.finalize()))
}

fn run(job: Job<'_>, manifest: Manifest, out: &Path, cache: &Path) -> Result<(), BuildError> {
    let Job { dir, runtime, makefile_of } = job;
    let script = match manifest {
        Manifest::Pip => "pip install --no-cache-dir --disable-pip-version-check --break-system-packages \
                          -r /src/requirements.txt -t /out"
            .to_owned(),
        Manifest::Npm => "cp /src/package.json /out/ && { [ ! -f /src/package-lock.json ] || cp /src/package-lock.json /out/; } \
                          && cd /out && if [ -f package-lock.json ]; then npm ci --omit=dev; else npm install --omit=dev; fi \
                          && rm -f package.json package-lock.json"
            .to_owned(),
        Manifest::Bundler => "cp /src/Gemfile /out/ && { [ ! -f /src/Gemfile.lock ] || cp /src/Gemfile.lock /out/; } \
                              && cd /out && bundle config set --local path vendor/bundle \
                              && bundle config set --local without 'development test' && bundle install \
                              && rm -rf Gemfile Gemfile.lock .bundle"
            .to_owned(),
        Manifest::Go => return host_go(dir, out),
        Manifest::Cargo => return host_cargo(dir, out, cache),
        Manifest::Makefile => {
            let target = format!("build-{}", makefile_of.unwrap_or_default());
            if !in_container(runtime) {
                return host_make(dir, &target, out);
            }
            // A scratch copy: the source is mounted read-only, and recipes
            // write beside their inputs.
            format!("cp -a /src/. /tmp/work/ && cd /tmp/work && make {target}")
        }
    };
    let image = build_image(runtime)?;
    let user = format!("{}:{}", rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    let mut cmd = Command::new("docker");
    cmd.args([
        "run",
        "--rm",
        "--network",
        "bridge",
        "-u",
        &user,
        "-e",
        "HOME=/tmp",
        "-e",
        "ARTIFACTS_DIR=/out",
        "-e",
        "npm_config_update_notifier=false",
    ])
    .arg("-v")
    .arg(format!("{}:/src:ro", std::path::absolute(dir)?.display()))
    .arg("-v")
    .arg(format!("{}:/out", std::path::absolute(out)?.display()))
    .args(["--entrypoint", "/bin/sh", &image, "-c", &script]);
    let hint = if manifest == Manifest::Bundler { " (is rubygems.org reachable from containers?)" } else { "" };
    checked(cmd, &format!("{}{hint}", manifest.tool()), dir)
}

/// Whether `runtime`'s builds run in its build image: interpreted
/// runtimes, whose native modules must match the image. `provided` (and
/// an unknown runtime) builds on the host, where the compilers are.
fn in_container(runtime: &str) -> bool {
    ["python", "nodejs", "ruby"].iter().any(|p| runtime.starts_with(p))
}

/// `make TARGET` on the host in a scratch copy of `dir`, with
/// `ARTIFACTS_DIR` set to `out`.
fn host_make(dir: &Path, target: &str, out: &Path) -> Result<(), BuildError> {
    let scratch = tempfile::Builder::new().prefix("lambdabox-make-").tempdir()?;
    for (rel, full) in files_of(dir, &[])? {
        let to = scratch.path().join(&rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&full, &to)?;
    }
    let mut cmd = Command::new("make");
    cmd.arg(target).current_dir(scratch.path()).env("ARTIFACTS_DIR", std::path::absolute(out)?);
    checked(cmd, &format!("make {target}"), dir)
}

/// Run `cmd`; its output is the error when it fails.
fn checked(mut cmd: Command, tool: &str, dir: &Path) -> Result<(), BuildError> {
    let output = cmd.output().map_err(|error| BuildError::Spawn { tool: tool.to_owned(), error })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Err(BuildError::Tool { tool: tool.to_owned(), dir: dir.display().to_string(), output: text.trim_end().to_owned() })
}

/// `lambdabox/build-<image>`: the runtime image plus its package tool,
/// built once (and again when the runtime image changes).
fn build_image(runtime: &str) -> Result<String, BuildError> {
    let found = crate::function::Runtime::find(runtime)
        .map_err(|e| BuildError::Spawn { tool: "docker".into(), error: std::io::Error::other(e.to_string()) })?;
    let base = crate::images::runtime_image(found);
    let tag = format!("lambdabox/build-{}:latest", found.image);
    let packages = match found.image {
        i if i.starts_with("python") => "python3-pip",
        i if i.starts_with("nodejs") => "npm",
        i if i.starts_with("ruby") => "ruby-bundler",
        _ => "",
    };
    let dockerfile = format!(
        "FROM {base}\nRUN set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update; \
         apt-get install -y --no-install-recommends {packages} make ca-certificates; rm -rf /var/lib/apt/lists/*\n"
    );
    let base_id = inspect(&base, "{{.Id}}")
        .ok_or_else(|| BuildError::Missing(format!("image {base} (run `lambdabox images build {runtime}`)")))?;
    let hash = hex::encode(Sha256::digest(format!("{dockerfile}\0{base_id}")));
    if inspect(&tag, "{{index .Config.Labels \"lambdabox.build\"}}").as_deref() == Some(hash.as_str()) {
        return Ok(tag);
    }
    let mut cmd = Command::new("docker");
    cmd.args(["build", "-q", "-t", &tag, "--label", &format!("lambdabox.build={hash}"), "-"]);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("Dockerfile");
    std::fs::write(&file, dockerfile)?;
    cmd.stdin(std::fs::File::open(&file)?);
    checked(cmd, &format!("docker build {tag}"), dir.path())?;
    Ok(tag)
}

fn inspect(image: &str, format: &str) -> Option<String> {
    let out = Command::new("docker").args(["image", "inspect", "-f", format, image]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `go build` for linux/amd64 without cgo: a static `bootstrap`.
fn host_go(dir: &Path, out: &Path) -> Result<(), BuildError> {
    let mut cmd = Command::new("go");
    cmd.args(["build", "-tags", "lambda.norpc", "-o"])
        .arg(std::path::absolute(out)?.join("bootstrap"))
        .arg(".")
        .current_dir(dir)
        .envs([("GOOS", "linux"), ("GOARCH", "amd64"), ("CGO_ENABLED", "0")]);
    checked(cmd, "go build", dir)
}

/// `cargo build --release` for x86_64-unknown-linux-gnu, statically
/// linked (`+crt-static`, as lambdabox-init is built): the binary runs on
/// any image's glibc. The package's first binary becomes `bootstrap`.
fn host_cargo(dir: &Path, out: &Path, cache: &Path) -> Result<(), BuildError> {
    let target_dir = std::path::absolute(cache.join("cargo-target"))?;
    let triple = "x86_64-unknown-linux-gnu";
    let mut cmd = Command::new("cargo");
    cmd.args(["build", "--release", "--target", triple, "--target-dir"])
        .arg(&target_dir)
        .current_dir(dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static");
    checked(cmd, "cargo build", dir)?;
    let name = package_name(&std::fs::read_to_string(dir.join("Cargo.toml"))?)
        .ok_or_else(|| BuildError::Missing(format!("{}/Cargo.toml [package] name", dir.display())))?;
    std::fs::copy(target_dir.join(triple).join("release").join(name), out.join("bootstrap"))?;
    Ok(())
}

/// `name = "…"` of `[package]` (or of `[[bin]]`, when it comes first).
fn package_name(toml: &str) -> Option<String> {
    let mut section = "";
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section == "[package]" || section == "[[bin]]" {
            if let Some(v) = line.strip_prefix("name").map(str::trim).and_then(|l| l.strip_prefix('=')) {
                return Some(v.trim().trim_matches('"').to_owned());
            }
        }
    }
    None
}

/// Every file under `root` by relative path, skipping [`SKIPPED_DIRS`]
/// and `also` (folder names).
pub fn files_of(root: &Path, also: &[&str]) -> Result<BTreeMap<PathBuf, PathBuf>, std::io::Error> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if path.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_str()) && !also.contains(&name.as_str()) {
                    pending.push(path);
                }
            } else {
                out.insert(path.strip_prefix(root).expect("under root").to_path_buf(), path);
            }
        }
    }
    Ok(out)
}

/// One folder's files going into a zip: under `prefix`, without the
/// folders named in `skip`.
#[derive(Debug, Clone, Copy)]
pub struct Tree<'a> {
    pub root: &'a Path,
    pub skip: &'a [&'a str],
    pub prefix: &'a str,
}

impl<'a> Tree<'a> {
    pub fn new(root: &'a Path) -> Tree<'a> {
        Tree { root, skip: &[], prefix: "" }
    }
}

/// The zip of one folder (CodeSha256 is reproducible: see [`zip_trees`]).
pub fn zip_dir(root: &Path) -> Result<Vec<u8>, BuildError> {
    zip_trees(&[Tree::new(root)])
}

/// The zip of `trees`' files, later trees winning a path; sorted, with
/// fixed timestamps, so the same files give the same CodeSha256.
pub fn zip_trees(trees: &[Tree<'_>]) -> Result<Vec<u8>, BuildError> {
    let mut files = BTreeMap::new();
    for tree in trees {
        for (rel, full) in files_of(tree.root, tree.skip)? {
            files.insert(format!("{}{}", tree.prefix, rel.to_string_lossy()), full);
        }
    }
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, full) in files {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&full)?.permissions().mode() & 0o777;
        let options = zip::write::SimpleFileOptions::default().unix_permissions(mode);
        zip.start_file(name, options)?;
        zip.write_all(&std::fs::read(&full)?)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Whether lambdabox builds a layer whose `Metadata.BuildMethod` is
/// `method`: a runtime it lays out (below) or `makefile`.
pub fn builds_layers_for(method: &str) -> bool {
    method == "makefile" || layer_layout(method).is_some()
}

/// Where a layer built for `runtime` puts its code and its dependencies,
/// as `sam build` does: the folders each runtime searches under `/opt`
/// (Ruby's gems go where its bootstrap's GEM_PATH looks, by ABI).
fn layer_layout(runtime: &str) -> Option<LayerLayout> {
    match runtime {
        r if r.starts_with("python") => Some(LayerLayout { code: "python/", deps: "python/", deps_from: "" }),
        r if r.starts_with("nodejs") => Some(LayerLayout { code: "nodejs/", deps: "nodejs/", deps_from: "" }),
        r if r.starts_with("ruby") => {
            Some(LayerLayout { code: "ruby/lib/", deps: "ruby/gems/", deps_from: "vendor/bundle/ruby" })
        }
        _ => None,
    }
}

/// See [`layer_layout`].
#[derive(Debug, Clone, Copy)]
struct LayerLayout {
    code: &'static str,
    deps: &'static str,
    /// The folder of the built dependencies that goes under `deps`.
    deps_from: &'static str,
}

impl Artifact {
    /// The function's zip.
    pub fn zip(&self) -> Result<Vec<u8>, BuildError> {
        let skip: &[&str] = if self.skip_node_modules { &["node_modules"] } else { &[] };
        let mut trees = Vec::new();
        if let Some(s) = &self.source {
            trees.push(Tree { root: s, skip, prefix: "" });
        }
        if let Some(d) = &self.deps {
            trees.push(Tree::new(d));
        }
        zip_trees(&trees)
    }

    /// The zip of a layer built with `method` (a runtime or `makefile`,
    /// whose artifacts are laid out by the Makefile itself).
    pub fn layer_zip(&self, method: &str) -> Result<Vec<u8>, BuildError> {
        let Some(layout) = layer_layout(method) else { return self.zip() };
        let skip: &[&str] = if self.skip_node_modules { &["node_modules"] } else { &[] };
        let mut trees = Vec::new();
        if let Some(s) = &self.source {
            trees.push(Tree { root: s, skip, prefix: layout.code });
        }
        let deps = self.deps.as_ref().map(|d| d.join(layout.deps_from));
        if let Some(d) = deps.as_deref().filter(|d| d.is_dir()) {
            trees.push(Tree { root: d, skip: &[], prefix: layout.deps });
        }
        zip_trees(&trees)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job<'a>(dir: &'a Path, runtime: &'a str) -> Job<'a> {
        Job { dir, runtime, makefile_of: None }
    }

    fn names(zip: Vec<u8>) -> Vec<String> {
        let archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
        let mut names: Vec<String> = archive.file_names().map(|n| n.unwrap().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn manifests_are_found_per_runtime_and_keys_follow_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "requests==2.32.3\n").unwrap();
        assert_eq!(Manifest::detect(dir.path(), "python3.11"), Some(Manifest::Pip));
        assert_eq!(Manifest::detect(dir.path(), "nodejs20.x"), None);
        let a = cache_key(job(dir.path(), "python3.11"), Manifest::Pip).unwrap();
        std::fs::write(dir.path().join("app.py"), "x = 1\n").unwrap();
        assert_eq!(a, cache_key(job(dir.path(), "python3.11"), Manifest::Pip).unwrap(), "code changes keep the key");
        std::fs::write(dir.path().join("requirements.txt"), "requests==2.32.4\n").unwrap();
        assert_ne!(a, cache_key(job(dir.path(), "python3.11"), Manifest::Pip).unwrap());
        assert_eq!(package_name("[package]\nname = \"hello\"\n"), Some("hello".into()));
    }

    #[test]
    fn makefile_keys_follow_every_file_and_the_target() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Makefile"), "build-Fn:\n\tcp app.py $(ARTIFACTS_DIR)/\n").unwrap();
        let fn_job = Job { makefile_of: Some("Fn"), ..job(dir.path(), "python3.11") };
        let a = cache_key(fn_job, Manifest::Makefile).unwrap();
        std::fs::write(dir.path().join("app.py"), "x = 1\n").unwrap();
        assert_ne!(a, cache_key(fn_job, Manifest::Makefile).unwrap(), "a recipe reads every file");
        let other = Job { makefile_of: Some("Other"), ..fn_job };
        assert_ne!(cache_key(fn_job, Manifest::Makefile).unwrap(), cache_key(other, Manifest::Makefile).unwrap());
    }

    #[test]
    fn a_makefile_without_a_runtime_image_builds_on_the_host_into_artifacts_dir() {
        let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let recipe =
            "build-Layer:\n\tmkdir -p $(ARTIFACTS_DIR)/bin\n\ttr a-z A-Z < tool.txt > $(ARTIFACTS_DIR)/bin/tool\n";
        std::fs::write(dir.path().join("Makefile"), recipe).unwrap();
        std::fs::write(dir.path().join("tool.txt"), "made\n").unwrap();
        let layer = Job { dir: dir.path(), runtime: "", makefile_of: Some("Layer") };
        let artifact = build(layer, cache.path(), &|_| {}).unwrap();
        assert!(artifact.source.is_none(), "a Makefile's artifacts are the whole package");
        assert_eq!(std::fs::read_to_string(artifact.deps.as_ref().unwrap().join("bin/tool")).unwrap(), "MADE\n");
        assert_eq!(names(artifact.layer_zip("makefile").unwrap()), ["bin/tool"]);
        assert!(std::fs::read_dir(dir.path()).unwrap().count() == 2, "the source folder is left as it was");
        let broken = Job { makefile_of: Some("Missing"), ..layer };
        let Err(BuildError::Tool { output, .. }) = build(broken, cache.path(), &|_| {}) else { panic!("make fails") };
        assert!(output.contains("build-Missing"), "the tool's own words: {output}");
        std::fs::remove_file(dir.path().join("Makefile")).unwrap();
        assert!(matches!(build(layer, cache.path(), &|_| {}), Err(BuildError::Missing(_))));
    }

    #[test]
    fn zips_merge_trees_and_skip_build_folders() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::create_dir_all(a.path().join(".lambdabox/deps")).unwrap();
        std::fs::write(a.path().join(".lambdabox/deps/x"), "x").unwrap();
        std::fs::write(a.path().join("app.py"), "a").unwrap();
        std::fs::write(b.path().join("lib.py"), "b").unwrap();
        let zip = zip_trees(&[Tree::new(a.path()), Tree::new(b.path())]).unwrap();
        assert_eq!(names(zip.clone()), ["app.py", "lib.py"]);
        assert_eq!(zip, zip_trees(&[Tree::new(a.path()), Tree::new(b.path())]).unwrap(), "zips are reproducible");
        assert_eq!(names(zip_trees(&[Tree { prefix: "python/", ..Tree::new(b.path()) }]).unwrap()), ["python/lib.py"]);
        assert!(builds_layers_for("nodejs20.x") && builds_layers_for("makefile") && !builds_layers_for("java21"));
    }

    #[test]
    fn built_layers_are_laid_out_where_each_runtime_looks() {
        let (code, deps) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(code.path().join("helper.rb"), "").unwrap();
        let gem = deps.path().join("vendor/bundle/ruby/3.1.0/gems/tiny-1.0/lib");
        std::fs::create_dir_all(&gem).unwrap();
        std::fs::write(gem.join("tiny.rb"), "").unwrap();
        let artifact =
            Artifact { source: Some(code.path().into()), deps: Some(deps.path().into()), skip_node_modules: false };
        assert_eq!(
            names(artifact.layer_zip("ruby3.2").unwrap()),
            ["ruby/gems/3.1.0/gems/tiny-1.0/lib/tiny.rb", "ruby/lib/helper.rb"]
        );
        let python = Artifact { deps: None, ..artifact };
        assert_eq!(names(python.layer_zip("python3.12").unwrap()), ["python/helper.rb"]);
    }
}
