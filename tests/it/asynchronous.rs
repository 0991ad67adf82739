//! Asynchronous invocations (`InvocationType: Event`) through AWS's own
//! clients: accepted events run later, failures are retried as Lambda
//! retries them and then kept as dead letters, and a controller killed with
//! SIGKILL loses none of what it accepted.

use crate::common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use common::{eventually, Server};
use serde_json::{json, Value};

/// Logs `RAN <request id> <event>`, fails when the event says so.
const RECORDER: &str = "import json\n\
def handler(event, context):\n    \
    print('RAN', context.aws_request_id, json.dumps(event, sort_keys=True))\n    \
    if event.get('fail'):\n        raise ValueError('asked to fail')\n    \
    return event\n";

/// A short retry unit: retries 0.3 s and 0.6 s after a failure.
const FAST: [&str; 2] = ["--async-retry-unit-ms", "300"];

async fn deploy(server: &Server, name: &str, extra: Value) {
    server.deploy_files(name, "rec.handler", &[("rec.py", RECORDER)], extra).await;
}

/// Send one event with the AWS SDK for Rust; returns its request id.
async fn send(sdk: &aws_sdk_lambda::Client, name: &str, event: &Value) -> String {
    let out = sdk
        .invoke()
        .function_name(name)
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .expect("the event is accepted");
    assert_eq!(out.status_code(), 202);
    assert!(out.payload().is_none_or(|p| p.as_ref().is_empty()), "a 202 has no body");
    assert!(out.executed_version().is_none());
    aws_sdk_lambda::operation::RequestId::request_id(&out).expect("a request id").to_owned()
}

/// How many times the log shows request `id` ran.
async fn runs(server: &Server, name: &str, id: &str) -> usize {
    server.logs(name).await.matches(&format!("RAN {id} ")).count()
}

async fn dead_letters(server: &Server, name: &str) -> Vec<Value> {
    let resp = server.get(&format!("/lambdabox/v1/functions/{name}/events/failed")).send().await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["DeadLetters"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn events_run_later_and_failures_are_retried_then_kept() {
    let server = Server::start_with(&FAST);
    deploy(&server, "ok", json!({})).await;
    deploy(&server, "bad", json!({})).await;
    let sdk = server.sdk();

    // Accepted, then run with the request id the caller was given.
    let id = send(&sdk, "ok", &json!({"n": 1})).await;
    assert!(eventually(Duration::from_secs(30), || async { runs(&server, "ok", &id).await == 1 }).await);
    assert!(server.logs("ok").await.contains(&format!("RAN {id} {{\"n\": 1}}")));

    // boto3 sees the same 202.
    let script = format!(
        "import boto3, json\nc = boto3.client('lambda', endpoint_url='{}', region_name='us-east-1', \
         aws_access_key_id='{}', aws_secret_access_key='{}')\n\
         r = c.invoke(FunctionName='ok', InvocationType='Event', Payload=b'{{\"n\": 2}}')\n\
         print(json.dumps([r['StatusCode'], r['ResponseMetadata']['RequestId'], r['Payload'].read().decode()]))\n",
        server.url,
        server.key.as_ref().unwrap().access_key_id(),
        server.key.as_ref().unwrap().secret()
    );
    let out = std::process::Command::new(common::boto3_python()).arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((answer[0].as_i64(), answer[2].as_str()), (Some(202), Some("")));
    let boto_id = answer[1].as_str().unwrap().to_owned();
    assert!(eventually(Duration::from_secs(30), || async { runs(&server, "ok", &boto_id).await == 1 }).await);

    // A failing event: 1 + 2 attempts, 1 and 2 units apart, then a dead letter.
    let sent = Instant::now();
    let id = send(&sdk, "bad", &json!({"fail": true})).await;
    let dead = eventually(Duration::from_secs(60), || async { !dead_letters(&server, "bad").await.is_empty() }).await;
    assert!(dead, "the event was dead-lettered");
    assert!(sent.elapsed() >= Duration::from_millis(900), "retries waited 0.3 s then 0.6 s");
    assert_eq!(runs(&server, "bad", &id).await, 3, "{}", server.logs("bad").await);
    let letters = dead_letters(&server, "bad").await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(
        (letter["RequestId"].as_str(), letter["Condition"].as_str()),
        (Some(id.as_str()), Some("RetriesExhausted"))
    );
    assert_eq!(letter["Attempts"], 3);
    assert!(letter["Error"].as_str().unwrap().contains("asked to fail"), "{letter}");

    // Redriven: it runs again (and fails again: three more attempts).
    let resp = server.post("/lambdabox/v1/functions/bad/events/redrive").send().await;
    assert_eq!(resp.json::<Value>().await.unwrap()["Redriven"], 1);
    assert!(eventually(Duration::from_secs(60), || async { runs(&server, "bad", &id).await == 6 }).await);

    // Over 1 MiB is refused as on Lambda.
    let big = json!({"blob": "x".repeat(1024 * 1024)});
    let refused = sdk
        .invoke()
        .function_name("ok")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(big.to_string()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    use aws_sdk_lambda::error::ProvideErrorMetadata as _;
    assert_eq!(refused.code(), Some("RequestEntityTooLargeException"), "{refused:?}");
    let message = refused.message().unwrap_or_default();
    assert!(
        message.ends_with("byte payload is too large for the Event invocation type (limit 1048576 bytes)"),
        "{message}"
    );

    // The legacy InvokeAsync operation.
    let resp = server.post("/2014-11-13/functions/ok/invoke-async/").body(r#"{"n": 3}"#).send().await;
    assert_eq!(resp.status(), 202);
    let legacy_id = resp.headers()["x-amzn-requestid"].to_str().unwrap().to_owned();
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"Status": 202}));
    assert!(eventually(Duration::from_secs(30), || async { runs(&server, "ok", &legacy_id).await == 1 }).await);

    // An unknown function is refused before anything is stored.
    let missing = sdk.invoke().function_name("nope").invocation_type(InvocationType::Event).send().await;
    assert!(missing.unwrap_err().into_service_error().is_resource_not_found_exception());
}

#[tokio::test]
async fn reserved_concurrency_paces_events_and_zero_sends_them_to_failure() {
    let server = Server::start_with(&FAST);
    deploy(&server, "one-at-a-time", json!({})).await;
    let resp = server
        .put("/2017-10-31/functions/one-at-a-time/concurrency")
        .json(&json!({"ReservedConcurrentExecutions": 1}))
        .send()
        .await;
    assert_eq!(resp.status(), 200);
    let sdk = server.sdk();
    let ids = futures_util::future::join_all((0..40).map(|n| {
        let sdk = sdk.clone();
        async move { send(&sdk, "one-at-a-time", &json!({"n": n})).await }
    }))
    .await;
    let all_ran = eventually(Duration::from_secs(120), || async {
        let log = server.logs("one-at-a-time").await;
        ids.iter().all(|id| log.contains(&format!("RAN {id} ")))
    });
    assert!(all_ran.await, "every throttled event ran in the end");
    assert!(dead_letters(&server, "one-at-a-time").await.is_empty(), "no event failed");

    deploy(&server, "closed", json!({})).await;
    let resp = server
        .put("/2017-10-31/functions/closed/concurrency")
        .json(&json!({"ReservedConcurrentExecutions": 0}))
        .send()
        .await;
    assert_eq!(resp.status(), 200);
    let id = send(&sdk, "closed", &json!({})).await;
    assert!(eventually(Duration::from_secs(30), || async { !dead_letters(&server, "closed").await.is_empty() }).await);
    assert_eq!(runs(&server, "closed", &id).await, 0);
    let depths: Value = server.get("/lambdabox/v1/events").send().await.json().await.unwrap();
    let closed = depths["Functions"].as_array().unwrap().iter().find(|f| f["Function"] == "closed").cloned();
    assert_eq!(closed.map(|f| (f["Queued"].clone(), f["DeadLetters"].clone())), Some((json!(0), json!(1))));
}

/// 1,000 events accepted, the controller killed with SIGKILL while it
/// drains them, started again on the same data: every accepted event runs
/// at least once.
#[tokio::test]
async fn a_killed_controller_loses_no_accepted_event() {
    let data = tempfile::Builder::new().prefix("lbx-").tempdir().unwrap();
    let mut server = Server::start_in_with(data.path(), &FAST);
    deploy(&server, "count", json!({})).await;
    let sdk = server.sdk();
    let mut ids = Vec::new();
    for chunk in (0..1000).collect::<Vec<u32>>().chunks(50) {
        let sent = chunk.iter().map(|&n| {
            let sdk = sdk.clone();
            async move { send(&sdk, "count", &json!({"n": n})).await }
        });
        ids.extend(futures_util::future::join_all(sent).await);
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1000);
    // Some have run, most have not.
    let started =
        eventually(Duration::from_secs(60), || async { server.logs("count").await.matches("RAN ").count() >= 20 });
    assert!(started.await);
    server.kill();

    let server = Server::start_in_with(data.path(), &FAST);
    let all_ran = eventually(Duration::from_secs(240), || async {
        let log = server.logs("count").await;
        ids.iter().all(|id| log.contains(&format!("RAN {id} ")))
    });
    assert!(all_ran.await, "an accepted event was lost");
    assert!(dead_letters(&server, "count").await.is_empty());
}

/// The events function `name` ran, from its log: (request id, event).
async fn events_of(server: &Server, name: &str) -> Vec<(String, Value)> {
    let log = server.logs(name).await;
    let ran = log.lines().filter_map(|l| l.split_once("RAN ")).map(|(_, rest)| rest);
    ran.filter_map(|rest| rest.split_once(' '))
        .map(|(id, event)| (id.to_owned(), serde_json::from_str(event).expect("the recorder prints JSON")))
        .collect()
}

/// Wait until `name` has run an event whose record names `request_id`; returns it.
async fn record_for(server: &Server, name: &str, request_id: &str) -> Value {
    record_within(server, name, request_id, Duration::from_secs(60)).await
}

async fn record_within(server: &Server, name: &str, request_id: &str, limit: Duration) -> Value {
    let found = || async {
        let events = events_of(server, name).await;
        events.into_iter().map(|(_, e)| e).find(|e| e["requestContext"]["requestId"] == request_id)
    };
    assert!(eventually(limit, || async { found().await.is_some() }).await, "no record in {name}");
    found().await.unwrap()
}

/// Set `name`'s EventInvokeConfig with the AWS SDK for Rust.
async fn configure(
    sdk: &aws_sdk_lambda::Client,
    name: &str,
    retries: Option<i32>,
    max_age: Option<i32>,
    on_success: Option<&str>,
    on_failure: Option<&str>,
) {
    use aws_sdk_lambda::types::{DestinationConfig, OnFailure, OnSuccess};
    let arn = |n: &str| format!("arn:aws:lambda:us-east-1:000000000000:function:{n}");
    let destinations = DestinationConfig::builder()
        .set_on_success(on_success.map(|n| OnSuccess::builder().destination(arn(n)).build()))
        .set_on_failure(on_failure.map(|n| OnFailure::builder().destination(arn(n)).build()))
        .build();
    let out = sdk
        .put_function_event_invoke_config()
        .function_name(name)
        .set_maximum_retry_attempts(retries)
        .set_maximum_event_age_in_seconds(max_age)
        .destination_config(destinations)
        .send()
        .await
        .expect("the config is accepted");
    assert_eq!(out.function_arn(), Some(format!("{}:$LATEST", arn(name)).as_str()));
    assert!(out.last_modified().is_some(), "LastModified parses as a timestamp");
    assert_eq!(out.maximum_retry_attempts(), retries);
}

#[tokio::test]
async fn destinations_get_lambdas_records_and_chain() {
    let server = Server::start_with(&FAST);
    for name in ["src", "on-ok", "on-fail", "a", "b", "c"] {
        deploy(&server, name, json!({})).await;
    }
    let sdk = server.sdk();
    configure(&sdk, "src", Some(0), None, Some("on-ok"), Some("on-fail")).await;
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:src:$LATEST";

    // A failure with MaximumRetryAttempts 0: one attempt, then its record
    // goes to the OnFailure function instead of the dead letters.
    let failing = send(&sdk, "src", &json!({"fail": true, "n": 1})).await;
    let record = record_for(&server, "on-fail", &failing).await;
    assert_eq!(record["version"], "1.0");
    assert!(record["timestamp"].as_str().unwrap().ends_with('Z'), "{record}");
    assert_eq!(
        record["requestContext"],
        json!({"requestId": failing, "functionArn": arn, "condition": "RetriesExhausted", "approximateInvokeCount": 1})
    );
    assert_eq!(record["requestPayload"], json!({"fail": true, "n": 1}));
    assert_eq!(
        record["responseContext"],
        json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
    );
    assert_eq!(record["responsePayload"]["errorMessage"], "asked to fail", "{record}");
    assert_eq!(record["responsePayload"]["errorType"], "ValueError", "{record}");
    assert_eq!(runs(&server, "src", &failing).await, 1, "attempted exactly once");
    assert!(dead_letters(&server, "src").await.is_empty(), "the destination took it");

    // A success goes to OnSuccess, with the function's answer.
    let ok = send(&sdk, "src", &json!({"n": 2})).await;
    let record = record_for(&server, "on-ok", &ok).await;
    assert_eq!(record["requestContext"]["condition"], "Success");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(record["responseContext"], json!({"statusCode": 200, "executedVersion": "$LATEST"}));
    assert_eq!((&record["requestPayload"], &record["responsePayload"]), (&json!({"n": 2}), &json!({"n": 2})));
    assert!(events_of(&server, "on-fail").await.iter().all(|(_, e)| e["requestContext"]["requestId"] != ok));

    // A → B → C: each record is a new event of the next function.
    configure(&sdk, "a", None, None, Some("b"), None).await;
    configure(&sdk, "b", None, None, Some("c"), None).await;
    let first = send(&sdk, "a", &json!({"chain": 1})).await;
    let at_b = record_for(&server, "b", &first).await;
    let (b_id, _) = events_of(&server, "b").await.into_iter().find(|(_, e)| *e == at_b).unwrap();
    assert_ne!(b_id, first, "the destination's event has its own request id");
    let at_c = record_for(&server, "c", &b_id).await;
    assert_eq!(at_c["requestContext"]["functionArn"], "arn:aws:lambda:us-east-1:000000000000:function:b:$LATEST");
    assert_eq!(at_c["requestPayload"], at_b, "C is told what B was given: A's record");
    assert_eq!(at_c["requestPayload"]["requestPayload"], json!({"chain": 1}));
    assert_eq!(at_c["responsePayload"], at_b, "B answered with its event");
}

/// Lambda's recorded behaviour: with `MaximumEventAgeInSeconds` 60 and
/// retries a minute apart (Lambda's real unit, no `--async-retry-unit-ms`),
/// a failed event's first retry would come too late, so it ends at once,
/// `EventAgeExceeded` after one attempt, rather than wait.
#[tokio::test]
async fn an_event_whose_retry_would_be_too_old_ends_at_once() {
    let server = Server::start();
    deploy(&server, "aging", json!({})).await;
    deploy(&server, "aged", json!({})).await;
    let sdk = server.sdk();
    configure(&sdk, "aging", Some(2), Some(60), None, Some("aged")).await;
    let id = send(&sdk, "aging", &json!({"fail": true})).await;
    // Well before the retry a minute later, which would also end it.
    let record = record_within(&server, "aged", &id, Duration::from_secs(40)).await;
    assert_eq!(record["requestContext"]["condition"], "EventAgeExceeded", "{record}");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["responsePayload"]["errorMessage"], "asked to fail");
    assert_eq!(runs(&server, "aging", &id).await, 1);

    // Without a destination it is a dead letter, as before.
    let resp = server.delete("/2019-09-25/functions/aging/event-invoke-config").send().await;
    assert_eq!(resp.status(), 204);
    configure(&sdk, "aging", None, Some(60), None, None).await;
    let id = send(&sdk, "aging", &json!({"fail": true})).await;
    let dead = eventually(Duration::from_secs(60), || async { !dead_letters(&server, "aging").await.is_empty() });
    assert!(dead.await);
    let letters = dead_letters(&server, "aging").await;
    assert_eq!(
        (letters[0]["RequestId"].as_str(), letters[0]["Condition"].as_str()),
        (Some(id.as_str()), Some("EventAgeExceeded"))
    );
}

/// An event sent to a version or an alias runs that version (the alias as
/// it routes when the event's turn comes), as on Lambda.
#[tokio::test]
async fn events_for_a_version_or_an_alias_run_it() {
    let server = Server::start_with(&FAST);
    let which = "import os\ndef handler(event, context):\n    \
        print('RAN', context.aws_request_id, os.environ['AWS_LAMBDA_FUNCTION_VERSION'], context.invoked_function_arn)\n";
    server.deploy_files("vq", "which.handler", &[("which.py", which)], json!({"Publish": true})).await;
    let alias = json!({"Name": "live", "FunctionVersion": "1"});
    assert_eq!(server.post("/2015-03-31/functions/vq/aliases").json(&alias).send().await.status(), 201);
    let sdk = server.sdk();
    let by_alias = send(&sdk, "vq:live", &json!({})).await;
    let by_version = send(&sdk, "vq:1", &json!({})).await;
    let latest = send(&sdk, "vq", &json!({})).await;
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:vq";
    for (id, line) in [
        (&by_alias, format!("RAN {by_alias} 1 {arn}:live")),
        (&by_version, format!("RAN {by_version} 1 {arn}:1")),
        (&latest, format!("RAN {latest} $LATEST {arn}")),
    ] {
        let ran = eventually(Duration::from_secs(30), || async { server.logs("vq").await.contains(&line) });
        assert!(ran.await, "{id}: {}", server.logs("vq").await);
    }
}

/// Logs `SPAN <start> <end>` around a run that spins the CPU (`spin`) or
/// sleeps (otherwise) for the event's `s` seconds.
const SPANNER: &str = "import time\n\
def handler(event, context):\n    \
    start = time.time()\n    \
    if event.get('spin'):\n        \
        while time.time() < start + event['s']:\n            pass\n    \
    else:\n        time.sleep(event['s'])\n    \
    print('SPAN', start, time.time())\n";

/// The most runs of `name` the log shows overlapping in time.
async fn most_at_once(server: &Server, name: &str) -> usize {
    let log = server.logs(name).await;
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for line in log.lines().filter_map(|l| l.split("SPAN ").nth(1)) {
        let mut times = line.split_whitespace().map(|t| t.parse::<f64>().expect("a time"));
        let (start, end) = (times.next().unwrap(), times.next().unwrap());
        edges.extend([(start, 1), (end, -1)]);
    }
    // Ends sort before starts at the same instant: touching is not overlapping.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut now = 0;
    edges
        .iter()
        .map(|(_, d)| {
            now += d;
            now
        })
        .max()
        .unwrap_or(0) as usize
}

/// While callers are being answered, a CPU-heavy function's queued events
/// run about as many at once as a third of the CPUs allow, while a
/// function that mostly waits keeps its whole window beside it (the CPU
/// each run uses is read from its container's cgroup).
#[tokio::test]
async fn while_callers_wait_cpu_heavy_events_yield_and_waiting_ones_do_not() {
    let server = Server::start();
    for name in ["spin", "wait"] {
        server.deploy_files(name, "span.handler", &[("span.py", SPANNER)], json!({})).await;
    }
    deploy(&server, "caller", json!({})).await;
    let (status, _, _) = server.invoke("caller", "{}").await;
    assert_eq!(status, 200);
    // A caller invoking all along, so that the queue sees callers waiting.
    let calling = std::cell::Cell::new(true);
    let caller = async {
        while calling.get() {
            let (status, _, _) = server.invoke("caller", "{}").await;
            assert_eq!(status, 200);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let events = async {
        let sdk = server.sdk();
        let (spin, wait) = (json!({"spin": true, "s": 0.4}), json!({"s": 1.0}));
        let spins = (0..8).map(|_| send(&sdk, "spin", &spin));
        let waits = (0..12).map(|_| send(&sdk, "wait", &wait));
        futures_util::future::join_all(spins.chain(waits)).await;
        let all_ran = eventually(Duration::from_secs(60), || async {
            let spans = |log: String| log.matches("SPAN ").count();
            spans(server.logs("spin").await) == 8 && spans(server.logs("wait").await) == 12
        });
        assert!(all_ran.await, "every event ran");
        calling.set(false);
    };
    tokio::join!(caller, events);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    // A spinning run uses at least half a CPU even on a busy box.
    let bound = ((cpus / 3.0) / 0.5).ceil().max(1.0) as usize;
    let (spin, wait) = (most_at_once(&server, "spin").await, most_at_once(&server, "wait").await);
    assert!(spin <= bound, "{spin} spinning runs at once, more than {bound}");
    assert!(wait >= 4 && wait > spin, "{wait} waiting runs at once beside {spin} spinning");
}
