//! Rules, schedules and the default event bus through boto3's `events`
//! client, pointed at the same endpoint as its `lambda` client: events
//! reach the functions of matching, enabled rules with EventBridge's
//! envelope (or their target's input), and schedule rules fire each slot
//! once, resuming after a restart without a burst (on a scaled clock).

use crate::common;

use std::time::Duration;

use common::{eventually, Server};
use serde_json::{json, Value};

/// Logs `EVENT <event>` for each event.
const RECORDER: &str = "import json\n\
def handler(event, context):\n    \
    print('EVENT', json.dumps(event, sort_keys=True))\n    \
    return event\n";

/// The rule-making scripts' clients.
fn preamble(server: &Server) -> String {
    let key = server.key.as_ref().expect("signed");
    format!(
        "import boto3, json, botocore\n\
         kw = dict(endpoint_url='{}', region_name='us-east-1', aws_access_key_id='{}', aws_secret_access_key='{}')\n\
         ev = boto3.client('events', **kw)\n\
         F = 'arn:aws:lambda:us-east-1:000000000000:function:'\n\
         def code(call):\n    \
             try:\n        call()\n        return None\n    \
             except botocore.exceptions.ClientError as e:\n        \
                 return [e.response['Error']['Code'], e.response['ResponseMetadata']['HTTPStatusCode']]\n",
        server.url,
        key.access_key_id(),
        key.secret()
    )
}

/// Run `script` with boto3 after [`preamble`]; its last line of output is JSON.
fn boto3(server: &Server, script: &str) -> Value {
    let out = std::process::Command::new(common::boto3_python())
        .arg("-c")
        .arg(format!("{}{script}", preamble(server)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "boto3 failed: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or("null")).expect("the script prints JSON")
}

/// Every event the recorder logged, in log order.
async fn events(server: &Server, name: &str) -> Vec<Value> {
    let log = server.logs(name).await;
    log.lines().filter_map(|l| l.split_once("EVENT ").map(|(_, e)| serde_json::from_str(e).unwrap())).collect()
}

#[tokio::test]
async fn put_events_reach_matching_enabled_rules_with_the_envelope() {
    let server = Server::start();
    server.deploy_files("rec", "rec.handler", &[("rec.py", RECORDER)], json!({})).await;
    let out = boto3(
        &server,
        r#"
pattern = json.dumps({"source": ["shop"], "detail": {"n": [{"numeric": [">", 0]}]}})
r = {}
r['arn'] = ev.put_rule(Name='orders', EventPattern=pattern, Description='d')['RuleArn']
ev.put_rule(Name='off', EventPattern=pattern, State='DISABLED')
ev.put_rule(Name='other', EventPattern=json.dumps({"source": ["elsewhere"]}))
transformer = {'InputPathsMap': {'n': '$.detail.n', 'src': '$.source'},
               'InputTemplate': '{"got": <n>, "from": "<src>", "rule": "<aws.events.rule-name>"}'}
put = ev.put_targets(Rule='orders', Targets=[
    {'Id': 'whole', 'Arn': F + 'rec'},
    {'Id': 'shaped', 'Arn': F + 'rec', 'InputTransformer': transformer},
    {'Id': 'queue', 'Arn': 'arn:aws:sqs:us-east-1:000000000000:q'}])
r['failed'] = [put['FailedEntryCount'], [e['TargetId'] for e in put['FailedEntries']], put['FailedEntries'][0]['ErrorCode']]
ev.put_targets(Rule='off', Targets=[{'Id': 'x', 'Arn': F + 'rec', 'Input': '{"wrong": "disabled"}'}])
ev.put_targets(Rule='other', Targets=[{'Id': 'x', 'Arn': F + 'rec', 'Input': '{"wrong": "unmatched"}'}])
sent = ev.put_events(Entries=[
    {'Source': 'shop', 'DetailType': 'Order Placed', 'Detail': json.dumps({"n": 5}), 'Resources': ['arn:x']},
    {'Source': 'shop', 'DetailType': 'Order Placed', 'Detail': json.dumps({"n": 0})},
    {'Source': 'shop', 'DetailType': 'Order Placed'}])
r['sent'] = sent
r['test'] = [ev.test_event_pattern(EventPattern=pattern, Event=json.dumps(
    {"id": "1", "account": "1", "source": "shop", "time": "t", "region": "r", "detail-type": "d", "detail": {"n": n}}))['Result']
    for n in (1, 0)]
r['bad_pattern'] = code(lambda: ev.put_rule(Name='bad', EventPattern='{"source": "shop"}'))
r['bad_schedule'] = code(lambda: ev.put_rule(Name='bad', ScheduleExpression='rate(1 minutes)'))
r['delete_with_targets'] = code(lambda: ev.delete_rule(Name='orders'))
r['missing'] = code(lambda: ev.describe_rule(Name='nope'))
r['bad_name'] = code(lambda: ev.describe_rule(Name='no spaces'))
r['describe'] = ev.describe_rule(Name='orders')
r['prefix'] = [x['Name'] for x in ev.list_rules(NamePrefix='o')['Rules']]
page = ev.list_rules(Limit=1)
r['paged'] = [page['Rules'][0]['Name'], ev.list_rules(Limit=1, NextToken=page['NextToken'])['Rules'][0]['Name']]
r['targets'] = [t['Id'] for t in ev.list_targets_by_rule(Rule='orders')['Targets']]
print(json.dumps(r, default=str))
"#,
    );
    let arn = "arn:aws:events:us-east-1:000000000000:rule/orders";
    assert_eq!(out["arn"], arn);
    assert_eq!(out["failed"], json!([1, ["queue"], "InvalidArgument"]));
    assert_eq!(out["sent"]["FailedEntryCount"], 1);
    let entries = out["sent"]["Entries"].as_array().unwrap();
    let id = entries[0]["EventId"].as_str().unwrap().to_owned();
    assert!(entries[1]["EventId"].is_string());
    assert_eq!(entries[2]["ErrorCode"], "InvalidArgument");
    assert_eq!(out["test"], json!([true, false]));
    assert_eq!(out["bad_pattern"], json!(["InvalidEventPatternException", 400]));
    assert_eq!(out["bad_schedule"], json!(["ValidationException", 400]));
    assert_eq!(out["delete_with_targets"], json!(["ValidationException", 400]));
    assert_eq!(out["missing"], json!(["ResourceNotFoundException", 400]));
    assert_eq!(out["bad_name"], json!(["ValidationException", 400]));
    assert_eq!(out["describe"]["Arn"], arn);
    assert_eq!(out["describe"]["State"], "ENABLED");
    assert_eq!(out["describe"]["Description"], "d");
    assert_eq!(out["describe"]["EventBusName"], "default");
    assert_eq!(out["prefix"], json!(["off", "orders", "other"]));
    assert_eq!(out["paged"], json!(["off", "orders"]));
    assert_eq!(out["targets"], json!(["shaped", "whole"]));

    // The matching event reached both targets of the enabled rule, once each.
    assert!(eventually(Duration::from_secs(60), || async { events(&server, "rec").await.len() >= 2 }).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = events(&server, "rec").await;
    assert_eq!(got.len(), 2, "only the enabled, matching rule's two targets ran: {got:?}");
    let whole = got.iter().find(|e| e.get("detail").is_some()).expect("the envelope");
    let time = whole["time"].as_str().unwrap().to_owned();
    assert_eq!(
        *whole,
        json!({
            "version": "0", "id": id, "detail-type": "Order Placed", "source": "shop",
            "account": "000000000000", "time": time, "region": "us-east-1",
            "resources": ["arn:x"], "detail": {"n": 5}
        })
    );
    assert!(chrono::DateTime::parse_from_rfc3339(&time).is_ok() && time.ends_with('Z'), "{time}");
    assert!(got.contains(&json!({"got": 5, "from": "shop", "rule": "orders"})), "{got:?}");
}

/// Scheduled events' times, sorted, for rule `rule`.
async fn firings(server: &Server, name: &str, rule: &str) -> Vec<i64> {
    let arn = json!([format!("arn:aws:events:us-east-1:000000000000:rule/{rule}")]);
    let mut times: Vec<i64> = events(server, name)
        .await
        .iter()
        .filter(|e| e["detail-type"] == "Scheduled Event" && e["resources"] == arn)
        .map(|e| chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap().timestamp())
        .collect();
    times.sort_unstable();
    times
}

#[tokio::test]
async fn schedules_fire_each_slot_once_and_resume_after_a_restart_without_a_burst() {
    // A minute passes in a second.
    let flags = ["--schedule-clock-scale", "60"];
    let data = tempfile::Builder::new().prefix("lbx-").tempdir().unwrap();
    let mut server = Server::start_in_with(data.path(), &flags);
    server.deploy_files("rec", "rec.handler", &[("rec.py", RECORDER)], json!({})).await;
    let out = boto3(
        &server,
        r#"
ev.put_rule(Name='tick', ScheduleExpression='rate(1 minute)')
ev.put_targets(Rule='tick', Targets=[{'Id': '1', 'Arn': F + 'rec'}])
ev.put_rule(Name='paused', ScheduleExpression='rate(1 minute)', State='DISABLED')
ev.put_targets(Rule='paused', Targets=[{'Id': '1', 'Arn': F + 'rec', 'Input': '{"wrong": "disabled"}'}])
ev.put_rule(Name='fixed', ScheduleExpression='cron(* * * * ? *)')
ev.put_targets(Rule='fixed', Targets=[{'Id': '1', 'Arn': F + 'rec', 'Input': '{"fixed": true}'}])
print(json.dumps(ev.describe_rule(Name='tick')['ScheduleExpression']))
"#,
    );
    assert_eq!(out, "rate(1 minute)");
    assert!(eventually(Duration::from_secs(60), || async { firings(&server, "rec", "tick").await.len() >= 3 }).await);
    let event = events(&server, "rec").await.into_iter().find(|e| e["detail-type"] == "Scheduled Event").unwrap();
    assert_eq!(event["source"], "aws.events");
    assert_eq!(event["detail"], json!({}));
    assert_eq!(event["version"], "0");
    assert_eq!(event["account"], "000000000000");
    assert!(events(&server, "rec").await.contains(&json!({"fixed": true})), "a cron rule's target gets its Input");

    // Down for about five scheduled minutes.
    let before = firings(&server, "rec", "tick").await;
    server.stop();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let server = Server::start_in_with(data.path(), &flags);
    let n = before.len();
    assert!(
        eventually(Duration::from_secs(60), || async { firings(&server, "rec", "tick").await.len() >= n + 3 }).await
    );
    let after = firings(&server, "rec", "tick").await;
    let gaps: Vec<i64> = after.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g > 0), "no slot fired twice: {after:?}");
    let resumed = &gaps[n - 1..];
    assert!(resumed[0] >= 180, "the missed slots fired once, for the latest: {after:?}");
    assert!(resumed[1..].iter().all(|g| *g == 60), "then every minute again: {after:?}");
    let all = events(&server, "rec").await;
    assert!(!all.iter().any(|e| e.get("wrong").is_some()), "a disabled rule never fires");

    // `lambdabox rules`: each rule, its state and its next firing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lambdabox"))
        .args(["--endpoint", &server.url, "--data-dir", server.data_dir.to_str().unwrap(), "rules"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |rule: &str| text.lines().find(|l| l.starts_with(&format!("{rule} "))).unwrap_or_default().to_owned();
    assert!(line("tick").contains("ENABLED") && line("tick").contains("rate(1 minute)"), "{text}");
    assert!(line("tick").split_whitespace().any(|w| w.ends_with('Z')), "a next firing time: {text}");
    assert!(line("paused").contains("DISABLED") && line("paused").contains(" - "), "{text}");
}

/// Fails when the event says so.
const FAILER: &str = "def handler(event, context):\n    \
    if event.get('fail'):\n        raise ValueError('asked to fail')\n    \
    return {'ok': event}\n";

#[tokio::test]
async fn destinations_on_the_default_bus_become_lambda_events_routed_by_rules() {
    let server = Server::start_with(&["--async-retry-unit-ms", "300"]);
    server.deploy_files("src", "f.handler", &[("f.py", FAILER)], json!({})).await;
    server.deploy_files("rec", "rec.handler", &[("rec.py", RECORDER)], json!({})).await;
    let out = boto3(
        &server,
        r#"
lam = boto3.client('lambda', **kw)
bus = 'arn:aws:events:us-east-1:000000000000:event-bus/default'
lam.put_function_event_invoke_config(FunctionName='src', MaximumRetryAttempts=0,
    DestinationConfig={'OnSuccess': {'Destination': bus}, 'OnFailure': {'Destination': bus}})
ev.put_rule(Name='results', EventPattern=json.dumps({"source": ["lambda"], "detail-type": [{"prefix": "Lambda Function Invocation Result"}]}))
ev.put_targets(Rule='results', Targets=[{'Id': '1', 'Arn': F + 'rec'}])
other = code(lambda: lam.put_function_event_invoke_config(FunctionName='src',
    DestinationConfig={'OnSuccess': {'Destination': 'arn:aws:events:us-east-1:000000000000:event-bus/other'}}))
lam.invoke(FunctionName='src', InvocationType='Event', Payload=b'{"n": 1}')
lam.invoke(FunctionName='src', InvocationType='Event', Payload=b'{"fail": true}')
print(json.dumps(other))
"#,
    );
    assert_eq!(out, json!(["InvalidParameterValueException", 400]));
    assert!(eventually(Duration::from_secs(60), || async { events(&server, "rec").await.len() >= 2 }).await);
    let got = events(&server, "rec").await;
    let by_type =
        |t: &str| got.iter().find(|e| e["detail-type"] == t).cloned().unwrap_or_else(|| panic!("{t}: {got:?}"));
    let ok = by_type("Lambda Function Invocation Result - Success");
    assert_eq!(ok["source"], "lambda");
    assert_eq!(ok["version"], "0");
    let function_arn = "arn:aws:lambda:us-east-1:000000000000:function:src:$LATEST";
    assert_eq!(ok["resources"], json!(["arn:aws:events:us-east-1:000000000000:event-bus/default", function_arn]));
    assert_eq!(ok["detail"]["requestContext"]["condition"], "Success");
    assert_eq!(ok["detail"]["requestContext"]["functionArn"], function_arn);
    assert_eq!(ok["detail"]["requestPayload"], json!({"n": 1}));
    assert_eq!(ok["detail"]["responsePayload"], json!({"ok": {"n": 1}}));
    let failed = by_type("Lambda Function Invocation Result - Failure");
    assert_eq!(failed["detail"]["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(failed["detail"]["responseContext"]["functionError"], "Unhandled");
}

/// `aws events …` against `server`, its JSON answer; `None` without the AWS CLI.
/// `aws events ARGS` with the AWS CLI that `scripts/ensure-boto3.sh`
/// installs beside boto3.
fn aws(server: &Server, args: &[&str]) -> Value {
    let key = server.key.as_ref().expect("signed");
    let out = std::process::Command::new(crate::common::boto3_python().with_file_name("aws"))
        .args(["events", "--endpoint-url", &server.url, "--region", "us-east-1", "--output", "json"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", key.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", key.secret())
        .env_remove("AWS_PROFILE")
        .output()
        .expect("the AWS CLI runs");
    assert!(out.status.success(), "aws events {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_aws_cli_manages_rules_and_sends_events() {
    let server = Server::start();
    let put = aws(&server, &["put-rule", "--name", "nightly", "--schedule-expression", "cron(0 3 * * ? *)"]);
    assert_eq!(put["RuleArn"], "arn:aws:events:us-east-1:000000000000:rule/nightly");
    let rules = aws(&server, &["list-rules", "--name-prefix", "night"]);
    assert_eq!(rules["Rules"][0]["ScheduleExpression"], "cron(0 3 * * ? *)");
    let pattern = r#"{"source": ["cli"]}"#;
    let event = r#"{"id": "1", "account": "1", "source": "cli", "time": "t", "region": "r", "detail-type": "d"}"#;
    let test = aws(&server, &["test-event-pattern", "--event-pattern", pattern, "--event", event]);
    assert_eq!(test["Result"], true);
    let entries = r#"[{"Source": "cli", "DetailType": "d", "Detail": "{}"}]"#;
    let sent = aws(&server, &["put-events", "--entries", entries]);
    assert_eq!(sent["FailedEntryCount"], 0);
}
