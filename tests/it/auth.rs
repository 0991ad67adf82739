//! SigV4 authentication of the API, through a real controller: signed by
//! the AWS SDK for Rust, boto3, the `lambdabox` CLI and lambdabox's own
//! signer; refused with AWS's answers otherwise.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use aws_sdk_lambda::error::ProvideErrorMetadata;
use chrono::{TimeDelta, Utc};
use common::{sdk_client, Server};
use lambdabox::auth::{keyfile, sign, KeyPair};
use serde_json::{json, Value};

const FUNCTIONS: &str = "/2015-03-31/functions/";

/// A request to `path` signed by lambdabox's signer with `key` at `at`,
/// with `body` (changed to `tampered` after signing, if given).
async fn signed_at(
    server: &Server,
    key: &KeyPair,
    at: chrono::DateTime<Utc>,
    path: &str,
    body: &str,
    tampered: Option<&str>,
) -> reqwest::Response {
    let client = reqwest::Client::new();
    let mut request = client.post(format!("{}{path}", server.url)).body(body.to_owned()).build().unwrap();
    sign::sign(&mut request, key, "us-east-1", at).unwrap();
    if let Some(other) = tampered {
        *request.body_mut() = Some(other.to_owned().into());
    }
    client.execute(request).await.unwrap()
}

/// Status, `x-amzn-ErrorType` and the `message` of an answer.
async fn refusal(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let code = resp.headers().get("x-amzn-errortype").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, code, body["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn the_aws_sdk_signs_with_the_generated_pair_and_wrong_keys_are_refused() {
    let server = Server::start();
    let key = server.key.clone().expect("a key pair was generated");
    server.deploy("authed", "app.echo", json!({})).await;
    let listed = server.sdk().list_functions().send().await.expect("signed with the generated pair");
    assert_eq!(listed.functions().len(), 1);
    let out = server
        .sdk()
        .invoke()
        .function_name("authed")
        .payload(aws_sdk_lambda::primitives::Blob::new(r#"{"n":1}"#))
        .send()
        .await
        .expect("Invoke is signed too");
    let answer: Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    assert_eq!(answer, json!({"n": 1}));

    let wrong_secret = sdk_client(&server.url, key.access_key_id(), "wrong-secret-wrong-secret-wrong");
    let err = wrong_secret.list_functions().send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");
    assert!(
        err.message().unwrap().starts_with(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method."
        ),
        "{err:?}"
    );
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
    let unknown = sdk_client(&server.url, "AKIAUNKNOWN000000000", key.secret());
    let err = unknown.get_function().function_name("authed").send().await.unwrap_err();
    assert_eq!(err.code(), Some("UnrecognizedClientException"));
    assert_eq!(err.message(), Some("The security token included in the request is invalid."));
}

#[tokio::test]
async fn unsigned_requests_get_missing_authentication_token_but_health_is_public() {
    let server = Server::start();
    let unsigned = reqwest::Client::new();
    for (method, path) in [("GET", FUNCTIONS), ("POST", "/2015-03-31/functions/x/invocations"), ("GET", "/nowhere")] {
        let resp = unsigned.request(method.parse().unwrap(), format!("{}{path}", server.url)).send().await.unwrap();
        let status = resp.status().as_u16();
        let code = resp.headers()["x-amzn-errortype"].to_str().unwrap().to_owned();
        let body = resp.text().await.unwrap();
        assert_eq!((status, code.as_str()), (403, "MissingAuthenticationTokenException"), "{method} {path}");
        assert_eq!(body, r#"{"message":"Missing Authentication Token"}"#);
    }
    let health = unsigned.get(format!("{}/lambdabox/v1/health", server.url)).send().await.unwrap();
    assert_eq!((health.status().as_u16(), health.text().await.unwrap().as_str()), (200, "ok"));
}

#[tokio::test]
async fn clocks_more_than_five_minutes_off_are_refused() {
    let server = Server::start();
    let key = server.key.clone().unwrap();
    let path = "/2015-03-31/functions/x/invocations";
    let ok = signed_at(&server, &key, Utc::now() - TimeDelta::minutes(4), path, "{}", None).await;
    assert_eq!(refusal(ok).await.1, "ResourceNotFoundException", "4 minutes off is within the window");

    let late = signed_at(&server, &key, Utc::now() - TimeDelta::minutes(6), path, "{}", None).await;
    let (status, code, message) = refusal(late).await;
    assert_eq!((status, code.as_str()), (403, "InvalidSignatureException"));
    assert!(message.starts_with("Signature expired: ") && message.ends_with(" - 5 min.)"), "{message}");
    assert!(message.contains(" is now earlier than "), "{message}");
    let early = signed_at(&server, &key, Utc::now() + TimeDelta::minutes(6), path, "{}", None).await;
    let (status, _, message) = refusal(early).await;
    assert_eq!(status, 403);
    assert!(message.starts_with("Signature not yet current: ") && message.ends_with(" + 5 min.)"), "{message}");
}

/// Replaces the body after the SDK signed it (same length, so only the
/// signature can tell).
#[derive(Debug)]
struct Tamper;

impl aws_sdk_lambda::config::Intercept for Tamper {
    fn name(&self) -> &'static str {
        "Tamper"
    }

    fn modify_before_transmit(
        &self,
        context: &mut aws_sdk_lambda::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
        _components: &aws_sdk_lambda::config::RuntimeComponents,
        _cfg: &mut aws_sdk_lambda::config::ConfigBag,
    ) -> Result<(), aws_sdk_lambda::error::BoxError> {
        // So the controller must hash the body itself to notice.
        assert!(context.request().headers().get("x-amz-content-sha256").is_none(), "the SDK declares no hash");
        *context.request_mut().body_mut() = aws_sdk_lambda::primitives::SdkBody::from(r#"{"n":2}"#);
        Ok(())
    }
}

#[tokio::test]
async fn bodies_changed_after_signing_are_refused() {
    let server = Server::start();
    server.deploy("tamper", "app.echo", json!({})).await;
    let key = server.key.clone().unwrap();
    let path = Server::invoke_path("tamper");
    let resp = signed_at(&server, &key, Utc::now(), &path, r#"{"n":1}"#, Some(r#"{"n":2}"#)).await;
    assert_eq!(refusal(resp).await.1, "InvalidSignatureException", "with x-amz-content-sha256");

    // The AWS SDK sends no x-amz-content-sha256: the controller hashes the body.
    let payload = aws_sdk_lambda::primitives::Blob::new(r#"{"n":1}"#);
    let invoke = server.sdk().invoke().function_name("tamper").payload(payload);
    let err = invoke.customize().interceptor(Tamper).send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");
    let untouched = server.sdk().invoke().function_name("tamper").payload(aws_sdk_lambda::primitives::Blob::new("{}"));
    assert!(untouched.send().await.is_ok());
}

#[tokio::test]
async fn function_arns_in_paths_verify() {
    let server = Server::start();
    server.deploy("by-arn", "app.echo", json!({})).await;
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:by-arn";
    // The SDK sends the ARN's colons as %3A and signs them as %253A.
    let got = server.sdk().get_function().function_name(arn).send().await.expect("GetFunction by ARN");
    assert_eq!(got.configuration().unwrap().function_name(), Some("by-arn"));
    let qualified = format!("{arn}:$LATEST");
    let out = server.sdk().invoke().function_name(qualified).send().await.expect("Invoke by qualified ARN");
    assert_eq!(out.status_code(), 200);
}

#[tokio::test]
async fn presigned_urls_work_without_credentials_until_changed() {
    let server = Server::start();
    server.deploy("presigned", "app.echo", json!({})).await;
    let got = server.sdk().get_function().function_name("presigned").send().await.unwrap();
    let location = got.code().unwrap().location().unwrap().to_owned();
    assert!(location.contains("X-Amz-Signature="), "{location}");
    let zip = reqwest::get(&location).await.unwrap();
    assert_eq!(zip.status(), 200);
    assert!(zip.bytes().await.unwrap().starts_with(b"PK"));
    let longer = location.replace("X-Amz-Expires=600", "X-Amz-Expires=6000");
    assert_eq!(refusal(reqwest::get(&longer).await.unwrap()).await.1, "InvalidSignatureException");

    // Any GET of the API can be presigned, e.g. ListFunctions.
    let host = server.url.strip_prefix("http://").unwrap();
    let key = server.key.clone().unwrap();
    let url = sign::presign(host, FUNCTIONS, &key, "eu-west-1", Utc::now(), std::time::Duration::from_secs(60));
    let list: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(list["Functions"][0]["FunctionName"], "presigned");
}

#[tokio::test]
async fn insecure_no_auth_takes_anything_on_loopback_only() {
    let server = Server::start_with(&["--insecure-no-auth"]).with_key(None);
    assert!(!keyfile::path(&server.data_dir).exists(), "no key pair is generated");
    server.deploy("open", "app.echo", json!({})).await;
    assert_eq!(server.invoke("open", r#"{"n":1}"#).await.2, json!({"n": 1}), "unsigned");
    let stranger = sdk_client(&server.url, "AKIASTRANGER", "anything-at-all");
    stranger.list_functions().send().await.expect("any key");

    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lambdabox"))
        .args(["serve", "--listen", "0.0.0.0:0", "--insecure-no-auth", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--insecure-no-auth is allowed only with a loopback --listen address"), "{stderr}");
}

#[tokio::test]
async fn configured_pairs_replace_the_generated_one() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("keys");
    let (one, two) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
    std::fs::write(&file, format!("# team keys\n{}{}", one.to_line(), two.to_line())).unwrap();
    let data = tmp.path().join("data");
    let (old, _) = keyfile::load_or_generate(&data).unwrap();
    let flags = ["--credentials-file", file.to_str().unwrap()];
    let server = Server::start_in_from(Path::new("."), &data, &common::init_bin(), &flags).with_key(Some(one.clone()));
    assert!(!keyfile::path(&data).exists(), "the generated pair is removed, not left for the CLI to sign with");
    for key in [&one, &two] {
        let sdk = sdk_client(&server.url, key.access_key_id(), key.secret());
        sdk.list_functions().send().await.expect("each configured pair works");
    }
    let err = sdk_client(&server.url, old.access_key_id(), old.secret()).list_functions().send().await.unwrap_err();
    assert_eq!(err.code(), Some("UnrecognizedClientException"));

    let env_key = KeyPair::generate().unwrap();
    let env = [("LAMBDABOX_ACCESS_KEY_ID", env_key.access_key_id()), ("LAMBDABOX_SECRET_ACCESS_KEY", env_key.secret())];
    let server = Server::start_with_env(&[], &env).with_key(Some(env_key.clone()));
    assert!(!keyfile::path(&server.data_dir).exists());
    server.deploy("from-env", "app.echo", json!({})).await;
}

#[tokio::test]
async fn the_key_file_is_private() {
    let server = Server::start();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&keyfile::path(&server.data_dir)), 0o600);
    assert_eq!(mode(&server.data_dir), 0o700);
    let text = std::fs::read_to_string(keyfile::path(&server.data_dir)).unwrap();
    let key = server.key.clone().unwrap();
    assert!(text.contains(&key.to_line()));
    assert!(key.access_key_id().starts_with("LBX") && key.access_key_id().len() == 20);
    assert_eq!(key.secret().len(), 40);
}

/// Run the `lambdabox` CLI with only the environment given (plus PATH), a
/// HOME of its own, and no credentials of the test process.
fn cli(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lambdabox"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[tokio::test]
async fn lambdabox_credentials_prints_what_the_aws_sdks_need() {
    let server = Server::start();
    server.deploy("exported", "app.echo", json!({})).await;
    let home = tempfile::tempdir().unwrap();
    let data = server.data_dir.to_str().unwrap();
    let out = cli(home.path(), &["--endpoint", &server.url, "--data-dir", data, "credentials"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let vars: std::collections::HashMap<&str, &str> =
        text.lines().filter_map(|l| l.strip_prefix("export ")?.split_once('=')).collect();
    let key = server.key.clone().unwrap();
    assert_eq!(vars["AWS_ACCESS_KEY_ID"], key.access_key_id());
    assert_eq!(vars["AWS_SECRET_ACCESS_KEY"], key.secret());
    assert_eq!(vars["AWS_DEFAULT_REGION"], "us-east-1");
    assert_eq!(vars["AWS_ENDPOINT_URL"], server.url);
    let sdk = sdk_client(vars["AWS_ENDPOINT_URL"], vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"]);
    let listed = sdk.list_functions().send().await.expect("the printed pair works");
    assert_eq!(listed.functions()[0].function_name(), Some("exported"));

    // And a shell takes the lines as they are.
    let script = format!(
        "eval \"$(LAMBDABOX_DATA_DIR={data} {} credentials)\"; echo $AWS_ACCESS_KEY_ID",
        env!("CARGO_BIN_EXE_lambdabox")
    );
    let shell = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert_eq!(String::from_utf8(shell.stdout).unwrap().trim(), key.access_key_id());
}

#[tokio::test]
async fn the_cli_signs_with_the_key_file_then_the_aws_chain() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let data = server.data_dir.to_str().unwrap();
    let code = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let base = ["--endpoint", server.url.as_str(), "--data-dir", data];
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let all: Vec<&str> = base.iter().chain(args).copied().collect();
        cli(home.path(), &all, env)
    };
    let deploy = ["deploy", "hello", "--runtime", "python3.11", "--handler", "app.handler", "--code"];
    let deploy: Vec<&str> = deploy.iter().copied().chain([code.to_str().unwrap()]).collect();
    let out = run(&deploy, &[]);
    assert!(out.status.success(), "deploy signs with the key file: {}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["invoke", "hello", "--payload", r#"{"name":"cli"}"#], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["ls"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello"));

    // LAMBDABOX_* variables come first, and a refusal says which key was used.
    let wrong = [("LAMBDABOX_ACCESS_KEY_ID", "AKIAWRONG"), ("LAMBDABOX_SECRET_ACCESS_KEY", "wrong-wrong-wrong-wrong")];
    let out = run(&["ls"], &wrong);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("UnrecognizedClientException (403)"), "{stderr}");
    assert!(stderr.contains("signed with access key AKIAWRONG from $LAMBDABOX_ACCESS_KEY_ID"), "{stderr}");

    // Without a readable key file, the AWS credential chain: env, then ~/.aws/credentials.
    let key = server.key.clone().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let other_dir = ["--endpoint", server.url.as_str(), "--data-dir", elsewhere.path().to_str().unwrap(), "ls"];
    let aws_env = [("AWS_ACCESS_KEY_ID", key.access_key_id()), ("AWS_SECRET_ACCESS_KEY", key.secret())];
    assert!(cli(home.path(), &other_dir, &aws_env).status.success(), "AWS_* variables");
    let out = cli(home.path(), &other_dir, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("MissingAuthenticationTokenException"), "no credentials");
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    let profile = format!(
        "[default]\naws_access_key_id = AKIANOPE\naws_secret_access_key = nope\n\n[box]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.access_key_id(),
        key.secret()
    );
    std::fs::write(home.path().join(".aws/credentials"), profile).unwrap();
    assert!(cli(home.path(), &other_dir, &[("AWS_PROFILE", "box")]).status.success(), "profile from AWS_PROFILE");
    assert!(!cli(home.path(), &other_dir, &[]).status.success(), "the default profile's key is not the server's");
}

/// boto3 (botocore's signer) against the controller.
fn boto3(server: &Server, key_id: &str, secret: &str, function: &str) -> Value {
    let script = r#"
import json, sys, boto3, botocore
from botocore.config import Config
url, key, secret, function = sys.argv[1:5]
client = boto3.client("lambda", endpoint_url=url, region_name="eu-west-1", aws_access_key_id=key,
                      aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))
try:
    names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
    answer = client.invoke(FunctionName=function, Payload=json.dumps({"from": "boto3"}))
    print(json.dumps({"names": names, "status": answer["StatusCode"], "payload": json.load(answer["Payload"])}))
except botocore.exceptions.ClientError as e:
    print(json.dumps({"error": e.response["Error"]["Code"], "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}))
"#;
    let out = Command::new(common::boto3_python())
        .args(["-c", script, &server.url, key_id, secret, function])
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn boto3_signs_with_the_generated_pair() {
    let server = Server::start();
    server.deploy("boto", "app.echo", json!({})).await;
    let key = server.key.clone().unwrap();
    let (id, secret) = (key.access_key_id().to_owned(), key.secret().to_owned());
    // Blocking is fine here: the controller is another process.
    let ok = boto3(&server, &id, &secret, "boto");
    assert_eq!(ok, json!({"names": ["boto"], "status": 200, "payload": {"from": "boto3"}}));
    let wrong = boto3(&server, &id, "wrong-secret-wrong-secret", "boto");
    assert_eq!(wrong, json!({"error": "InvalidSignatureException", "status": 403}));
}
