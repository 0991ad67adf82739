//! Function URLs through clients that know nothing of AWS: curl and
//! Python's urllib against a real controller's URL listener, by host name
//! and by the `/lambda-url/ID/` path form; AWS_IAM URLs through curl's own
//! SigV4 signing.

use std::process::Command;

use serde_json::{json, Value};

use crate::common::{self, Server};

/// One handler, routed on the path its event says it was called with.
const WEB_PY: &str = r#"import base64, hashlib, json

def handler(event, context):
    path = event["rawPath"]
    if path.startswith("/echo"):
        headers = {"content-type": "application/json", "access-control-allow-origin": "*"}
        return {"statusCode": 200, "headers": headers, "body": json.dumps(event)}
    if path == "/binary":
        body = event.get("body", "")
        return {"statusCode": 200, "headers": {"content-type": "image/png"}, "body": body,
                "isBase64Encoded": event["isBase64Encoded"]}
    if path == "/size":
        raw = event.get("body", "")
        data = base64.b64decode(raw) if event["isBase64Encoded"] else raw.encode()
        return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if path == "/redirect":
        return {"statusCode": 302, "headers": {"location": "/echo"}, "cookies": ["a=1; Path=/", "b=2; HttpOnly"]}
    if path == "/plain":
        return "hello"
    if path == "/version":
        return {"version": context.function_version}
    raise RuntimeError("no route for " + path)
"#;

/// What curl got: status, headers (names lowercased, in order) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

fn curl(args: &[&str]) -> Answer {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let out = Command::new("curl")
        .args(["-sS", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&head)
        .args(["-w", "%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let head = std::fs::read_to_string(&head).unwrap();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    Answer { status, headers, body: std::fs::read(&body).unwrap_or_default() }
}

/// Python's urllib: `script` gets the URL as `sys.argv[1]`; its stdout.
fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new(common::boto3_python()).arg("-c").arg(script).args(args).output().expect("python runs");
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A function's URL: what the API reported, its id and its host:port.
struct Url {
    reported: String,
    id: String,
    authority: String,
    /// `http://127.0.0.1:PORT/lambda-url/ID`.
    path_form: String,
}

impl Url {
    /// curl arguments that send `path` by host name (resolved to loopback).
    fn by_host(&self, path: &str) -> Vec<String> {
        let resolve = format!("{}:127.0.0.1", self.authority);
        vec!["--resolve".into(), resolve, format!("http://{}{path}", self.authority)]
    }
}

async fn create_url(server: &Server, name: &str, query: &[(&str, &str)], body: Value) -> Url {
    let resp = server.post(&format!("/2021-10-31/functions/{name}/url")).query(query).json(&body).send().await;
    assert_eq!(resp.status(), 201);
    let config: Value = resp.json().await.unwrap();
    let reported = config["FunctionUrl"].as_str().unwrap().to_owned();
    let listener = server.url_listener.as_deref().expect("the URL listener is on");
    let port = listener.rsplit(':').next().unwrap();
    let authority = reported.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let (id, rest) = authority.split_once('.').unwrap();
    assert_eq!(rest, format!("lambda-url.us-east-1.localhost:{port}"), "{reported}");
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()), "{id}");
    let path_form = format!("{listener}/lambda-url/{id}");
    Url { reported, id: id.to_owned(), authority, path_form }
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn a_url_serves_plain_http_as_lambda_events_and_answers() {
    let server = Server::start();
    server.deploy_files("web", "app.handler", &[("app.py", WEB_PY)], json!({})).await;
    let cors = json!({"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"], "MaxAge": 60});
    let url = create_url(&server, "web", &[], json!({"AuthType": "NONE", "Cors": cors})).await;

    // By host: query strings, repeated headers, cookies, the raw path.
    let mut get = url.by_host("/echo/a%2Fb?x=1&x=2&y=z%20z");
    get.extend(["-H", "X-Rep: a", "-H", "X-Rep: b", "-b", "c1=v1; c2=v2", "-A", "curl/urls"].map(String::from));
    let a = curl(&args(&get));
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let e = a.json();
    assert_eq!((e["version"].as_str(), e["routeKey"].as_str()), (Some("2.0"), Some("$default")));
    assert_eq!((e["rawPath"].as_str(), e["rawQueryString"].as_str()), (Some("/echo/a%2Fb"), Some("x=1&x=2&y=z%20z")));
    assert_eq!(e["queryStringParameters"], json!({"x": "1,2", "y": "z z"}));
    assert_eq!(e["headers"]["x-rep"], "a,b");
    assert_eq!(e["cookies"], json!(["c1=v1", "c2=v2"]));
    assert!(e["headers"].get("cookie").is_none());
    let c = &e["requestContext"];
    assert_eq!((c["http"]["method"].as_str(), c["http"]["userAgent"].as_str()), (Some("GET"), Some("curl/urls")));
    assert_eq!((c["domainPrefix"].as_str(), c["accountId"].as_str()), (Some(url.id.as_str()), Some("anonymous")));
    assert_eq!(c["http"]["sourceIp"], "127.0.0.1");
    assert!(a.header("x-amzn-requestid").len() == 1);

    // By path, through urllib: the function sees the path AWS would send.
    let post = "import sys, urllib.request\n\
                r = urllib.request.Request(sys.argv[1], data=b'{\"k\": \"v\"}', method='POST',\n\
                                           headers={'content-type': 'application/json'})\n\
                print(urllib.request.urlopen(r).read().decode())";
    let e: Value = serde_json::from_str(&python(post, &[&format!("{}/echo/x?q=1", url.path_form)])).unwrap();
    assert_eq!((e["rawPath"].as_str(), e["body"].as_str()), (Some("/echo/x"), Some(r#"{"k": "v"}"#)));
    assert_eq!(
        (e["isBase64Encoded"].as_bool(), e["requestContext"]["http"]["method"].as_str()),
        (Some(false), Some("POST"))
    );

    // A binary body round-trips byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n".iter().copied().chain((0..=255u8).cycle().take(5000)).collect();
    std::fs::write(dir.path().join("in.png"), &png).unwrap();
    let upload = format!("@{}", dir.path().join("in.png").display());
    let a = curl(&["-H", "content-type: image/png", "--data-binary", &upload, &format!("{}/binary", url.path_form)]);
    assert_eq!((a.status, a.header("content-type")), (200, vec!["image/png"]));
    assert!(a.body == png, "the bytes came back changed ({} of {})", a.body.len(), png.len());

    // A 4 MB body reaches the function whole.
    let big = "import sys, urllib.request\n\
               data = bytes(range(256)) * (4 * 1024 * 1024 // 256)\n\
               r = urllib.request.Request(sys.argv[1], data=data, method='POST',\n\
                                          headers={'content-type': 'application/octet-stream'})\n\
               print(urllib.request.urlopen(r).read().decode())";
    let out: Value = serde_json::from_str(&python(big, &[&format!("{}/size", url.path_form)])).unwrap();
    let data: Vec<u8> = (0..=255u8).cycle().take(4 * 1024 * 1024).collect();
    assert_eq!(out, json!({"size": data.len(), "sha256": lambdabox::auth::sigv4::hex_sha256(&data)}));

    // Status, headers and one set-cookie per cookie; strings unquoted; errors 502.
    let a = curl(&args(&url.by_host("/redirect")));
    assert_eq!((a.status, a.header("location")), (302, vec!["/echo"]));
    assert_eq!(a.header("set-cookie"), ["a=1; Path=/", "b=2; HttpOnly"]);
    let a = curl(&[&format!("{}/plain", url.path_form)]);
    assert_eq!((a.status, a.body.as_slice(), a.header("content-type")), (200, &b"hello"[..], vec!["application/json"]));
    let a = curl(&[&format!("{}/nowhere", url.path_form)]);
    assert_eq!((a.status, a.body.as_slice()), (502, &b"Internal Server Error"[..]));

    // CORS: preflights from the configuration, whose headers beat the function's.
    let origin = ["-H", "Origin: https://app.example"];
    let a = curl(
        &[&origin[..], &["-X", "OPTIONS", "-H", "Access-Control-Request-Method: POST"], &[&url.reported]].concat(),
    );
    assert_eq!(a.status, 200);
    assert_eq!(a.header("access-control-allow-origin"), ["https://app.example"]);
    assert_eq!(
        (a.header("access-control-allow-methods"), a.header("access-control-max-age")),
        (vec!["GET,POST"], vec!["60"])
    );
    let a = curl(&[&origin[..], &[&format!("{}/echo", url.path_form)]].concat());
    assert_eq!(a.header("access-control-allow-origin"), ["https://app.example"], "not the function's *");

    // Unknown URLs, by host and by path: Lambda's 403.
    let unknown = Url { id: "0".repeat(32), authority: url.authority.replacen(&url.id, &"0".repeat(32), 1), ..url };
    for a in [curl(&args(&unknown.by_host("/echo"))), curl(&[&unknown.path_form.replace(&url.id, &unknown.id)])] {
        assert_eq!((a.status, a.header("x-amzn-errortype")), (403, vec!["AccessDeniedException"]));
        assert_eq!(a.body, br#"{"Message":null}"#);
    }
}

#[tokio::test]
async fn an_alias_url_follows_its_alias_and_an_iam_url_wants_a_signature() {
    let server = Server::start();
    server.deploy_files("aliased", "app.handler", &[("app.py", WEB_PY)], json!({})).await;
    let c = server.sdk();
    c.publish_version().function_name("aliased").send().await.expect("PublishVersion");
    c.create_alias().function_name("aliased").name("live").function_version("1").send().await.expect("CreateAlias");
    let url = create_url(&server, "aliased", &[("Qualifier", "live")], json!({"AuthType": "AWS_IAM"})).await;
    let target = format!("{}/version", url.path_form);

    let unsigned = curl(&[&target]);
    assert_eq!(unsigned.status, 403, "{}", String::from_utf8_lossy(&unsigned.body));
    let key = server.key.clone().expect("a generated key pair");
    let user = format!("{}:{}", key.access_key_id(), key.secret());
    let signed = |path: &str| curl(&["--aws-sigv4", "aws:amz:us-east-1:lambda", "--user", &user, path]);
    let wrong = curl(&["--aws-sigv4", "aws:amz:us-east-1:lambda", "--user", "LBXNOBODY:secret", &target]);
    assert_eq!(wrong.status, 403);
    let a = signed(&target);
    assert_eq!((a.status, a.json()), (200, json!({"version": "1"})), "the alias runs version 1");

    c.update_alias().function_name("aliased").name("live").function_version("$LATEST").send().await.unwrap();
    assert_eq!(signed(&target).json(), json!({"version": "$LATEST"}), "and follows it when it moves");

    // The CLI changes the URL (now open to anyone) and prints it.
    let out = Command::new(env!("CARGO_BIN_EXE_lambdabox"))
        .args(["--endpoint", &server.url, "--data-dir"])
        .arg(&server.data_dir)
        .args(["url", "aliased", "--alias", "live", "--auth", "none"])
        .output()
        .expect("lambdabox runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), url.reported);
    assert_eq!(curl(&[&target]).status, 200, "NONE needs no signature");

    // Deleting the alias takes its URL with it.
    c.delete_alias().function_name("aliased").name("live").send().await.unwrap();
    assert_eq!(curl(&[&target]).status, 403);
    let resp = server.get("/2021-10-31/functions/aliased/url").query(&[("Qualifier", "live")]).send().await;
    assert_eq!(resp.status(), 404);
}

/// A function that runs past its timeout answers 502 at its URL, as a
/// failing one does; one whose reserved concurrency is 0 answers 429.
#[tokio::test]
async fn timeouts_are_502_and_throttles_429() {
    let server = Server::start();
    let slow = "import time\ndef handler(event, context):\n    time.sleep(3)\n    return 'late'\n";
    server.deploy_files("slow", "slow.handler", &[("slow.py", slow)], json!({"Timeout": 1})).await;
    let url = create_url(&server, "slow", &[], json!({"AuthType": "NONE"})).await;
    let a = curl(&[&format!("{}/", url.path_form)]);
    assert_eq!((a.status, a.body.as_slice()), (502, &b"Internal Server Error"[..]));

    server.deploy_files("closed", "slow.handler", &[("slow.py", slow)], json!({})).await;
    let zero = json!({"ReservedConcurrentExecutions": 0});
    assert_eq!(server.put("/2017-10-31/functions/closed/concurrency").json(&zero).send().await.status(), 200);
    let url = create_url(&server, "closed", &[], json!({"AuthType": "NONE"})).await;
    let a = curl(&[&format!("{}/", url.path_form)]);
    assert_eq!(a.status, 429, "{}", String::from_utf8_lossy(&a.body));
}

/// A Rust function on AWS's `lambda_http` crate
/// (`tests/fixtures/provided-rust/http`) parses the URL's event with the
/// crate's own types, and streams through `run_with_streaming_response`
/// behind a RESPONSE_STREAM URL (its HTTP prelude sets the status).
#[tokio::test]
async fn a_rust_lambda_http_function_reads_the_event_and_streams() {
    use base64::Engine as _;
    common::ensure_runtime_image("provided.al2023");
    let zip = lambdabox::cli::code_zip(&common::bootstrap::rust_http()).expect("the fixture zips");
    let server = Server::start();
    for case in ["echo", "stream"] {
        let body = json!({
            "FunctionName": format!("rust-{case}"), "Runtime": "provided.al2023", "Handler": case,
            "Role": "arn:aws:iam::000000000000:role/rust", "MemorySize": 128,
            "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(&zip)},
        });
        let resp = server.post("/2015-03-31/functions").json(&body).send().await;
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }

    let url = create_url(&server, "rust-echo", &[], json!({"AuthType": "NONE"})).await;
    let mut get = url.by_host("/orders/7?x=1&x=2");
    get.extend(["-H", "X-Test: yes", "-b", "session=abc", "--data-binary", "hello"].map(String::from));
    let a = curl(&args(&get));
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    let e = a.json();
    assert_eq!((e["method"].as_str(), e["path"].as_str()), (Some("POST"), Some("/orders/7")));
    assert_eq!((e["x"].clone(), e["header"].as_str()), (json!(["1", "2"]), Some("yes")));
    assert_eq!((e["cookie"].as_str(), e["body"].as_str()), (Some("session=abc"), Some("hello")));
    assert_eq!(e["context"]["kind"], "ApiGatewayV2");
    assert_eq!(e["context"]["domainName"].as_str(), url.authority.split(':').next());
    assert_eq!(e["context"]["sourceIp"], "127.0.0.1");

    let url =
        create_url(&server, "rust-stream", &[], json!({"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"})).await;
    let a = curl(&[&format!("{}/feed", url.path_form)]);
    assert_eq!((a.status, a.header("x-path"), a.header("content-type")), (202, vec!["/feed"], vec!["text/plain"]));
    assert_eq!(String::from_utf8_lossy(&a.body), "line 0\nline 1\nline 2\nline 3\nline 4\n");
}
