//! The base image and one image per runtime, built locally through Docker.
//!
//! Image recipes (the folders under `images/`) are compiled into the binary,
//! so an installed `lambdabox` needs no source tree. Each built image carries
//! a label with the SHA-256 of everything that went into it (its files, the
//! host's extra CAs and, for runtime images, the base image's id): an
//! unchanged recipe is never rebuilt, a changed one always is.
//!
//! No registry is needed: the base is pulled where a registry answers and
//! otherwise made with `debootstrap --variant=minbase` and imported. Build
//! output is logged line by line through `tracing`, as progress.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::backend::docker::DockerBackend;
use crate::backend::BackendError;
use crate::function::Runtime;

/// Label holding the recipe hash.
pub const HASH_LABEL: &str = "lambdabox.context-hash";
/// Where the host keeps CAs it trusts beyond the distribution's.
const HOST_EXTRA_CA: &str = "/usr/local/share/ca-certificates";
/// Debian mirror for debootstrap, unless `LAMBDABOX_DEBIAN_MIRROR` is set.
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

type Files = &'static [(&'static str, &'static [u8])];

/// lambdabox-init's image: the static binary and nothing else.
const INIT_DOCKERFILE: &str = "FROM scratch\nCOPY lambdabox-init /lambdabox-init\nENTRYPOINT [\"/lambdabox-init\"]\n";
const BASE_DOCKERFILE: &[u8] = include_bytes!("../images/base/Dockerfile");

/// One runtime image's recipe: a folder's files and the Debian suite it
/// builds on (passed to the Dockerfile as the build argument `SUITE`).
#[derive(Debug)]
struct Recipe {
    image: &'static str,
    suite: &'static str,
    files: Files,
}

/// `images/python/`: one recipe for every python3.x image, built on the
/// Debian release that ships that Python.
const PYTHON: Files = &[
    ("Dockerfile", include_bytes!("../images/python/Dockerfile")),
    ("bootstrap", include_bytes!("../images/python/bootstrap")),
    ("prestart", include_bytes!("../images/python/prestart")),
];

/// `images/nodejs/`: AWS's aws-lambda-ric from npm, at the version and with
/// the integrity hashes its `package.json` and `package-lock.json` pin, built
/// in a bookworm builder stage that both Node.js images share.
const NODEJS: Files = &[
    ("Dockerfile", include_bytes!("../images/nodejs/Dockerfile")),
    ("bootstrap", include_bytes!("../images/nodejs/bootstrap")),
    ("prestart", include_bytes!("../images/nodejs/prestart")),
    ("prestart.mjs", include_bytes!("../images/nodejs/prestart.mjs")),
    ("package.json", include_bytes!("../images/nodejs/package.json")),
    ("package-lock.json", include_bytes!("../images/nodejs/package-lock.json")),
];

/// `images/ruby/` with lambdabox's runtime client from `runtimes/ruby/`.
const RUBY: Files = &[
    ("Dockerfile", include_bytes!("../images/ruby/Dockerfile")),
    ("bootstrap", include_bytes!("../images/ruby/bootstrap")),
    ("prestart", include_bytes!("../images/ruby/prestart")),
    ("runtime.rb", include_bytes!("../runtimes/ruby/runtime.rb")),
];

/// `images/java/`: AWS's Java runtime interface client and the jars its pom
/// names, fetched from Maven Central in the build (pinned by SHA-256 in
/// `maven-jars`), the training run (`warmup/`) that records the
/// class-data-sharing archive, and the runtime started ahead of need
/// (`prestart`, `Prestart.java` and its native half `prestart.c`).
const JAVA: Files = &[
    ("Dockerfile", include_bytes!("../images/java/Dockerfile")),
    ("bootstrap", include_bytes!("../images/java/bootstrap")),
    ("prestart", include_bytes!("../images/java/prestart")),
    ("Prestart.java", include_bytes!("../images/java/Prestart.java")),
    ("prestart.c", include_bytes!("../images/java/prestart.c")),
    ("maven-jars", include_bytes!("../images/java/maven-jars")),
    ("warmup/train", include_bytes!("../images/java/warmup/train")),
    ("warmup/Handlers.java", include_bytes!("../images/java/warmup/Handlers.java")),
    ("warmup/RuntimeApiStandIn.java", include_bytes!("../images/java/warmup/RuntimeApiStandIn.java")),
];

static RECIPES: &[Recipe] = &[
    Recipe { image: "python3.11", suite: "bookworm", files: PYTHON },
    Recipe { image: "python3.13", suite: "trixie", files: PYTHON },
    Recipe { image: "nodejs18.x", suite: "bookworm", files: NODEJS },
    Recipe { image: "nodejs20.x", suite: "trixie", files: NODEJS },
    Recipe { image: "ruby3.1", suite: "bookworm", files: RUBY },
    Recipe { image: "ruby3.3", suite: "trixie", files: RUBY },
    Recipe { image: "java17", suite: "bookworm", files: JAVA },
    Recipe { image: "java21", suite: "trixie", files: JAVA },
    Recipe {
        image: "provided",
        suite: "bookworm",
        files: &[("Dockerfile", include_bytes!("../images/provided/Dockerfile"))],
    },
];

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("no recipe for image {0}")]
    NoRecipe(String),
    #[error(
        "no registry answered for debian:{suite}-slim and debootstrap failed ({detail}); \
         install it with `apt-get install -y debootstrap` and run as root"
    )]
    Debootstrap { suite: String, detail: String },
    #[error(
        "reading a container image's configuration needs a Docker Engine beside the controller, \
         and this controller has none"
    )]
    NoEngine,
    #[error(
        "{0} is dynamically linked; an image of its own (and other images) needs the static one: \
         `make init` builds target/release/lambdabox-init, then pass --init-bin"
    )]
    DynamicInit(PathBuf),
    #[error("image build I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The tag of the base image for a Debian suite.
pub fn base_image(suite: &str) -> String {
    format!("lambdabox/base:{suite}")
}

/// The tag of a runtime's image.
pub fn runtime_image(runtime: &Runtime) -> String {
    format!("lambdabox/{}:latest", runtime.image)
}

/// lambdabox-init's own image, for clusters (the Kubernetes backend's init
/// container copies init out of it): the binary alone, tagged with the
/// start of its SHA-256, so that a rebuilt init is a new image and no node
/// runs a stale one.
fn init_image(binary: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(binary));
    format!("lambdabox/init:{}", &digest[..16])
}

/// Whether an ELF binary names a program interpreter (is dynamically
/// linked): a `PT_INTERP` entry among its program headers.
fn has_interpreter(elf: &[u8]) -> bool {
    let read = |at: usize, len: usize| -> Option<u64> {
        let b = elf.get(at..at + len)?;
        Some(b.iter().rev().fold(0u64, |v, byte| (v << 8) | u64::from(*byte)))
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (read(0x20, 8), read(0x36, 2), read(0x38, 2)) else {
        return false;
    };
    (0..phnum).any(|i| {
        let at = usize::try_from(phoff + i * phentsize).unwrap_or(usize::MAX);
        read(at, 4) == Some(3)
    })
}

/// Builds images on demand and remembers which are known to be current.
#[derive(Debug)]
pub struct Images {
    /// `None`: no engine beside the controller (a cluster's controller);
    /// images are taken to be where the backend's nodes find them.
    docker: Option<DockerBackend>,
    current: Mutex<HashSet<String>>,
    building: tokio::sync::Mutex<()>,
}

impl Images {
    pub fn new(docker: Option<DockerBackend>) -> Images {
        Images { docker, current: Mutex::default(), building: tokio::sync::Mutex::new(()) }
    }

    /// Make sure lambdabox-init's image ([`init_image`]) exists; returns its tag.
    pub async fn ensure_init(&self, init_bin: &Path) -> Result<String, ImageError> {
        let binary = std::fs::read(init_bin)?;
        if has_interpreter(&binary) {
            return Err(ImageError::DynamicInit(init_bin.to_owned()));
        }
        let tag = init_image(&binary);
        let Some(docker) = &self.docker else { return Ok(tag) };
        if docker.image_facts(&tag).await?.is_none() {
            let _host = HostLock::acquire().await?;
            let mut tar = tar::Builder::new(Vec::new());
            append_file(&mut tar, "Dockerfile", INIT_DOCKERFILE.as_bytes(), 0o644)?;
            append_file(&mut tar, "lambdabox-init", &binary, 0o755)?;
            tracing::info!(image = %tag, "building lambdabox-init's image");
            docker.build(tar.into_inner()?, &tag, HashMap::new(), HashMap::new(), |_| {}).await?;
        }
        Ok(tag)
    }

    fn engine(&self) -> Result<&DockerBackend, ImageError> {
        self.docker.as_ref().ok_or(ImageError::NoEngine)
    }

    /// Make sure `runtime`'s image exists and matches its recipe; returns its tag.
    /// Fast once checked: later calls only read a set.
    pub async fn ensure(&self, runtime: &Runtime) -> Result<String, ImageError> {
        let tag = runtime_image(runtime);
        if self.current.lock().expect("images poisoned").contains(&tag) || self.docker.is_none() {
            return Ok(tag);
        }
        let recipe =
            RECIPES.iter().find(|r| r.image == runtime.image).ok_or_else(|| ImageError::NoRecipe(tag.clone()))?;
        let _local = self.building.lock().await;
        let _host = HostLock::acquire().await?;
        let extra_ca = extra_ca_files()?;
        let base_id = self.ensure_base(recipe.suite, &extra_ca).await?;
        let mut parent = format!("{}:{base_id}", recipe.suite);
        // A builder stage on another release's base: that base must exist
        // too, and a rebuilt one must rebuild this image.
        for suite in stage_suites(recipe.files).into_iter().filter(|s| *s != recipe.suite) {
            let id = self.ensure_base(suite, &extra_ca).await?;
            parent.push_str(&format!(",{suite}:{id}"));
        }
        let hash = recipe_hash(recipe.files, &[], &parent);
        let docker = self.engine()?;
        if !docker.image_facts(&tag).await?.is_some_and(|f| built_from(&f, &hash)) {
            tracing::info!(image = %tag, "building runtime image");
            let context = context_tar(recipe.files, &[], None)?;
            let args = HashMap::from([("SUITE".to_owned(), recipe.suite.to_owned())]);
            docker.build(context, &tag, label(&hash), args, |line| tracing::info!(image = %tag, "{line}")).await?;
            tracing::info!(image = %tag, "built");
        }
        self.current.lock().expect("images poisoned").insert(tag.clone());
        Ok(tag)
    }

    /// A container image function's image, as Docker knows it now; `None`
    /// when the engine has no image by that name (no registry is asked).
    pub async fn function_image(&self, uri: &str) -> Result<Option<crate::backend::docker::ImageFacts>, ImageError> {
        Ok(self.engine()?.image_facts(uri).await?)
    }

    /// Forget that `runtime`'s image was checked (it went missing).
    pub fn forget(&self, runtime: &Runtime) {
        self.current.lock().expect("images poisoned").remove(&runtime_image(runtime));
    }

    /// Make sure the base image of `suite` is current; returns its image id.
    async fn ensure_base(&self, suite: &str, extra_ca: &[(String, Vec<u8>)]) -> Result<String, ImageError> {
        let tag = base_image(suite);
        let hash = recipe_hash(&[("Dockerfile", BASE_DOCKERFILE)], extra_ca, suite);
        let facts = self.engine()?.image_facts(&tag).await?;
        if let Some(current) = facts.filter(|f| built_from(f, &hash)) {
            return Ok(current.id);
        }
        self.build_base(suite, &tag, &hash, extra_ca).await?;
        self.engine()?.image_facts(&tag).await?.map(|f| f.id).ok_or(ImageError::NoRecipe(tag))
    }

    async fn build_base(
        &self,
        suite: &str,
        tag: &str,
        hash: &str,
        extra_ca: &[(String, Vec<u8>)],
    ) -> Result<(), ImageError> {
        let upstream = format!("debian:{suite}-slim");
        let progress = |line: &str| tracing::info!(image = %tag, "{line}");
        let (first_lines, rootfs) = match self.engine()?.pull(&upstream, progress).await {
            Ok(()) => (format!("FROM {upstream}\n"), None),
            Err(e) => {
                tracing::info!(image = %tag, error = %e, "no registry; building the base with debootstrap (about 30 s)");
                let dir = tempfile::Builder::new().prefix("lambdabox-rootfs-").tempdir()?;
                let tar = debootstrap(suite, dir.path()).await?;
                ("FROM scratch\nADD rootfs.tar /\n".to_owned(), Some((dir, tar)))
            }
        };
        let mut dockerfile = first_lines.into_bytes();
        dockerfile.extend_from_slice(BASE_DOCKERFILE);
        let files: Vec<(&str, &[u8])> = vec![("Dockerfile", &dockerfile)];
        let context = context_tar(&files, extra_ca, rootfs.as_ref().map(|(_, tar)| tar.as_path()))?;
        tracing::info!(image = %tag, bytes = context.len(), "building base image");
        self.engine()?.build(context, tag, label(hash), HashMap::new(), progress).await?;
        Ok(())
    }
}

/// The Debian suites a recipe's Dockerfile names outright in `FROM
/// lambdabox/base:SUITE` lines (builder stages pinned to one release), as
/// opposed to the `${SUITE}` the recipe is built for.
fn stage_suites(files: Files) -> Vec<&'static str> {
    let Some((_, dockerfile)) = files.iter().find(|(name, _)| *name == "Dockerfile") else { return Vec::new() };
    let text = std::str::from_utf8(dockerfile).unwrap_or_default();
    let mut suites = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let Some(suite) = words.next().and_then(|image| image.strip_prefix("lambdabox/base:")) else { continue };
        if !suite.contains('$') && !suites.contains(&suite) {
            suites.push(suite);
        }
    }
    suites
}

/// Whether an image was built from the recipe with this hash.
fn built_from(facts: &crate::backend::docker::ImageFacts, hash: &str) -> bool {
    facts.labels.get(HASH_LABEL).is_some_and(|h| h == hash)
}

fn label(hash: &str) -> HashMap<String, String> {
    HashMap::from([(HASH_LABEL.to_owned(), hash.to_owned())])
}

/// SHA-256 over a recipe's files, the extra CAs and what it builds on.
fn recipe_hash(files: &[(&str, &[u8])], extra_ca: &[(String, Vec<u8>)], parent: &str) -> String {
    let mut h = Sha256::new();
    let mut feed = |name: &str, body: &[u8]| {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((body.len() as u64).to_le_bytes());
        h.update(body);
    };
    for (name, body) in files {
        feed(name, body);
    }
    for (name, body) in extra_ca {
        feed(name, body);
    }
    feed("parent", parent.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The host's extra CA certificates (`*.crt`), sorted by name.
fn extra_ca_files() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from(HOST_EXTRA_CA)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "crt") {
                let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
                out.push((name, std::fs::read(&path)?));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A Docker build context: the files, `extra-ca/` (always present, maybe
/// empty) and optionally a root filesystem tarball as `rootfs.tar`.
/// One file of a build context, dated 0 so the same files give the same bytes.
fn append_file(tar: &mut tar::Builder<Vec<u8>>, name: &str, body: &[u8], mode: u32) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, body)
}

fn context_tar(
    files: &[(&str, &[u8])],
    extra_ca: &[(String, Vec<u8>)],
    rootfs: Option<&Path>,
) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, body) in files {
        let mode = if body.starts_with(b"#!") { 0o755 } else { 0o644 };
        append_file(&mut tar, name, body, mode)?;
    }
    append_file(&mut tar, "extra-ca/.keep", b"", 0o644)?;
    for (name, body) in extra_ca {
        append_file(&mut tar, &format!("extra-ca/{name}"), body, 0o644)?;
    }
    if let Some(path) = rootfs {
        tar.append_path_with_name(path, "rootfs.tar")?;
    }
    tar.into_inner()
}

/// Bootstrap a minimal Debian into `work/rootfs` and pack it as `work/rootfs.tar`.
async fn debootstrap(suite: &str, work: &Path) -> Result<PathBuf, ImageError> {
    let fail = |detail: String| ImageError::Debootstrap { suite: suite.to_owned(), detail };
    let root = work.join("rootfs");
    let mirror = std::env::var("LAMBDABOX_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.to_owned());
    let mut child = tokio::process::Command::new("debootstrap")
        .args(["--variant=minbase", suite])
        .arg(&root)
        .arg(&mirror)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let log = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(target: "lambdabox::images::debootstrap", "{line}");
        }
    });
    let mut err_tail = String::new();
    let mut err_lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = err_lines.next_line().await {
        tracing::info!(target: "lambdabox::images::debootstrap", "{line}");
        err_tail = line;
    }
    let status = child.wait().await?;
    let _ = log.await;
    if !status.success() {
        return Err(fail(format!("{status}: {err_tail}")));
    }
    let tar = work.join("rootfs.tar");
    let packed = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["--numeric-owner", "--exclude=./var/cache/apt/archives/*.deb", "--exclude=./var/lib/apt/lists/*", "-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .await?;
    if !packed.success() {
        return Err(fail(format!("packing the root filesystem: {packed}")));
    }
    Ok(tar)
}

/// An exclusive lock across processes on this host, so two controllers (or
/// two test runs) never build the same image at once.
struct HostLock {
    _held: std::fs::File,
}

impl HostLock {
    async fn acquire() -> std::io::Result<HostLock> {
        let path = std::env::temp_dir().join("lambdabox-images.lock");
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
            // Released when the file closes.
            file.lock()?;
            Ok(HostLock { _held: file })
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamically_linked_binary_is_told_from_a_static_one() {
        let this = std::fs::read("/proc/self/exe").unwrap();
        // Test binaries are linked dynamically.
        assert!(has_interpreter(&this));
        let mut elf = vec![0u8; 0x40 + 56];
        elf[..5].copy_from_slice(b"\x7fELF\x02");
        elf[0x20] = 0x40;
        elf[0x36] = 56;
        elf[0x38] = 1;
        elf[0x40] = 6; // PT_PHDR only
        assert!(!has_interpreter(&elf));
        assert!(!has_interpreter(b"#!/bin/sh"));
    }

    #[test]
    fn hash_changes_with_any_input() {
        let a = recipe_hash(&[("Dockerfile", b"FROM x")], &[], "base1");
        assert_eq!(a, recipe_hash(&[("Dockerfile", b"FROM x")], &[], "base1"));
        assert_ne!(a, recipe_hash(&[("Dockerfile", b"FROM y")], &[], "base1"));
        assert_ne!(a, recipe_hash(&[("Dockerfile", b"FROM x")], &[], "base2"));
        assert_ne!(a, recipe_hash(&[("Dockerfile", b"FROM x")], &[("ca.crt".into(), b"pem".to_vec())], "base1"));
    }

    #[test]
    fn every_runtime_has_a_recipe() {
        for r in crate::function::RUNTIMES {
            assert!(RECIPES.iter().any(|x| x.image == r.image), "{} has no recipe", r.id);
        }
    }

    #[test]
    fn builder_stages_on_a_fixed_release_are_found() {
        assert_eq!(stage_suites(NODEJS), ["bookworm"]);
        assert!(stage_suites(PYTHON).is_empty(), "python builds on ${{SUITE}} only");
        const TWO: Files = &[(
            "Dockerfile",
            b"ARG SUITE\nfrom lambdabox/base:trixie AS a\nFROM lambdabox/base:${SUITE}\nFROM lambdabox/base:trixie\n",
        )];
        assert_eq!(stage_suites(TWO), ["trixie"]);
    }

    #[test]
    fn every_java_recipe_file_is_in_the_context() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/java");
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let name = path.strip_prefix(&root).unwrap().display().to_string();
                    assert!(JAVA.iter().any(|(n, _)| *n == name), "images/java/{name} is missing from JAVA");
                }
            }
        }
    }

    #[test]
    fn context_holds_files_and_ca_folder() {
        let tar = context_tar(&[("Dockerfile", b"FROM x"), ("bootstrap", b"#!/bin/sh\n")], &[], None).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.header().mode().unwrap())
            })
            .collect();
        assert_eq!(
            entries,
            [("Dockerfile".into(), 0o644), ("bootstrap".into(), 0o755), ("extra-ca/.keep".into(), 0o644)]
        );
    }
}
