//! Hostile input to the management API, sent to a live controller: zips
//! built to escape their folder or exhaust the controller, and field values
//! AWS's API model refuses. Each must be answered 400 and leave the host as
//! it was.

use crate::common;

use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;
use common::{zip_of, Server, APP_PY};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Digest;
use zip::write::SimpleFileOptions;

const ROLE: &str = "arn:aws:iam::000000000000:role/test";

/// One API call with a JSON body: status, `x-amzn-ErrorType` (empty when
/// none) and the body as JSON.
async fn call(server: &Server, method: Method, path: &str, body: &Value) -> (u16, String, Value) {
    let (status, headers, bytes) = server.api(method, path, body.to_string().into_bytes()).await;
    let kind = headers.get("x-amzn-errortype").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, kind, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn b64(zip: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(zip)
}

/// CreateFunction of a Python zip function, with `extra` fields merged in.
async fn create_zip_function(server: &Server, name: &str, zip: &[u8], extra: Value) -> (u16, String, Value) {
    let mut body = json!({
        "FunctionName": name, "Runtime": "python3.11", "Handler": "app.echo", "Role": ROLE,
        "Code": {"ZipFile": b64(zip)},
    });
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    call(server, Method::POST, "/2015-03-31/functions", &body).await
}

/// PublishLayerVersion of `zip`, with `extra` fields merged in.
async fn publish_layer(server: &Server, name: &str, zip: &[u8], extra: Value) -> (u16, String, Value) {
    let mut body = json!({"Content": {"ZipFile": b64(zip)}});
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    call(server, Method::POST, &format!("/2018-10-31/layers/{name}/versions"), &body).await
}

/// How deep the chain of links climbs: more levels than a data directory
/// in the system's temporary folder is deep (`..` at `/` stays at `/`),
/// and fewer than the kernel's 40 links per lookup.
const CLIMB: usize = 24;

/// Links `u0 -> .`, `u1 -> u0/..`, … `u24 -> u23/..`: each alone points
/// inside the folder, yet together `u24` is the host's `/`. Then
/// `t -> u24/VICTIM` names a host folder through the chain, and `then`
/// (directories end in `/`) are entries that try to reach it through `t`.
fn climbing_zip(victim: &Path, then: &[&str]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default();
    w.add_symlink("u0", ".", opts).unwrap();
    for k in 1..=CLIMB {
        w.add_symlink(format!("u{k}"), format!("u{}/..", k - 1), opts).unwrap();
    }
    let below_root = victim.strip_prefix("/").unwrap().display();
    w.add_symlink("t", format!("u{CLIMB}/{below_root}"), opts).unwrap();
    for entry in then {
        if entry.ends_with('/') {
            w.add_directory(*entry, opts).unwrap();
        } else {
            w.start_file(*entry, opts).unwrap();
            w.write_all(b"written by a zip entry").unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// A host folder the attacks aim at: mode 0700 with one file in it.
fn victim_dir(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    let victim = tmp.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep"), "host data").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o700)).unwrap();
    victim
}

fn assert_untouched(victim: &Path) {
    let mode = std::fs::metadata(victim).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "the host folder's mode was changed through a zip's links");
    let names: Vec<String> =
        std::fs::read_dir(victim).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["keep"], "something was created in the host folder");
    assert_eq!(std::fs::read_to_string(victim.join("keep")).unwrap(), "host data");
}

/// Each way of reaching the victim through `t`: making it the unpacked
/// directory itself (which set its mode), making a folder in it, writing a
/// file in it.
const REACHES: [&str; 3] = ["t/", "t/made/", "t/pwned"];

#[tokio::test]
async fn chained_symlinks_cannot_reach_the_host_through_create_function() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let victim = victim_dir(&tmp);
    for (i, reach) in REACHES.iter().enumerate() {
        let zip = climbing_zip(&victim, &[reach]);
        let (status, kind, body) = create_zip_function(&server, &format!("climb{i}"), &zip, json!({})).await;
        assert_untouched(&victim);
        assert_eq!((status, kind.as_str()), (400, "InvalidParameterValueException"), "{reach}: {body}");
    }
}

#[tokio::test]
async fn chained_symlinks_cannot_reach_the_host_through_layers() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let victim = victim_dir(&tmp);
    for (i, reach) in REACHES.iter().enumerate() {
        let (status, kind, body) =
            publish_layer(&server, &format!("climb{i}"), &climbing_zip(&victim, &[reach]), json!({})).await;
        assert_untouched(&victim);
        assert_eq!((status, kind.as_str()), (400, "InvalidParameterValueException"), "{reach}: {body}");
    }
    // Split over two layers, each harmless alone: the links in one, the
    // entry that goes through them in the next, met when /opt is merged.
    let (status, _, body) = publish_layer(&server, "links", &climbing_zip(&victim, &[]), json!({})).await;
    assert_eq!(status, 201, "links alone are stored as links: {body}");
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.add_directory("t/", SimpleFileOptions::default()).unwrap();
    let (status, _, body) = publish_layer(&server, "through", &w.finish().unwrap().into_inner(), json!({})).await;
    assert_eq!(status, 201, "{body}");
    let layers = json!({"Layers": [
        "arn:aws:lambda:us-east-1:000000000000:layer:links:1",
        "arn:aws:lambda:us-east-1:000000000000:layer:through:1",
    ]});
    let (status, _, body) = create_zip_function(&server, "merged", &zip_of(&[("app.py", APP_PY)]), layers).await;
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = server.invoke("merged", "{}").await;
    assert_untouched(&victim);
    assert_ne!(status, 200, "/opt cannot be merged through a link: {body}");
}

/// Bits written into bytes least significant first, as deflate packs them.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u32,
    used: u32,
}

impl Bits {
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= value << self.used;
        self.used += count;
        while self.used >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.used -= 8;
        }
    }

    /// A Huffman code, which deflate stores most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        self.put(code.reverse_bits() >> (32 - len), len);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// `len` bytes of `a` as one fixed-Huffman deflate block: a literal, then
/// back-references of 258 bytes at distance 1 (13 bits each), so 600 MiB
/// deflate to 4 MB in a blink where a compressor takes a minute.
fn deflated_a(len: usize) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.put(1, 1); // last block
    bits.put(1, 2); // fixed Huffman codes
    let literal_a = |bits: &mut Bits| bits.code(0x30 + u32::from(b'a'), 8);
    literal_a(&mut bits);
    for _ in 0..(len - 1) / 258 {
        bits.code(0xc0 + 5, 8); // length symbol 285: 258 bytes
        bits.code(0, 5); // distance symbol 0: 1 byte back
    }
    for _ in 0..(len - 1) % 258 {
        literal_a(&mut bits);
    }
    bits.code(0, 7); // end of block
    bits.finish()
}

/// CRC-32 of `len` bytes of `a`, from one MiB's by combination.
fn crc_of_a(len: usize) -> u32 {
    const MIB: usize = 1 << 20;
    let mut chunk = crc32fast::Hasher::new();
    chunk.update(&vec![b'a'; MIB]);
    let mut total = crc32fast::Hasher::new();
    for _ in 0..len / MIB {
        total.combine(&chunk);
    }
    total.update(&vec![b'a'; len % MIB]);
    total.finalize()
}

/// A zip of one symbolic link `name` whose target is `len` bytes of `a`,
/// written field by field (the zip crate can only compress it slowly).
fn zip_with_huge_link(name: &str, len: usize) -> Vec<u8> {
    let data = deflated_a(len);
    let crc = crc_of_a(len);
    let common = |out: &mut Vec<u8>| {
        for v in [20u16, 0, 8, 0, 0x21] {
            out.extend(v.to_le_bytes()); // version needed, flags, deflate, time, date
        }
        for v in [crc, data.len() as u32, len as u32] {
            out.extend(v.to_le_bytes());
        }
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes()); // no extra field
    };
    let mut zip = 0x0403_4b50u32.to_le_bytes().to_vec();
    common(&mut zip);
    zip.extend(name.as_bytes());
    zip.extend(&data);
    let directory_at = zip.len();
    zip.extend(0x0201_4b50u32.to_le_bytes());
    zip.extend((3u16 << 8 | 20).to_le_bytes()); // made by Unix
    common(&mut zip);
    for v in [0u16, 0, 0] {
        zip.extend(v.to_le_bytes()); // comment length, disk, internal attributes
    }
    zip.extend((0o120777u32 << 16).to_le_bytes()); // a symbolic link
    zip.extend(0u32.to_le_bytes()); // its local header's offset
    zip.extend(name.as_bytes());
    let directory_len = zip.len() - directory_at;
    zip.extend(0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, 1, 1] {
        zip.extend(v.to_le_bytes());
    }
    zip.extend((directory_len as u32).to_le_bytes());
    zip.extend((directory_at as u32).to_le_bytes());
    zip.extend(0u16.to_le_bytes());
    zip
}

/// The controller's peak resident memory, from `/proc`.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

#[tokio::test]
async fn a_huge_link_target_is_refused_without_reading_it() {
    let zip = zip_with_huge_link("link", 600 << 20);
    assert!(zip.len() < 5 << 20, "{} bytes", zip.len());
    let check = zip::ZipArchive::new(Cursor::new(&zip)).unwrap();
    assert!(check.len() == 1, "the hand-built zip is one the zip crate reads");

    let server = Server::start();
    let (status, kind, body) = create_zip_function(&server, "hugelink", &zip, json!({})).await;
    assert_eq!((status, kind.as_str()), (400, "InvalidParameterValueException"), "{body}");
    let (status, _, body) = publish_layer(&server, "hugelink", &zip, json!({})).await;
    assert_eq!(status, 400, "{body}");
    let peak = peak_rss_mib(server.pid());
    assert!(peak < 300, "the controller's memory peaked at {peak} MiB: the target was read whole");
}

#[tokio::test]
async fn too_many_entries_are_refused() {
    // Empty stored entries with short names: half a second to build.
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..70_000u32 {
        w.start_file(format!("{i:x}"), stored).unwrap();
    }
    let zip = w.finish().unwrap().into_inner();

    // Refused before anything is unpacked (the count is the first check):
    // accepted, the old code unpacked for seconds and answered 201.
    let server = Server::start();
    let (status, kind, body) = create_zip_function(&server, "many", &zip, json!({})).await;
    assert_eq!((status, kind.as_str()), (400, "InvalidParameterValueException"), "{body}");
    let leftovers = std::fs::read_dir(server.data_dir.join("code")).unwrap().count();
    assert_eq!(leftovers, 0, "nothing of the refused zip stays");
}

#[tokio::test]
async fn over_long_names_are_refused_as_bad_input() {
    let server = Server::start();
    let long_component = "a".repeat(256);
    let long_path = format!("{}f.py", format!("{}/", "d".repeat(200)).repeat(21));
    for (i, name) in [long_component.clone(), format!("{long_component}/"), long_path].iter().enumerate() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        if name.ends_with('/') {
            w.add_directory(name.as_str(), SimpleFileOptions::default()).unwrap();
        } else {
            w.start_file(name.as_str(), SimpleFileOptions::default()).unwrap();
        }
        let zip = w.finish().unwrap().into_inner();
        let (status, kind, body) = create_zip_function(&server, &format!("long{i}"), &zip, json!({})).await;
        assert_eq!((status, kind.as_str()), (400, "InvalidParameterValueException"), "{}: {body}", name.len());
    }
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.add_symlink(long_component, "app.py", SimpleFileOptions::default()).unwrap();
    let (status, _, body) = publish_layer(&server, "longlink", &w.finish().unwrap().into_inner(), json!({})).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn unpacked_modes_are_0755_or_0644_whatever_the_zip_says() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let mode = |m: u32| SimpleFileOptions::default().external_attributes(m << 16);
    let files = [
        ("app.py", 0o100600), // private: the sandbox user must still read it
        ("bin/tool", 0o100777),
        ("setuid", 0o104755),
        ("shared.txt", 0o100666),
        ("implicit/parent/mod.py", 0),
    ];
    for (name, m) in files {
        w.start_file(name, if m == 0 { SimpleFileOptions::default() } else { mode(m) }).unwrap();
        w.write_all(APP_PY.as_bytes()).unwrap();
    }
    w.add_directory("open/", mode(0o41777)).unwrap();
    let zip = w.finish().unwrap().into_inner();

    let server = Server::start();
    let (status, _, body) = create_zip_function(&server, "modes", &zip, json!({})).await;
    assert_eq!(status, 201, "{body}");
    let sha: String = sha2::Sha256::digest(&zip).iter().map(|b| format!("{b:02x}")).collect();
    let task = server.data_dir.join("code").join(sha);
    let mode_of = |p: &str| std::fs::symlink_metadata(task.join(p)).unwrap().permissions().mode() & 0o7777;
    let got: Vec<(&str, u32)> = [
        "",
        "app.py",
        "bin",
        "bin/tool",
        "setuid",
        "shared.txt",
        "implicit",
        "implicit/parent",
        "implicit/parent/mod.py",
        "open",
    ]
    .into_iter()
    .map(|p| (p, mode_of(p)))
    .collect();
    let want = [
        ("", 0o755),
        ("app.py", 0o644),
        ("bin", 0o755),
        ("bin/tool", 0o755),
        ("setuid", 0o755),
        ("shared.txt", 0o644),
        ("implicit", 0o755),
        ("implicit/parent", 0o755),
        ("implicit/parent/mod.py", 0o644),
        ("open", 0o755),
    ];
    assert_eq!(got, want);
    let (status, _, out) = server.invoke("modes", r#"{"ok": true}"#).await;
    assert_eq!((status, out), (200, json!({"ok": true})), "the sandbox user reads a 0600 file made 0644");
}

#[tokio::test]
async fn image_uris_must_be_docker_references() {
    common::ensure_runtime_image("python3.11");
    let server = Server::start();
    let existing = "lambdabox/python3.11:latest";
    let image_function = |name: &str, uri: &str| {
        json!({"FunctionName": name, "PackageType": "Image", "Role": ROLE, "Code": {"ImageUri": uri},
               "ImageConfig": {"EntryPoint": ["/var/runtime/bootstrap"], "Command": ["app.echo"]}})
    };
    let (status, _, body) =
        call(&server, Method::POST, "/2015-03-31/functions", &image_function("img", existing)).await;
    assert_eq!(status, 201, "a plain reference to a local image is fine: {body}");

    let bad = [
        format!("{existing}/json?"),
        "IMG/json?".to_owned(),
        "..%2F..%2Finfo".to_owned(),
        "../../info".to_owned(),
        "Upper/Case:1".to_owned(),
        "lambdabox/python3.11:latest#frag".to_owned(),
        "repo:bad tag".to_owned(),
        "repo@sha256:1234".to_owned(),
        "localhost:5000x/repo".to_owned(),
        format!("{}:1", "a".repeat(300)),
        "repo\0:1".to_owned(),
        String::new(),
    ];
    for (i, uri) in bad.iter().enumerate() {
        let (status, kind, body) =
            call(&server, Method::POST, "/2015-03-31/functions", &image_function(&format!("bad{i}"), uri)).await;
        assert_eq!((status, kind.as_str()), (400, "InvalidParameterValueException"), "{uri:?}: {body}");
        let (status, kind, body) =
            call(&server, Method::PUT, "/2015-03-31/functions/img/code", &json!({"ImageUri": uri})).await;
        assert_eq!((status, kind.as_str()), (400, "InvalidParameterValueException"), "update {uri:?}: {body}");
    }
    let (status, _, body) = call(&server, Method::GET, "/2015-03-31/functions/img", &json!({})).await;
    assert_eq!((status, body["Code"]["ImageUri"].as_str()), (200, Some(existing)), "{body}");
    let path = "/2015-03-31/functions/img/configuration";
    for config in [json!({"Command": ["app.\0echo"]}), json!({"WorkingDirectory": "/var/\0task"})] {
        let (status, _, body) = call(&server, Method::PUT, path, &json!({"ImageConfig": config})).await;
        assert_eq!(status, 400, "{config}: {body}");
    }
}

#[tokio::test]
async fn environment_values_and_keys_are_checked() {
    let server = Server::start();
    let zip = zip_of(&[("app.py", APP_PY)]);
    let env = |vars: Value| json!({"Environment": {"Variables": vars}});
    for (i, vars) in [json!({"GOOD": "nul\0inside"}), json!({"1BAD": "x"}), json!({"A": "x"}), json!({"A-B": "x"})]
        .into_iter()
        .enumerate()
    {
        let (status, _, body) = create_zip_function(&server, &format!("env{i}"), &zip, env(vars.clone())).await;
        assert_eq!(status, 400, "{vars}: {body}");
    }
    let (status, _, body) = create_zip_function(&server, "env-ok", &zip, env(json!({"GOOD": "fine"}))).await;
    assert_eq!(status, 201, "{body}");
    let path = "/2015-03-31/functions/env-ok/configuration";
    let (status, _, body) = call(&server, Method::PUT, path, &env(json!({"GOOD": "nul\0inside"}))).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, out) = server.invoke("env-ok", "{}").await;
    assert_eq!((status, out), (200, json!({})), "the function still runs");
}

#[tokio::test]
async fn roles_must_be_iam_role_arns() {
    let server = Server::start();
    let zip = zip_of(&[("app.py", APP_PY)]);
    let bad = [
        "r",
        "arn:aws:iam::123:role/x",
        "arn:aws:iam::000000000000:user/x",
        "arn:aws:iam::000000000000:role/has space",
        "arn:aws:iam::000000000000:role/nul\0",
        "arn:aws:s3::000000000000:role/x",
    ];
    for (i, role) in bad.iter().enumerate() {
        let (status, kind, body) = create_zip_function(&server, &format!("role{i}"), &zip, json!({"Role": role})).await;
        assert_eq!((status, kind.as_str()), (400, "ValidationException"), "{role:?}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("1 validation error detected: Value '")
                && message.contains("' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"),
            "{message}"
        );
    }
    for role in ["arn:aws:iam::123456789012:role/service-role/My+Role=,.@-_", "arn:aws-cn:iam::123456789012:role/x"] {
        let (status, _, body) = create_zip_function(&server, "role-ok", &zip, json!({"Role": role})).await;
        assert_eq!(status, 201, "{role}: {body}");
        call(&server, Method::DELETE, "/2015-03-31/functions/role-ok", &json!({})).await;
    }
    let (status, _, _) = create_zip_function(&server, "role-ok", &zip, json!({})).await;
    assert_eq!(status, 201);
    let path = "/2015-03-31/functions/role-ok/configuration";
    let (status, kind, body) = call(&server, Method::PUT, path, &json!({"Role": "r"})).await;
    assert_eq!((status, kind.as_str()), (400, "ValidationException"), "{body}");
}

#[tokio::test]
async fn layer_fields_are_bounded_as_on_aws() {
    let server = Server::start();
    let zip = zip_of(&[("python/lib.py", "X = 1\n")]);
    let cases = [
        json!({"LicenseInfo": "x".repeat(513)}),
        json!({"CompatibleArchitectures": ["x86_64", "arm64", "x86_64"]}),
        json!({"CompatibleArchitectures": ["sparc"]}),
    ];
    for (i, extra) in cases.iter().enumerate() {
        let (status, kind, body) = publish_layer(&server, &format!("bounded{i}"), &zip, extra.clone()).await;
        assert_eq!((status, kind.as_str()), (400, "ValidationException"), "{extra}: {body}");
    }
    let both = json!({"LicenseInfo": "x".repeat(513), "CompatibleArchitectures": ["x86_64", "arm64", "arm64"]});
    let (_, _, body) = publish_layer(&server, "both", &zip, both).await;
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("2 validation errors detected: "), "{message}");
    assert!(message.contains("at 'licenseInfo'") && message.contains("at 'compatibleArchitectures'"), "{message}");
    let fine = json!({"LicenseInfo": "x".repeat(512), "CompatibleArchitectures": ["x86_64", "arm64"]});
    let (status, _, body) = publish_layer(&server, "fine", &zip, fine).await;
    assert_eq!(status, 201, "{body}");
    let listed: Vec<String> = std::fs::read_dir(server.data_dir.join("code"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed.len(), 2, "only the accepted layer's zip and folder are stored: {listed:?}");
}

#[tokio::test]
async fn function_fields_are_bounded_as_on_aws() {
    let server = Server::start();
    let zip = zip_of(&[("app.py", APP_PY)]);
    let cases = [
        json!({"Handler": "app.echo\0"}),
        json!({"Handler": "app.\u{1b}echo"}),
        json!({"Handler": "a".repeat(129)}),
        json!({"Description": "d".repeat(257)}),
        json!({"Description": "nul\0"}),
        json!({"Timeout": 0}),
        json!({"EphemeralStorage": {"Size": 511}}),
    ];
    for (i, extra) in cases.iter().enumerate() {
        let (status, _, body) = create_zip_function(&server, &format!("field{i}"), &zip, extra.clone()).await;
        assert_eq!(status, 400, "{extra}: {body}");
    }
    let (status, _, body) =
        create_zip_function(&server, "fields-ok", &zip, json!({"Description": "d".repeat(256)})).await;
    assert_eq!(status, 201, "{body}");
    let path = "/2015-03-31/functions/fields-ok/configuration";
    for extra in [json!({"Description": "nul\0"}), json!({"Handler": "app.\u{7}echo"})] {
        let (status, _, body) = call(&server, Method::PUT, path, &extra).await;
        assert_eq!(status, 400, "{extra}: {body}");
    }
}
