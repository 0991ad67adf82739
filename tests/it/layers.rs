//! Layers: published with the AWS SDK, merged in order under /opt, on the
//! runtime's paths, at most five per function, and kept working for the
//! functions that use them after the version is deleted.

use crate::common;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{LayerVersionContentInput, Runtime};
use common::{zip_of, Server};
use serde_json::json;

const APP: &str = r#"
import subprocess
def handler(event, context):
    import layer_mod, shared
    tool = subprocess.run(["layer-tool"], capture_output=True, text=True).stdout.strip()
    return {"layer": layer_mod.value(), "shared": shared.WHO, "tool": tool}
"#;

async fn publish(c: &aws_sdk_lambda::Client, name: &str, files: &[(&str, &str)]) -> (String, i64) {
    let out = c
        .publish_layer_version()
        .layer_name(name)
        .description(format!("{name} for tests"))
        .compatible_runtimes(Runtime::Python311)
        .content(LayerVersionContentInput::builder().zip_file(Blob::new(zip_of(files))).build())
        .send()
        .await
        .expect("PublishLayerVersion");
    (out.layer_version_arn().unwrap().to_owned(), out.version())
}

#[tokio::test]
async fn layers_publish_merge_in_order_and_outlive_deletion() {
    let server = Server::start();
    let c = server.sdk();
    let (base, v1) = publish(
        &c,
        "base",
        &[
            ("python/layer_mod.py", "def value():\n    return 'from-layer'\n"),
            ("python/shared.py", "WHO = 'base'\n"),
            ("bin/layer-tool", "#!/bin/sh\necho tool-from-layer\n"),
        ],
    )
    .await;
    assert_eq!(v1, 1);
    let (over, _) = publish(&c, "override", &[("python/shared.py", "WHO = 'override'\n")]).await;
    assert_eq!(publish(&c, "override", &[("python/shared.py", "WHO = 'v2'\n")]).await.1, 2, "versions count up");

    let got = c.get_layer_version().layer_name("base").version_number(1).send().await.expect("GetLayerVersion");
    assert_eq!(got.layer_version_arn(), Some(base.as_str()));
    assert_eq!(got.layer_arn(), Some("arn:aws:lambda:us-east-1:000000000000:layer:base"));
    assert!(got.content().unwrap().code_size() > 0 && got.content().unwrap().code_sha256().is_some());
    let layers = c.list_layers().send().await.expect("ListLayers");
    let names: Vec<&str> = layers.layers().iter().filter_map(|l| l.layer_name()).collect();
    assert_eq!(names, ["base", "override"]);
    assert_eq!(layers.layers()[1].latest_matching_version().unwrap().version(), 2);
    let versions = c.list_layer_versions().layer_name("override").send().await.expect("ListLayerVersions");
    let numbers: Vec<i64> = versions.layer_versions().iter().map(|v| v.version()).collect();
    assert_eq!(numbers, [2, 1]);

    server.deploy_files("uses-layers", "app.handler", &[("app.py", APP)], json!({"Layers": [base, over]})).await;
    let (status, _, body) = server.invoke("uses-layers", "{}").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"layer": "from-layer", "shared": "override", "tool": "tool-from-layer"}));
    let config = c.get_function_configuration().function_name("uses-layers").send().await.unwrap();
    let arns: Vec<&str> = config.layers().iter().filter_map(|l| l.arn()).collect();
    assert_eq!(arns, [base.as_str(), over.as_str()]);

    // A deleted version keeps serving the functions that use it.
    c.delete_layer_version().layer_name("base").version_number(1).send().await.expect("DeleteLayerVersion");
    let gone = c.get_layer_version().layer_name("base").version_number(1).send().await.unwrap_err();
    assert!(gone.into_service_error().is_resource_not_found_exception());
    c.update_function_configuration().function_name("uses-layers").memory_size(256).send().await.unwrap();
    let (_, _, body) = server.invoke("uses-layers", "{}").await;
    assert_eq!(body["layer"], "from-layer", "a fresh container still gets the deleted layer: {body}");

    // Dropping the layers takes them off the function's paths.
    c.update_function_configuration().function_name("uses-layers").set_layers(Some(vec![])).send().await.unwrap();
    let (_, headers, body) = server.invoke("uses-layers", "{}").await;
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(body["errorType"], "ModuleNotFoundError", "{body}");
}

#[tokio::test]
async fn bad_layer_lists_are_refused() {
    let server = Server::start();
    let c = server.sdk();
    let mut arns = Vec::new();
    for i in 0..6 {
        arns.push(publish(&c, &format!("l{i}"), &[("python/m.py", "X = 1\n")]).await.0);
    }
    let create = |layers: Vec<String>| {
        c.create_function()
            .function_name("f")
            .runtime(Runtime::Python311)
            .role("arn:aws:iam::000000000000:role/test")
            .handler("app.handler")
            .code(
                aws_sdk_lambda::types::FunctionCode::builder().zip_file(Blob::new(zip_of(&[("app.py", APP)]))).build(),
            )
            .set_layers(Some(layers))
            .send()
    };
    let six = create(arns.clone()).await.unwrap_err().into_service_error();
    assert!(six.is_invalid_parameter_value_exception(), "{six:?}");
    let missing = create(vec!["arn:aws:lambda:us-east-1:000000000000:layer:nope:1".into()]).await;
    assert!(missing.unwrap_err().into_service_error().is_invalid_parameter_value_exception());
    let malformed = create(vec!["not-an-arn".into()]).await.unwrap_err().into_service_error();
    assert!(malformed.is_invalid_parameter_value_exception(), "{malformed:?}");
    create(arns[..5].to_vec()).await.expect("five layers are fine");

    let bad_name = server
        .post("/2018-10-31/layers/bad%20name/versions")
        .json(&json!({"Content": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}))
        .send()
        .await;
    assert_eq!(bad_name.status(), 400);
    let not_zip = server
        .post("/2018-10-31/layers/ok/versions")
        .json(&json!({"Content": {"ZipFile": "bm90IGEgemlw"}}))
        .send()
        .await;
    assert_eq!(not_zip.status(), 400, "{}", not_zip.text().await.unwrap());
}
