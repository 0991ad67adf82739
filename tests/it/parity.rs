//! AWS parity of the management API: every case of `tests/parity/cases/`
//! (a request and the answer AWS recorded for it) replayed through boto3
//! against a real `lambdabox serve` by `tests/parity/run.py`. A case whose
//! answer differs fails this test with the runner's account of it;
//! deliberate differences (listed in the README's Parity section) are
//! checked against lambdabox's own documented answer instead.

use crate::common::{self, Server};

use std::process::Command;

#[test]
fn the_management_api_answers_like_aws() {
    let server = Server::start();
    let key = server.key.clone().expect("a key pair was generated");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity/run.py");
    let out = Command::new(common::boto3_python())
        .arg(script)
        .env("PARITY_ENDPOINT", &server.url)
        .env("AWS_ACCESS_KEY_ID", key.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", key.secret())
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("the parity runner starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failures: Vec<&str> = stdout.lines().filter(|l| l.contains(r#""result": "fail""#)).collect();
    assert!(
        out.status.success() && failures.is_empty(),
        "cases answered unlike AWS:\n{}\n{}",
        failures.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.contains(r#""fail": 0"#) && !summary.contains(r#""pass": 0"#), "{summary}");
    eprintln!("parity: {summary}");
}
