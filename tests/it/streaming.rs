//! Response streaming end to end: Node's `awslambda.streamifyResponse`
//! handlers through the Runtime API's streaming mode, read by a plain HTTP
//! client at a RESPONSE_STREAM function URL (bytes as they are written,
//! the HTTP prelude's status and headers), and through
//! InvokeWithResponseStream by boto3's and the Rust SDK's event-stream
//! readers (chunks, then InvokeComplete; errors mid-stream in it).

use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::common::{self, Server};

/// The Node handlers (an ES module).
const STREAM_MJS: &str = r#"
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Ten lines 200 ms apart, each saying when it was written (ms since the
// epoch). Called through a URL, it opens with an HTTP prelude.
export const ticks = awslambda.streamifyResponse(async (event, stream) => {
  if (event.requestContext !== undefined) {
    stream = awslambda.HttpResponseStream.from(stream, {
      statusCode: 201,
      headers: { 'content-type': 'text/plain', 'x-streamed': 'yes' },
      cookies: ['flavour=oat; Path=/'],
    });
  } else {
    stream.setContentType('text/plain');
  }
  for (let i = 0; i < 10; i++) {
    if (i > 0) await sleep(200);
    stream.write(`${i} ${Date.now()}\n`);
  }
  stream.end();
});

// Writes, then fails.
export const breaks = awslambda.streamifyResponse(async (event, stream) => {
  stream.write('before the error\n');
  await sleep(50);
  throw new Error('broke mid-stream');
});

// Writes, then runs past its timeout.
export const stalls = awslambda.streamifyResponse(async (event, stream) => {
  stream.write('started\n');
  await sleep(5000);
  stream.end();
});

// An ordinary (buffered) handler for a BUFFERED URL.
export const web = async (event) => ({
  statusCode: 200,
  headers: { 'content-type': 'application/json', 'x-runtime': 'node' },
  cookies: ['seen=1'],
  body: JSON.stringify({
    path: event.rawPath,
    method: event.requestContext.http.method,
    query: event.queryStringParameters,
    body: event.body,
  }),
});
"#;

fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn deploy(server: &Server, name: &str, handler: &str) {
    deploy_with_timeout(server, name, handler, 10).await;
}

async fn deploy_with_timeout(server: &Server, name: &str, handler: &str, timeout_s: u32) {
    common::ensure_runtime_image("nodejs20.x");
    let extra = json!({"Runtime": "nodejs20.x", "Timeout": timeout_s});
    server.deploy_files(name, handler, &[("stream.mjs", STREAM_MJS)], extra).await;
}

/// Create `name`'s URL; returns its path form, `http://127.0.0.1:PORT/lambda-url/ID`.
async fn url(server: &Server, name: &str, mode: &str) -> String {
    let body = json!({"AuthType": "NONE", "InvokeMode": mode});
    let resp = server.post(&format!("/2021-10-31/functions/{name}/url")).json(&body).send().await;
    assert_eq!(resp.status(), 201);
    let config: Value = resp.json().await.unwrap();
    let reported = config["FunctionUrl"].as_str().unwrap();
    let id = reported.trim_start_matches("http://").split('.').next().unwrap();
    format!("{}/lambda-url/{id}", server.url_listener.as_deref().expect("the URL listener is on"))
}

/// One line the `ticks` handler wrote: its number, when it was written
/// (by the function's clock) and when it arrived (by ours: the same host's).
#[derive(Debug)]
struct Tick {
    n: u32,
    written_ms: u64,
    arrived_ms: u64,
}

/// Read a streamed body line by line, noting when each line arrived.
async fn ticks(mut resp: reqwest::Response) -> Vec<Tick> {
    let (mut pending, mut out) = (Vec::new(), Vec::new());
    while let Some(chunk) = resp.chunk().await.expect("the body streams to its end") {
        let arrived_ms = epoch_ms();
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8(line).unwrap();
            let (n, written) = line.trim().split_once(' ').expect("`N MS` lines");
            out.push(Tick { n: n.parse().unwrap(), written_ms: written.parse().unwrap(), arrived_ms });
        }
    }
    assert!(pending.is_empty(), "a partial line at the end: {pending:?}");
    out
}

#[tokio::test]
async fn a_stream_url_delivers_each_chunk_as_the_function_writes_it() {
    let server = Server::start();
    deploy(&server, "ticks", "stream.ticks").await;
    let target = url(&server, "ticks", "RESPONSE_STREAM").await;
    let client = reqwest::Client::new();
    // Warm: the measured request starts no container.
    let warm = client.get(&target).send().await.unwrap();
    assert_eq!(warm.status(), 201);
    warm.bytes().await.unwrap();

    let sent = Instant::now();
    let resp = client.get(format!("{target}/live")).send().await.unwrap();
    let head = sent.elapsed();
    assert_eq!(resp.status(), 201, "the prelude's status");
    let h = resp.headers().clone();
    assert_eq!((h["content-type"].to_str().unwrap(), h["x-streamed"].to_str().unwrap()), ("text/plain", "yes"));
    assert_eq!(h["set-cookie"], "flavour=oat; Path=/");
    let ticks = ticks(resp).await;
    let numbers: Vec<u32> = ticks.iter().map(|t| t.n).collect();
    assert_eq!(numbers, (0..10).collect::<Vec<_>>(), "every chunk, in order");
    let (first, last) = (&ticks[0], &ticks[9]);
    assert!(
        first.arrived_ms < last.written_ms,
        "the first chunk arrived ({}) before the last was written ({})",
        first.arrived_ms,
        last.written_ms
    );
    assert!(last.arrived_ms - first.arrived_ms >= 1000, "chunks were not held back: {ticks:?}");
    for t in &ticks {
        assert!(t.arrived_ms + 5 >= t.written_ms, "{t:?}");
    }
    eprintln!(
        "streamed URL: head after {head:?}, first chunk {} ms after it was written, last {} ms",
        first.arrived_ms.saturating_sub(first.written_ms),
        last.arrived_ms.saturating_sub(last.written_ms)
    );
}

#[tokio::test]
async fn a_node_function_behind_a_buffered_url_and_a_stream_that_fails() {
    let server = Server::start();
    deploy(&server, "web", "stream.web").await;
    let target = url(&server, "web", "BUFFERED").await;
    let resp = reqwest::Client::new().post(format!("{target}/items?x=1")).body("hi").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        (resp.headers()["x-runtime"].to_str().unwrap(), resp.headers()["set-cookie"].to_str().unwrap()),
        ("node", "seen=1")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"path": "/items", "method": "POST", "query": {"x": "1"}, "body": "aGk="}));

    // A stream that breaks after its first bytes: the status (200) went
    // out with them, so the body is cut short.
    deploy(&server, "breaks", "stream.breaks").await;
    let target = url(&server, "breaks", "RESPONSE_STREAM").await;
    let mut resp = reqwest::Client::new().get(&target).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut got = Vec::new();
    let ended = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert_eq!(got, b"before the error\n");
    assert!(ended.is_err(), "the body does not end cleanly");
}

/// InvokeWithResponseStream through boto3: one JSON line per event.
fn boto3_stream(server: &Server, function: &str) -> Vec<Value> {
    let script = r#"
import json, sys, time, boto3
url, key, secret, function = sys.argv[1:5]
c = boto3.client("lambda", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                 aws_secret_access_key=secret)
r = c.invoke_with_response_stream(FunctionName=function, Payload=b"{}", LogType="Tail")
print(json.dumps({"status": r["StatusCode"], "type": r["ResponseStreamContentType"],
                  "version": r["ExecutedVersion"]}), flush=True)
for event in r["EventStream"]:
    if "PayloadChunk" in event:
        print(json.dumps({"chunk": event["PayloadChunk"]["Payload"].decode(), "at": int(time.time() * 1000)}))
    else:
        print(json.dumps(event))
"#;
    let key = server.key.as_ref().unwrap();
    let out = Command::new(common::boto3_python())
        .args(["-c", script, &server.url, key.access_key_id(), key.secret(), function])
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn invoke_with_response_stream_through_boto3_and_the_rust_sdk() {
    let server = Server::start();
    deploy(&server, "ticks", "stream.ticks").await;
    deploy(&server, "breaks", "stream.breaks").await;
    deploy_with_timeout(&server, "stalls", "stream.stalls", 1).await;
    server.deploy("echo", "app.echo", json!({})).await;

    let events = boto3_stream(&server, "ticks");
    assert_eq!(events[0], json!({"status": 200, "type": "text/plain", "version": "$LATEST"}));
    let chunks: String = events[1..events.len() - 1].iter().map(|e| e["chunk"].as_str().unwrap()).collect();
    let numbers: Vec<&str> = chunks.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(numbers, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    assert!(events.len() >= 4, "several PayloadChunk events, not one: {events:?}");
    let complete = &events[events.len() - 1]["InvokeComplete"];
    assert!(complete.get("ErrorCode").is_none(), "{complete}");
    let tail = complete["LogResult"].as_str().expect("LogType Tail brings the log");
    use base64::Engine as _;
    let tail = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(tail).unwrap()).unwrap();
    assert!(tail.contains("REPORT RequestId:"), "{tail}");

    // An error after the first chunk: InvokeComplete says so.
    let events = boto3_stream(&server, "breaks");
    assert_eq!(events[1]["chunk"], "before the error\n");
    let complete = &events[events.len() - 1]["InvokeComplete"];
    assert_eq!(complete["ErrorCode"], "Error", "{complete}");
    let details: Value = serde_json::from_str(complete["ErrorDetails"].as_str().unwrap()).unwrap();
    assert_eq!(details["errorMessage"], "broke mid-stream");

    // A stream that runs past the function's timeout: what was written, then Lambda's timeout.
    let events = boto3_stream(&server, "stalls");
    assert_eq!(events[1]["chunk"], "started\n");
    let complete = &events[events.len() - 1]["InvokeComplete"];
    assert_eq!(complete["ErrorCode"], "Sandbox.Timedout", "{complete}");

    // A function that does not stream: its whole answer as one chunk.
    let events = boto3_stream(&server, "echo");
    assert_eq!(events[0]["type"], "application/json");
    assert_eq!((events.len(), events[1]["chunk"].as_str()), (3, Some("{}")));
    assert!(events[2]["InvokeComplete"].get("ErrorCode").is_none());

    // The Rust SDK's reader.
    use aws_sdk_lambda::types::InvokeWithResponseStreamResponseEvent as Event;
    let mut out = server.sdk().invoke_with_response_stream().function_name("ticks").send().await.unwrap();
    let (mut chunks, mut completed) = (Vec::new(), None);
    while let Some(event) = out.event_stream.recv().await.expect("a well-formed event stream") {
        match event {
            Event::PayloadChunk(c) => chunks.extend_from_slice(c.payload().unwrap().as_ref()),
            Event::InvokeComplete(c) => completed = Some(c),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(String::from_utf8(chunks).unwrap().lines().count(), 10);
    assert_eq!(completed.expect("InvokeComplete came").error_code(), None);
}
