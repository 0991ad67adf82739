//! Container image functions: a local image is the function; lambdabox
//! injects its init and runs the image's ENTRYPOINT + CMD as the bootstrap,
//! honouring ImageConfig, and pins the image it resolved.

use crate::common;

use aws_sdk_lambda::types::{FunctionCode, PackageType};
use common::Server;
use serde_json::json;

const APP_V1: &str = r#"
import os
def handler(event, context):
    return {"v": 1, "handler": os.environ["_HANDLER"], "cwd": os.getcwd(), "event": event,
            "name": context.function_name}
def other(event, context):
    return {"v": 1, "other": True, "cwd": os.getcwd()}
"#;

const APP_V2: &str = r#"
def handler(event, context):
    return {"v": 2}
"#;

async fn build_user_image(tag: &str, app: &str) {
    common::python_image(tag, &[("/var/task/app.py", app.as_bytes())], "app.handler").await;
}

#[tokio::test]
async fn images_run_with_their_entrypoint_and_image_config() {
    let tag = format!("lambdabox-test/py-image:{}", uuid::Uuid::new_v4().simple());
    build_user_image(&tag, APP_V1).await;
    let server = Server::start();
    let c = server.sdk();
    let created = c
        .create_function()
        .function_name("img")
        .package_type(PackageType::Image)
        .code(FunctionCode::builder().image_uri(&tag).build())
        .role("arn:aws:iam::000000000000:role/test")
        .send()
        .await
        .expect("CreateFunction with an image");
    assert_eq!(created.package_type(), Some(&PackageType::Image));
    assert!(created.runtime().is_none() && created.handler().is_none());

    let (status, _, body) = server.invoke("img", r#"{"hi":"ïmage"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"v": 1, "handler": "app.handler", "cwd": "/var/task", "event": {"hi": "ïmage"}, "name": "img"})
    );
    let got = c.get_function().function_name("img").send().await.unwrap();
    assert_eq!(got.code().unwrap().image_uri(), Some(tag.as_str()));
    assert!(got.code().unwrap().resolved_image_uri().unwrap().contains("@sha256:"));

    // ImageConfig overrides CMD (the handler) and the working directory.
    let config = aws_sdk_lambda::types::ImageConfig::builder().command("app.other").working_directory("/tmp").build();
    c.update_function_configuration().function_name("img").image_config(config).send().await.unwrap();
    let (_, _, body) = server.invoke("img", "{}").await;
    assert_eq!(body, json!({"v": 1, "other": true, "cwd": "/tmp"}));
    let conf = c.get_function_configuration().function_name("img").send().await.unwrap();
    let image_config = conf.image_config_response().unwrap().image_config().unwrap();
    assert_eq!(image_config.command(), ["app.other"]);

    // The image is pinned: a rebuilt tag changes nothing until the code is updated.
    build_user_image(&tag, APP_V2).await;
    c.update_function_configuration().function_name("img").memory_size(256).send().await.unwrap();
    assert_eq!(server.invoke("img", "{}").await.2["v"], 1, "still the image resolved at deploy time");
    let config = aws_sdk_lambda::types::ImageConfig::builder().command("app.handler").build();
    c.update_function_configuration().function_name("img").image_config(config).send().await.unwrap();
    c.update_function_code().function_name("img").image_uri(&tag).send().await.expect("UpdateFunctionCode");
    assert_eq!(server.invoke("img", "{}").await.2, json!({"v": 2}));

    // Its output is logged like any function's.
    let (_, _, tail) = server.invoke_tail("img", "{}").await;
    assert!(tail.starts_with("START RequestId: ") && tail.contains("REPORT RequestId: "), "{tail}");
    common::remove_image(&tag).await;
}

#[tokio::test]
async fn bad_image_functions_are_refused() {
    const ROLE: &str = "arn:aws:iam::000000000000:role/r";
    let server = Server::start();
    let create = |body: serde_json::Value| server.post("/2015-03-31/functions").json(&body).send();
    let missing = create(json!({
        "FunctionName": "nope", "PackageType": "Image", "Role": ROLE, "Code": {"ImageUri": "lambdabox-test/absent:1"}
    }))
    .await;
    assert_eq!(missing.status(), 400);
    let text = missing.text().await.unwrap();
    assert!(text.contains("Source image lambdabox-test/absent:1 does not exist"), "{text}");

    common::ensure_runtime_image("python3.11");
    let with_runtime = create(json!({
        "FunctionName": "both", "PackageType": "Image", "Runtime": "python3.11", "Role": ROLE,
        "Code": {"ImageUri": "lambdabox/python3.11:latest"}
    }))
    .await;
    assert_eq!(with_runtime.status(), 400);
    let no_uri = create(json!({"FunctionName": "nouri", "PackageType": "Image", "Role": ROLE, "Code": {}})).await;
    assert_eq!(no_uri.status(), 400);
    let bad_type = create(json!({"FunctionName": "x", "PackageType": "Tarball", "Role": ROLE, "Code": {}})).await;
    assert_eq!(bad_type.status(), 400);

    // A zip function cannot take an image, nor ImageConfig.
    server.deploy("zipfn", "app.echo", json!({})).await;
    let resp = server
        .put("/2015-03-31/functions/zipfn/code")
        .json(&json!({"ImageUri": "lambdabox/python3.11:latest"}))
        .send()
        .await;
    assert_eq!(resp.status(), 400);
    let resp = server
        .put("/2015-03-31/functions/zipfn/configuration")
        .json(&json!({"ImageConfig": {"Command": ["x"]}}))
        .send()
        .await;
    assert_eq!(resp.status(), 400);
}
