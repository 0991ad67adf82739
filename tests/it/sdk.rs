//! The official AWS SDK for Rust drives lambdabox: create, invoke, get, list,
//! update, delete, and the errors it must recognise by name.

use crate::common;

use base64::Engine as _;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, InvocationType, Runtime};
use aws_sdk_lambda::Client;
use common::{zip_of, Server, APP_PY};

fn client(server: &Server) -> Client {
    server.sdk()
}

fn code(zip: Vec<u8>) -> FunctionCode {
    FunctionCode::builder().zip_file(Blob::new(zip)).build()
}

async fn create(
    c: &Client,
    name: &str,
    handler: &str,
) -> aws_sdk_lambda::operation::create_function::CreateFunctionOutput {
    c.create_function()
        .function_name(name)
        .runtime(Runtime::Python311)
        .role("arn:aws:iam::000000000000:role/test")
        .handler(handler)
        .code(code(zip_of(&[("app.py", APP_PY)])))
        .environment(Environment::builder().variables("GREETING", "hej").build())
        .memory_size(256)
        .timeout(5)
        .send()
        .await
        .expect("CreateFunction")
}

#[tokio::test]
async fn sdk_create_invoke_get_list_delete() {
    let server = Server::start();
    let c = client(&server);

    let created = create(&c, "sdk-echo", "app.echo").await;
    assert_eq!(created.function_name(), Some("sdk-echo"));
    assert_eq!(created.function_arn(), Some("arn:aws:lambda:us-east-1:000000000000:function:sdk-echo"));
    assert_eq!(created.state().map(|s| s.as_str()), Some("Active"));
    assert_eq!(created.memory_size(), Some(256));
    assert_eq!(created.code_sha256().map(str::len), Some(44), "base64 of a SHA-256");

    let out = c
        .invoke()
        .function_name("sdk-echo")
        .payload(Blob::new(r#"{"hello":"wörld","n":[1,2,3]}"#))
        .log_type(aws_sdk_lambda::types::LogType::Tail)
        .send()
        .await
        .expect("Invoke");
    assert_eq!(out.status_code(), 200);
    assert_eq!(out.function_error(), None);
    assert_eq!(out.executed_version(), Some("$LATEST"));
    let echoed: serde_json::Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    assert_eq!(echoed, serde_json::json!({"hello": "wörld", "n": [1, 2, 3]}));
    let log = base64::engine::general_purpose::STANDARD.decode(out.log_result().expect("LogResult")).unwrap();
    let log = String::from_utf8(log).unwrap();
    assert!(log.starts_with("START RequestId: ") && log.contains("\nREPORT RequestId: "), "{log}");

    let got = c.get_function().function_name("sdk-echo").send().await.expect("GetFunction");
    let conf = got.configuration().unwrap();
    assert_eq!(conf.handler(), Some("app.echo"));
    assert_eq!(
        conf.environment().and_then(|e| e.variables()).and_then(|v| v.get("GREETING")).map(String::as_str),
        Some("hej")
    );
    assert_eq!(conf.last_update_status().map(|s| s.as_str()), Some("Successful"));
    let location = got.code().and_then(|c| c.location()).unwrap().to_owned();
    // Presigned, like Lambda's S3 URL: fetched with no credentials at all.
    let zip = reqwest::get(&location).await.unwrap().bytes().await.unwrap();
    assert!(zip.starts_with(b"PK"), "code location serves the zip");

    let by_arn = c
        .get_function_configuration()
        .function_name("arn:aws:lambda:us-east-1:000000000000:function:sdk-echo")
        .send()
        .await
        .expect("GetFunctionConfiguration by ARN");
    assert_eq!(by_arn.function_name(), Some("sdk-echo"));

    create(&c, "sdk-other", "app.echo").await;
    let listed = c.list_functions().send().await.expect("ListFunctions");
    let names: Vec<&str> = listed.functions().iter().filter_map(|f| f.function_name()).collect();
    assert_eq!(names, ["sdk-echo", "sdk-other"]);
    let page = c.list_functions().max_items(1).send().await.unwrap();
    assert_eq!(page.functions().len(), 1);
    let rest = c.list_functions().marker(page.next_marker().unwrap()).send().await.unwrap();
    assert_eq!(rest.functions()[0].function_name(), Some("sdk-other"));
    assert!(rest.next_marker().is_none());

    let updated = c
        .update_function_configuration()
        .function_name("sdk-echo")
        .handler("app.context_fields")
        .send()
        .await
        .expect("UpdateFunctionConfiguration");
    assert_ne!(updated.revision_id(), created.revision_id());
    let out = c.invoke().function_name("sdk-echo").payload(Blob::new("{}")).send().await.unwrap();
    let ctx: serde_json::Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    assert_eq!(ctx["function_name"], "sdk-echo", "an update is served by the new configuration");

    c.delete_function().function_name("sdk-echo").send().await.expect("DeleteFunction");
    let err = c.get_function().function_name("sdk-echo").send().await.unwrap_err().into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
}

#[tokio::test]
async fn sdk_sees_lambdas_error_codes() {
    let server = Server::start();
    let c = client(&server);
    create(&c, "sdk-errors", "app.fail").await;

    let dup = c
        .create_function()
        .function_name("sdk-errors")
        .runtime(Runtime::Python311)
        .role("arn:aws:iam::000000000000:role/test")
        .handler("app.echo")
        .code(code(zip_of(&[("app.py", APP_PY)])))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(dup.is_resource_conflict_exception(), "{dup:?}");

    let missing = c.invoke().function_name("nope").send().await.unwrap_err().into_service_error();
    assert!(missing.is_resource_not_found_exception(), "{missing:?}");

    let not_json = c.invoke().function_name("sdk-errors").payload(Blob::new("{not json")).send().await;
    let not_json = not_json.unwrap_err().into_service_error();
    assert!(not_json.is_invalid_request_content_exception(), "{not_json:?}");

    let big = vec![b' '; 6 * 1024 * 1024 + 10];
    let too_large = c.invoke().function_name("sdk-errors").payload(Blob::new(big)).send().await;
    // AWS answers RequestEntityTooLargeException, not the modelled
    // RequestTooLargeException: the SDK sees an unmodelled code.
    let too_large = too_large.unwrap_err().into_service_error();
    assert_eq!(too_large.code(), Some("RequestEntityTooLargeException"), "{too_large:?}");

    // Below the model's 128 is a ValidationException, above Lambda's 10,240 InvalidParameterValue.
    let bad_memory = c.update_function_configuration().function_name("sdk-errors").memory_size(64).send().await;
    let bad_memory = bad_memory.unwrap_err().into_service_error();
    assert_eq!(bad_memory.code(), Some("ValidationException"), "{bad_memory:?}");
    let too_much = c.update_function_configuration().function_name("sdk-errors").memory_size(10_241).send().await;
    assert!(too_much.unwrap_err().into_service_error().is_invalid_parameter_value_exception());

    // A function error is a successful call carrying X-Amz-Function-Error.
    let out = c.invoke().function_name("sdk-errors").payload(Blob::new("{}")).send().await.expect("Invoke");
    assert_eq!(out.function_error(), Some("Unhandled"));
    let doc: serde_json::Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    assert_eq!(doc["errorType"], "ValueError");
    assert_eq!(doc["errorMessage"], "something went wrong");

    let dry = c.invoke().function_name("sdk-errors").invocation_type(InvocationType::DryRun).send().await.unwrap();
    assert_eq!(dry.status_code(), 204);
}
