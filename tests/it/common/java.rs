//! Java functions for the tests: the conformance fixture
//! (`tests/fixtures/java/`) and inline sources, compiled with the javac of the
//! built `lambdabox/java17` image (class files for Java 17 run on 21 too), in
//! a throwaway container with a temporary folder bind-mounted.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::Server;

/// The image whose JDK compiles the fixtures.
pub const COMPILER_IMAGE: &str = "lambdabox/java17:latest";

/// The conformance fixture, compiled once per test process.
pub struct Fixture {
    /// The function's class files by path.
    pub classes: Vec<(String, Vec<u8>)>,
    /// The function zip: its classes at the zip's root.
    pub function_zip: Vec<u8>,
    /// The layer's classes as a jar.
    pub layer_jar: Vec<u8>,
    /// The layer zip, laid out as Java layers are on Lambda: `java/lib/layer.jar`.
    pub layer_zip: Vec<u8>,
}

/// The conformance fixture (`tests/fixtures/java/`), compiled.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/java");
        let built = compile(&sources_under(&root.join("function/src")), &sources_under(&root.join("layer/src")), &[]);
        let classes: Vec<(String, Vec<u8>)> = built.classes.into_iter().collect();
        let layer_jar = built.layer_jar.expect("the layer compiles to a jar");
        Fixture {
            function_zip: zip_files(&classes),
            layer_zip: zip_files(&[("java/lib/layer.jar".to_owned(), layer_jar.clone())]),
            classes,
            layer_jar,
        }
    })
}

/// Zips of the conformance fixture: the function and the layer.
pub fn fixture_zips() -> (&'static [u8], &'static [u8]) {
    let f = fixture();
    (&f.function_zip, &f.layer_zip)
}

/// A function zip of the given `(path, source)` Java files, compiled against
/// aws-lambda-java-core; `lib/*.jar` entries of `extra` are added as they are.
pub fn function_zip(sources: &[(&str, &str)], extra: &[(&str, &[u8])]) -> Vec<u8> {
    function_zip_with_libs(sources, extra, &[])
}

/// [`function_zip`] built as a user's build with dependencies would: the
/// sources compile against aws-lambda-java-core and the `(file name, jar)`
/// libraries, which go into the zip's `lib/`.
pub fn function_zip_with_libs(
    sources: &[(&str, &str)],
    extra: &[(&str, &[u8])],
    libs: &[(String, Vec<u8>)],
) -> Vec<u8> {
    let sources: Vec<(String, Vec<u8>)> =
        sources.iter().map(|(p, s)| ((*p).to_owned(), s.as_bytes().to_vec())).collect();
    let mut files: Vec<(String, Vec<u8>)> = compile(&sources, &[], libs).classes.into_iter().collect();
    files.extend(extra.iter().map(|(p, b)| ((*p).to_owned(), b.to_vec())));
    files.extend(libs.iter().map(|(name, jar)| (format!("lib/{name}"), jar.clone())));
    zip_files(&files)
}

/// A jar from Maven Central (`https://repo1.maven.org/maven2/PATH`), checked
/// against its SHA-256 and kept under `target/test-cache/maven/`, so only the
/// first run needs the network. Returns the file name and the bytes.
pub fn maven_jar(path: &str, sha256: &str) -> (String, Vec<u8>) {
    use sha2::{Digest, Sha256};
    let name = path.rsplit('/').next().expect("a path with a file name").to_owned();
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-cache/maven");
    let file = cache.join(&name);
    let matches = |bytes: &[u8]| hex::encode(Sha256::digest(bytes)) == sha256;
    if let Ok(bytes) = std::fs::read(&file) {
        if matches(&bytes) {
            return (name, bytes);
        }
    }
    std::fs::create_dir_all(&cache).unwrap();
    let partial = cache.join(format!("{name}.partial"));
    let status = Command::new("curl")
        .args(["-fsSL", "--retry", "3", "-o"])
        .arg(&partial)
        .arg(format!("https://repo1.maven.org/maven2/{path}"))
        .status()
        .expect("curl runs");
    assert!(status.success(), "downloading {path} from Maven Central failed");
    let bytes = std::fs::read(&partial).unwrap();
    assert!(matches(&bytes), "{path}: SHA-256 is not {sha256}");
    std::fs::rename(&partial, &file).unwrap();
    (name, bytes)
}

/// What [`compile`] produced: class files by path, and the layer's jar.
pub struct Compiled {
    pub classes: BTreeMap<String, Vec<u8>>,
    pub layer_jar: Option<Vec<u8>>,
}

/// Compile `layer` sources (if any) into a jar, then `function` sources
/// against aws-lambda-java-core, that jar and the `(file name, jar)` `libs`.
/// Panics with javac's output on a compile error.
pub fn compile(function: &[(String, Vec<u8>)], layer: &[(String, Vec<u8>)], libs: &[(String, Vec<u8>)]) -> Compiled {
    let work = tempfile::Builder::new().prefix("lbx-javac-").tempdir().expect("tempdir");
    write_tree(&work.path().join("src"), function);
    write_tree(&work.path().join("layer-src"), layer);
    write_tree(&work.path().join("lib"), libs);
    let script = r#"set -e
cd /work
cp="$(echo /var/runtime/lib/aws-lambda-java-core-*.jar)"
for jar in lib/*.jar; do
    [ ! -f "$jar" ] || cp="$cp:$jar"
done
if [ -n "$(find layer-src -name '*.java')" ]; then
    javac --release 17 -d layer-out $(find layer-src -name '*.java')
    jar --create --file layer.jar -C layer-out .
    cp="$cp:layer.jar"
fi
javac --release 17 -encoding UTF-8 -d out -cp "$cp" $(find src -name '*.java')
"#;
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let output = Command::new("docker")
        .args(["run", "--rm", "--network", "none", "--user", &format!("{uid}:{gid}"), "-v"])
        .arg(format!("{}:/work", work.path().display()))
        .args([COMPILER_IMAGE, "sh", "-c", script])
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "javac failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let out = work.path().join("out");
    let classes = files_under(&out).into_iter().map(|p| (relative(&out, &p), std::fs::read(&p).unwrap())).collect();
    let layer_jar = std::fs::read(work.path().join("layer.jar")).ok();
    Compiled { classes, layer_jar }
}

/// Deploy a zip as a function of `runtime` with extra CreateFunction fields; panics unless 201.
pub async fn deploy_zip(
    server: &Server,
    name: &str,
    runtime: &str,
    handler: &str,
    zip: &[u8],
    extra: serde_json::Value,
) {
    use base64::Engine as _;
    let mut body = serde_json::json!({
        "FunctionName": name, "Runtime": runtime, "Handler": handler,
        "Role": "arn:aws:iam::000000000000:role/test",
        "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(zip)},
    });
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let resp = server.post("/2015-03-31/functions").json(&body).send().await;
    let status = resp.status();
    assert_eq!(status, 201, "{}", resp.text().await.unwrap());
}

fn sources_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files_under(dir).into_iter().map(|p| (relative(dir, &p), std::fs::read(&p).unwrap())).collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap().to_string_lossy().into_owned()
}

fn write_tree(root: &Path, files: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(root).unwrap();
    for (path, body) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
}

/// A zip of binary `(path, bytes)` entries.
pub fn zip_files(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in files {
        w.start_file(name.as_str(), zip::write::SimpleFileOptions::default().unix_permissions(0o644)).unwrap();
        w.write_all(body).unwrap();
    }
    w.finish().unwrap().into_inner()
}
