//! Published versions and aliases through the AWS SDK for Rust: a version
//! keeps answering with its own code and configuration while `$LATEST`
//! moves on, every form of qualifier reaches it, aliases route by weight,
//! and everything survives a controller restart.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, Environment, FunctionCode, LogType, Runtime};
use aws_sdk_lambda::Client;
use base64::Engine as _;
use serde_json::Value;

use crate::common::{zip_of, Server};

const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function";

/// A handler that says which code it is and what the platform told it.
fn code(marker: &str) -> FunctionCode {
    let source = format!(
        "import os\n\ndef handler(event, context):\n    return {{\"code\": \"{marker}\", \
         \"color\": os.environ.get(\"COLOR\"), \"version\": os.environ[\"AWS_LAMBDA_FUNCTION_VERSION\"], \
         \"stream\": os.environ[\"AWS_LAMBDA_LOG_STREAM_NAME\"], \"context_version\": context.function_version, \
         \"arn\": context.invoked_function_arn}}\n"
    );
    FunctionCode::builder().zip_file(Blob::new(zip_of(&[("v.py", &source)]))).build()
}

fn color(c: &str) -> Environment {
    Environment::builder().variables("COLOR", c).build()
}

async fn create(c: &Client, name: &str) {
    c.create_function()
        .function_name(name)
        .runtime(Runtime::Python311)
        .role("arn:aws:iam::000000000000:role/test")
        .handler("v.handler")
        .code(code("one"))
        .environment(color("red"))
        .send()
        .await
        .expect("CreateFunction");
}

/// Invoke `function` (any form) with an optional `Qualifier`; the executed
/// version, the answer and the log tail.
async fn invoke(c: &Client, function: &str, qualifier: Option<&str>) -> (String, Value, String) {
    let out = c
        .invoke()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_owned))
        .log_type(LogType::Tail)
        .send()
        .await
        .unwrap_or_else(|e| panic!("Invoke {function} {qualifier:?}: {:?}", e.into_service_error()));
    assert_eq!(out.function_error(), None);
    let tail = base64::engine::general_purpose::STANDARD.decode(out.log_result().unwrap_or_default()).unwrap();
    let body = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    (out.executed_version().unwrap_or_default().to_owned(), body, String::from_utf8_lossy(&tail).into_owned())
}

#[tokio::test]
async fn a_version_keeps_its_code_and_configuration_while_latest_changes() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(data.path());
    let c = server.sdk();
    create(&c, "frozen").await;
    let v1 = c.publish_version().function_name("frozen").description("first").send().await.expect("PublishVersion");
    assert_eq!((v1.version(), v1.function_arn()), (Some("1"), Some(&*format!("{ARN}:frozen:1"))));
    c.update_function_code().function_name("frozen").zip_file(code_zip("two")).send().await.expect("code");
    c.update_function_configuration().function_name("frozen").environment(color("blue")).send().await.unwrap();

    let (version, one, log) = invoke(&c, "frozen:1", None).await;
    assert_eq!(version, "1");
    assert_eq!((one["code"].as_str(), one["color"].as_str()), (Some("one"), Some("red")), "{one}");
    assert_eq!((one["version"].as_str(), one["context_version"].as_str()), (Some("1"), Some("1")));
    assert!(one["stream"].as_str().unwrap().contains("/[1]"), "{one}");
    assert_eq!(one["arn"], format!("{ARN}:frozen:1"), "the ARN as invoked");
    assert!(log.starts_with("START RequestId: ") && log.contains(" Version: 1\n"), "{log}");
    let (version, latest, log) = invoke(&c, "frozen", None).await;
    assert_eq!(
        (version.as_str(), latest["code"].as_str(), latest["color"].as_str()),
        ("$LATEST", Some("two"), Some("blue"))
    );
    assert_eq!(latest["arn"], format!("{ARN}:frozen"));
    assert!(log.contains(" Version: $LATEST\n"), "{log}");
    let slots: Vec<String> =
        server.ps().await.iter().filter_map(|c| c["function"].as_str().map(str::to_owned)).collect();
    assert!(
        slots.contains(&"frozen:1".to_owned()) && slots.contains(&"frozen".to_owned()),
        "one pool per version: {slots:?}"
    );

    let v2 = c.publish_version().function_name("frozen").send().await.unwrap();
    assert_eq!(v2.version(), Some("2"));
    server.stop();
    let server = Server::start_in(data.path());
    let c = server.sdk();
    assert_eq!(invoke(&c, "frozen", Some("1")).await.1["code"], "one", "versions survive a restart");
    assert_eq!(invoke(&c, "frozen", Some("2")).await.1["code"], "two");
    c.delete_function().function_name("frozen").qualifier("1").send().await.expect("DeleteFunction :1");
    let gone = c.invoke().function_name("frozen:1").send().await.unwrap_err().into_service_error();
    assert_eq!(gone.code(), Some("ResourceNotFoundException"));
    assert_eq!(invoke(&c, "frozen:2", None).await.1["code"], "two", "deleting one version leaves the others");
    let v3 = c.publish_version().function_name("frozen").send().await.unwrap();
    assert_eq!(v3.version(), Some("2"), "an unchanged $LATEST publishes nothing new");
    let versions = c.list_versions_by_function().function_name("frozen").send().await.unwrap();
    let numbers: Vec<_> = versions.versions().iter().filter_map(|v| v.version()).collect();
    assert_eq!(numbers, ["$LATEST", "2"]);
}

fn code_zip(marker: &str) -> Blob {
    code(marker).zip_file().cloned().expect("a zip")
}

#[tokio::test]
async fn every_qualifier_form_reaches_the_version() {
    let server = Server::start();
    let c = server.sdk();
    create(&c, "forms").await;
    c.publish_version().function_name("forms").send().await.unwrap();
    c.update_function_code().function_name("forms").zip_file(code_zip("two")).publish(true).send().await.unwrap();
    c.create_alias().function_name("forms").name("live").function_version("1").send().await.expect("CreateAlias");
    for (function, qualifier, code, invoked) in [
        ("forms:1", None, "one", "forms:1"),
        ("forms", Some("1"), "one", "forms:1"),
        ("forms:2", Some("2"), "two", "forms:2"),
        ("000000000000:function:forms:2", None, "two", "forms:2"),
        ("us-east-1:000000000000:function:forms", Some("1"), "one", "forms:1"),
        (&format!("{ARN}:forms:live"), None, "one", "forms:live"),
        ("forms", Some("live"), "one", "forms:live"),
        ("forms", Some("$LATEST"), "two", "forms:$LATEST"),
    ] {
        let (_, body, _) = invoke(&c, function, qualifier).await;
        assert_eq!(body["code"], code, "{function} {qualifier:?}");
        assert_eq!(body["arn"], format!("{ARN}:{invoked}"), "{function} {qualifier:?}");
    }
    let mismatch = c.invoke().function_name("forms:1").qualifier("2").send().await.unwrap_err().into_service_error();
    assert_eq!(mismatch.code(), Some("InvalidParameterValueException"));
    assert_eq!(
        mismatch.message(),
        Some("The derived qualifier from the function name does not match the specified qualifier.")
    );
    let absent = c.invoke().function_name("forms").qualifier("nope").send().await.unwrap_err().into_service_error();
    assert_eq!(absent.message(), Some(&*format!("Function not found: {ARN}:forms:nope")));
}

#[tokio::test]
async fn an_alias_splits_traffic_by_weight_and_moves_at_once() {
    let server = Server::start();
    let c = server.sdk();
    create(&c, "canary").await;
    c.publish_version().function_name("canary").send().await.unwrap();
    c.update_function_code().function_name("canary").zip_file(code_zip("two")).publish(true).send().await.unwrap();
    let routing = AliasRoutingConfiguration::builder().additional_version_weights("2", 0.3).build();
    let alias = c.create_alias().function_name("canary").name("live").function_version("1").routing_config(routing);
    alias.send().await.expect("CreateAlias");
    const N: usize = 400;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..N {
        let (version, body, _) = invoke(&c, "canary:live", None).await;
        let expected = if version == "1" { "one" } else { "two" };
        assert_eq!(body["code"], expected, "X-Amz-Executed-Version says which version ran");
        *seen.entry(version).or_default() += 1;
    }
    let extra = seen.get("2").copied().unwrap_or(0);
    // 0.3 of 400 is 120 with a standard deviation of about 9: 80..=160 is over 4 of them.
    assert!((N / 5..=2 * N / 5).contains(&extra), "version 2 ran {extra} of {N}: {seen:?}");
    assert_eq!(seen.len(), 2, "{seen:?}");

    let cleared = AliasRoutingConfiguration::builder().set_additional_version_weights(Some(HashMap::new())).build();
    let update = c.update_alias().function_name("canary").name("live").function_version("2").routing_config(cleared);
    update.send().await.expect("UpdateAlias");
    for _ in 0..10 {
        assert_eq!(invoke(&c, "canary:live", None).await.0, "2", "the move takes effect at once");
    }
    let got = c.get_function().function_name("canary").qualifier("live").send().await.unwrap();
    let conf = got.configuration().unwrap();
    assert_eq!((conf.version(), conf.function_arn()), (Some("2"), Some(&*format!("{ARN}:canary:live"))));
    let in_use = c.delete_function().function_name("canary").qualifier("2").send().await.unwrap_err();
    assert_eq!(in_use.into_service_error().code(), Some("ResourceConflictException"));
    c.delete_alias().function_name("canary").name("live").send().await.expect("DeleteAlias");
    c.delete_function().function_name("canary").qualifier("2").send().await.expect("DeleteFunction :2");
    let waited = crate::common::eventually(Duration::from_secs(30), || async {
        !server.ps().await.iter().any(|c| c["function"] == "canary:2")
    })
    .await;
    assert!(waited, "a deleted version's containers are retired");
}

/// `lambdabox deploy --provisioned N` publishes a version of what it
/// deployed and moves the function's provisioned containers to it.
#[tokio::test]
async fn the_cli_provisions_the_version_it_publishes() {
    let server = Server::start();
    let code = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let cli = |extra: &[&str]| {
        let base = ["--endpoint", server.url.as_str(), "--data-dir", server.data_dir.to_str().unwrap(), "deploy", "pc"];
        let args = ["--runtime", "python3.11", "--handler", "app.handler", "--code", code.to_str().unwrap()];
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lambdabox"))
            .args(base)
            .args(args)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let config = |version: &str| {
        let path = format!("/2019-09-30/functions/pc/provisioned-concurrency?Qualifier={version}");
        let server = &server;
        async move { server.get(&path).send().await.status().as_u16() }
    };
    let said = cli(&["--provisioned", "1"]);
    assert!(said.contains("invoke pc:1"), "{said}");
    assert_eq!(config("1").await, 200);
    let (status, _, _) = server.invoke("pc:1", r#"{"name":"pc"}"#).await;
    assert_eq!(status, 200);

    let said = cli(&["--provisioned", "1", "--env", "CHANGED=yes"]);
    assert!(said.contains("invoke pc:2"), "{said}");
    assert_eq!((config("1").await, config("2").await), (404, 200), "moved to the new version");
    cli(&["--provisioned", "0"]);
    assert_eq!((config("1").await, config("2").await), (404, 404));
}

/// `lambdabox publish`, `lambdabox alias` and `lambdabox ls NAME`.
#[tokio::test]
async fn the_cli_publishes_points_aliases_and_lists_them() {
    let server = Server::start();
    server.deploy("cli-v", "app.echo", serde_json::json!({})).await;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lambdabox"))
            .args(["--endpoint", server.url.as_str(), "--data-dir", server.data_dir.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(run(&["publish", "cli-v", "--description", "first"]), "1");
    assert_eq!(run(&["alias", "cli-v", "live", "1"]), "arn:aws:lambda:us-east-1:000000000000:function:cli-v:live");
    assert_eq!(run(&["publish", "cli-v"]), "1", "nothing changed: the same version");
    let listed = run(&["ls", "cli-v"]);
    assert!(listed.lines().any(|l| l.starts_with("1 ") && l.ends_with("first")), "{listed}");
    let words = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert!(listed.lines().any(|l| words(l) == ["live", "1"]), "{listed}");
    // Moving the alias, with a weight, through the same command.
    let change = serde_json::json!({"Environment": {"Variables": {"SECOND": "2"}}});
    assert_eq!(server.put("/2015-03-31/functions/cli-v/configuration").json(&change).send().await.status(), 200);
    assert_eq!(run(&["publish", "cli-v"]), "2");
    run(&["alias", "cli-v", "live", "2", "--weight", "1=0.5"]);
    let listed = run(&["ls", "cli-v"]);
    assert!(listed.lines().any(|l| words(l) == ["live", "2", "1=0.5"]), "{listed}");
}

/// Provisioned concurrency on an alias keeps the containers of the version
/// it points at ready, moves with the alias, is split by its weights,
/// survives a restart, and goes with the alias.
#[tokio::test]
async fn provisioned_concurrency_on_an_alias_follows_the_alias() {
    let data = tempfile::tempdir().unwrap();
    // A short idle TTL: containers no longer provisioned are soon reaped.
    let mut server = Server::start_in_with(data.path(), &["--idle-ttl", "1"]);
    let c = server.sdk();
    create(&c, "warm").await;
    c.publish_version().function_name("warm").send().await.unwrap();
    c.update_function_code().function_name("warm").zip_file(code_zip("two")).publish(true).send().await.unwrap();
    c.create_alias().function_name("warm").name("live").function_version("1").send().await.expect("CreateAlias");
    let put = c.put_provisioned_concurrency_config().function_name("warm").qualifier("live");
    put.provisioned_concurrent_executions(2).send().await.expect("PutProvisionedConcurrencyConfig on an alias");
    let conflict = c.put_provisioned_concurrency_config().function_name("warm").qualifier("1");
    let conflict = conflict.provisioned_concurrent_executions(1).send().await.unwrap_err().into_service_error();
    assert_eq!(conflict.code(), Some("ResourceConflictException"), "{conflict:?}");
    assert_eq!(conflict.message(), Some("Version is pointed by a Provisioned Concurrency alias"));

    let ready_on = |want: &'static [(&'static str, usize)]| {
        let server = &server;
        async move {
            crate::common::eventually(Duration::from_secs(60), || async {
                let ps = server.ps().await;
                let count = |slot: &str| ps.iter().filter(|c| c["function"] == slot).count();
                want.iter().all(|(slot, n)| count(slot) == *n)
            })
            .await
        }
    };
    assert!(ready_on(&[("warm:1", 2), ("warm:2", 0)]).await, "two containers of version 1 started ahead");
    let status = |c: &Client| {
        let get = c.get_provisioned_concurrency_config().function_name("warm").qualifier("live");
        async move { get.send().await.map(|s| (s.requested_provisioned_concurrent_executions(), s.status().cloned())) }
    };
    let ready = crate::common::eventually(Duration::from_secs(30), || async {
        status(&c).await.ok().and_then(|s| s.1).is_some_and(|s| s.as_str() == "READY")
    })
    .await;
    assert!(ready, "the alias's configuration becomes READY");

    let update = c.update_alias().function_name("warm").name("live").function_version("2");
    update.send().await.expect("UpdateAlias");
    assert!(ready_on(&[("warm:1", 0), ("warm:2", 2)]).await, "the containers move with the alias");
    let (version, body, _) = invoke(&c, "warm:live", None).await;
    assert_eq!((version.as_str(), body["code"].as_str()), ("2", Some("two")));

    server.stop();
    let server = Server::start_in_with(data.path(), &["--idle-ttl", "1"]);
    let c = server.sdk();
    assert_eq!(status(&c).await.expect("after a restart").0, Some(2));
    let listed = c.list_provisioned_concurrency_configs().function_name("warm").send().await.unwrap();
    let arns: Vec<_> = listed.provisioned_concurrency_configs().iter().filter_map(|p| p.function_arn()).collect();
    assert_eq!(arns, [format!("{ARN}:warm:live")]);
    let ps_has = |slot: &'static str, n: usize| {
        let server = &server;
        async move {
            crate::common::eventually(Duration::from_secs(60), || async {
                server.ps().await.iter().filter(|c| c["function"] == slot).count() == n
            })
            .await
        }
    };
    assert!(ps_has("warm:2", 2).await, "restored at start-up on the version the alias points at");

    c.delete_alias().function_name("warm").name("live").send().await.expect("DeleteAlias");
    let gone = status(&c).await.unwrap_err().into_service_error();
    assert_eq!(gone.code(), Some("ResourceNotFoundException"), "the alias is gone: {gone:?}");
    let listed = c.list_provisioned_concurrency_configs().function_name("warm").send().await.unwrap();
    assert!(listed.provisioned_concurrency_configs().is_empty());
    assert!(ps_has("warm:2", 0).await, "no longer kept once the alias is gone");
}

/// Publishing gives `$LATEST` a new RevisionId but not new code: its warm
/// container keeps serving it.
#[tokio::test]
async fn publishing_leaves_latest_warm() {
    let server = Server::start();
    let c = server.sdk();
    create(&c, "steady").await;
    invoke(&c, "steady", None).await;
    let before = c.get_function().function_name("steady").send().await.unwrap();
    c.publish_version().function_name("steady").send().await.expect("PublishVersion");
    let after = c.get_function().function_name("steady").send().await.unwrap();
    let revision = |g: &aws_sdk_lambda::operation::get_function::GetFunctionOutput| {
        g.configuration().and_then(|c| c.revision_id()).map(str::to_owned)
    };
    assert_ne!(revision(&before), revision(&after), "a new RevisionId, as on Lambda");
    invoke(&c, "steady", None).await;
    let ps = server.ps().await;
    let latest: Vec<_> = ps.iter().filter(|c| c["function"] == "steady").collect();
    assert_eq!(latest.len(), 1, "{ps:?}");
    assert_eq!(latest[0]["invocations"], 2, "the same warm container served both: {ps:?}");
}
