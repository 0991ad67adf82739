//! Functions compiled to a `bootstrap` for the provided runtimes, built the
//! way Lambda's users of that language build them, once per test process.
//! Each builder returns a folder holding just `bootstrap`, ready to zip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures")
}

/// Copy a built binary into `target/fixtures/NAME/` as `bootstrap`.
fn zip_folder(name: &str, binary: &Path) -> PathBuf {
    let out = fixtures_dir().join(name);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(binary, out.join("bootstrap")).expect("the built binary exists");
    out
}

/// The Rust fixture (`tests/fixtures/provided-rust/function`, AWS's
/// `lambda_runtime` crate): a static binary, built with cargo as
/// cargo-lambda would.
pub fn rust() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| cargo_build("function", "bootstrap", "rust-zip")).clone()
}

/// The function URL fixture (`tests/fixtures/provided-rust/http`, AWS's
/// `lambda_http` crate), built the same way.
pub fn rust_http() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| cargo_build("http", "url-function", "rust-http-zip")).clone()
}

/// Build `tests/fixtures/provided-rust/FOLDER` (whose binary is `binary`)
/// static, release, and copy it to `target/fixtures/ZIP/bootstrap`.
fn cargo_build(folder: &str, binary: &str, zip: &str) -> PathBuf {
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/provided-rust").join(folder).join("Cargo.toml");
    let target = fixtures_dir();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "x86_64-unknown-linux-gnu", "--manifest-path"])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        // A test runner's RUSTC_BOOTSTRAP (for libtest's timing report)
        // would otherwise change every fingerprint and rebuild from scratch.
        .env_remove("RUSTC_BOOTSTRAP")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the Rust fixture {folder} failed");
    zip_folder(zip, &target.join("x86_64-unknown-linux-gnu/release").join(binary))
}

/// The Go fixture (`tests/fixtures/provided-go/function`, AWS's
/// `aws-lambda-go`), built with the machine's Go toolchain and the flags
/// AWS documents for the provided runtimes: `GOOS=linux GOARCH=amd64
/// CGO_ENABLED=0 -tags lambda.norpc`. Modules come from the module proxy
/// into Go's own cache, so later runs build offline.
pub fn go() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/provided-go/function");
            let binary = fixtures_dir().join("go-build/bootstrap");
            let status = Command::new(go_command())
                .args(["build", "-tags", "lambda.norpc", "-trimpath", "-o"])
                .arg(&binary)
                .arg(".")
                .current_dir(source)
                .envs([("GOOS", "linux"), ("GOARCH", "amd64"), ("CGO_ENABLED", "0")])
                .status()
                .expect("the Go toolchain runs (install Go, or put it on PATH)");
            assert!(status.success(), "building the Go fixture failed");
            zip_folder("go-zip", &binary)
        })
        .clone()
}

/// `go` from PATH, else where the official tarball installs it.
fn go_command() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|dir| dir.join("go")).find(|go| go.is_file()));
    on_path.flatten().unwrap_or_else(|| PathBuf::from("/usr/local/go/bin/go"))
}
