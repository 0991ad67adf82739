//! The java17 and java21 runtimes: lambdabox's Java runtime client running
//! functions written against aws-lambda-java-core, compiled here with the
//! image's own javac (tests/common/java.rs).

use crate::common;

use common::java::{deploy_zip, fixture_zips, function_zip};
use common::{ensure_runtime_image, Server};
use serde_json::json;

const RUNTIMES: [&str; 2] = ["java17", "java21"];

/// Build both images (the fixtures are compiled in java17's) before any test uses them.
fn images() {
    for runtime in RUNTIMES {
        ensure_runtime_image(runtime);
    }
}

fn name(runtime: &str, case: &str) -> String {
    format!("{runtime}-{case}")
}

/// What the conformance suite (tests/conformance.rs) does not check:
/// Java's own error shape and execution environment.
#[tokio::test]
async fn errors_carry_the_functions_frames_and_the_java_environment() {
    images();
    let server = Server::start();
    let (zip, _layer) = fixture_zips();
    for runtime in RUNTIMES {
        deploy_zip(&server, &name(runtime, "fail"), runtime, "conformance.Handlers::fail", zip, json!({})).await;
        let (_, headers, doc) = server.invoke(&name(runtime, "fail"), "{}").await;
        assert_eq!(headers["x-amz-function-error"], "Unhandled");
        let trace = doc["stackTrace"].as_array().expect("stackTrace array");
        assert!(trace[0].as_str().unwrap().starts_with("conformance.Handlers.fail(Handlers.java:"), "{doc}");
        assert!(!trace.iter().any(|f| f.as_str().unwrap().starts_with("lambdabox.")), "no runtime frames: {doc}");

        deploy_zip(&server, &name(runtime, "env"), runtime, "conformance.Handlers::env", zip, json!({})).await;
        let (_, _, vars) = server.invoke(&name(runtime, "env"), r#"{"keys":["AWS_EXECUTION_ENV"]}"#).await;
        assert_eq!(vars, json!({ "AWS_EXECUTION_ENV": format!("AWS_Lambda_{runtime}") }));
    }
}

const GREETER: &str = r#"
package example;

import com.amazonaws.services.lambda.runtime.Context;
import java.util.List;

class Hidden {
    public static String hello(Object event) {
        return "from a class that is not public";
    }
}

public class Greeter {
    public static class Person {
        private String name;
        private int age;
        public List<String> tags;
        public String getName() { return name; }
        public void setName(String name) { this.name = name; }
        public int getAge() { return age; }
        public void setAge(int age) { this.age = age; }
    }

    public static class Greeting {
        public String message;
        public int nextAge;
        public List<String> tags;
    }

    public Greeting greet(Person person, Context context) {
        Greeting g = new Greeting();
        g.message = "Hello, " + person.getName() + "!";
        g.nextAge = person.getAge() + 1;
        g.tags = person.tags;
        return g;
    }

    public static String shout(String text) {
        return text.toUpperCase();
    }

    public static int twice(Integer n) {
        return n * 2;
    }

    public static long maxHeapMb() {
        return Runtime.getRuntime().maxMemory() / (1024 * 1024);
    }

    public static List<Object> reversed(List<Object> items) {
        java.util.Collections.reverse(items);
        return items;
    }
}
"#;

const KEYS: &str = r#"
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Map;
import java.util.TreeSet;

public class Keys implements RequestHandler<Map<String, Object>, String> {
    static int constructed;
    private int calls;

    public Keys() {
        constructed++;
    }

    @Override
    public String handleRequest(Map<String, Object> event, Context context) {
        calls++;
        context.getLogger().log("keys called " + calls);
        return String.join(",", new TreeSet<>(event.keySet())) + " constructed=" + constructed + " calls=" + calls;
    }
}
"#;

const UPPER: &str = r#"
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

public class Upper implements RequestStreamHandler {
    @Override
    public void handleRequest(InputStream in, OutputStream out, Context context) throws IOException {
        String text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        out.write(text.toUpperCase().getBytes(StandardCharsets.UTF_8));
    }
}
"#;

#[tokio::test]
async fn pojo_typed_and_class_handlers() {
    images();
    let server = Server::start();
    let zip = function_zip(
        &[("example/Greeter.java", GREETER), ("example/Keys.java", KEYS), ("example/Upper.java", UPPER)],
        &[],
    );
    for runtime in RUNTIMES {
        let deploy = |case: &'static str, handler: &'static str| {
            let (server, zip) = (&server, &zip);
            async move { deploy_zip(server, &name(runtime, case), runtime, handler, zip, json!({"Timeout": 10})).await }
        };
        deploy("pojo", "example.Greeter::greet").await;
        let (status, _, out) =
            server.invoke(&name(runtime, "pojo"), r#"{"NAME":"Ada","age":36,"tags":["x"],"unknown":1}"#).await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(out, json!({"message": "Hello, Ada!", "nextAge": 37, "tags": ["x"]}));

        deploy("string", "example.Greeter::shout").await;
        assert_eq!(server.invoke(&name(runtime, "string"), r#""héllo""#).await.2, json!("HÉLLO"));
        deploy("integer", "example.Greeter::twice").await;
        assert_eq!(server.invoke(&name(runtime, "integer"), "21").await.2, json!(42));
        deploy("hidden", "example.Hidden::hello").await;
        assert_eq!(server.invoke(&name(runtime, "hidden"), "{}").await.2, "from a class that is not public");
        deploy("list", "example.Greeter::reversed").await;
        assert_eq!(
            server.invoke(&name(runtime, "list"), r#"[1,"two",{"3":[]}]"#).await.2,
            json!([{"3": []}, "two", 1])
        );
        let (_, headers, doc) = server.invoke(&name(runtime, "integer"), r#"{"not":"a number"}"#).await;
        assert_eq!(headers["x-amz-function-error"], "Unhandled");
        assert_eq!(doc["errorMessage"], "An error occurred during JSON parsing", "{doc}");

        deploy("keys", "example.Keys").await;
        assert_eq!(server.invoke(&name(runtime, "keys"), r#"{"b":1,"a":2}"#).await.2, "a,b constructed=1 calls=1");
        assert_eq!(
            server.invoke(&name(runtime, "keys"), r#"{"c":null}"#).await.2,
            "c constructed=1 calls=2",
            "the handler object is made once, at init, and reused"
        );
        deploy("keys-explicit", "example.Keys::handleRequest").await;
        assert_eq!(server.invoke(&name(runtime, "keys-explicit"), r#"{"z":0}"#).await.2, "z constructed=1 calls=1");

        deploy("stream", "example.Upper").await;
        assert_eq!(server.invoke(&name(runtime, "stream"), r#""quiet""#).await.2, json!("QUIET"));
    }
}

#[tokio::test]
async fn heap_follows_memory_unless_java_tool_options_says_otherwise() {
    images();
    let server = Server::start();
    let zip = function_zip(&[("example/Greeter.java", GREETER)], &[]);
    for runtime in RUNTIMES {
        let handler = "example.Greeter::maxHeapMb";
        deploy_zip(&server, &name(runtime, "heap"), runtime, handler, &zip, json!({"MemorySize": 512})).await;
        let heap = server.invoke(&name(runtime, "heap"), "{}").await.2.as_i64().unwrap();
        assert!((380..=440).contains(&heap), "85% of 512 MB: {heap} MB");
        let extra = json!({"MemorySize": 512, "Environment": {"Variables": {"JAVA_TOOL_OPTIONS": "-Xmx64m"}}});
        deploy_zip(&server, &name(runtime, "heap-user"), runtime, handler, &zip, extra).await;
        let heap = server.invoke(&name(runtime, "heap-user"), "{}").await.2.as_i64().unwrap();
        assert!((50..=64).contains(&heap), "the user's -Xmx64m wins: {heap} MB");
    }
}

#[tokio::test]
async fn jars_in_lib_are_on_the_classpath() {
    images();
    let server = Server::start();
    let fixture = common::java::fixture();
    let zip = &fixture.function_zip;
    // The layer's jar shipped in the function's own lib/ instead of a layer.
    let mut files = fixture.classes.clone();
    files.push(("lib/layer.jar".to_owned(), fixture.layer_jar.clone()));
    let with_lib = common::java::zip_files(&files);
    for runtime in RUNTIMES {
        let handler = "conformance.Handlers::layer";
        deploy_zip(&server, &name(runtime, "lib"), runtime, handler, &with_lib, json!({})).await;
        assert_eq!(server.invoke(&name(runtime, "lib"), "{}").await.2, json!({"layer": "from-layer"}));
        deploy_zip(&server, &name(runtime, "nolib"), runtime, handler, zip, json!({})).await;
        let (_, headers, doc) = server.invoke(&name(runtime, "nolib"), "{}").await;
        assert_eq!(headers["x-amz-function-error"], "Unhandled");
        assert_eq!(doc["errorType"], "java.lang.NoClassDefFoundError", "{doc}");
    }
}

#[tokio::test]
async fn a_handler_that_cannot_be_found_is_an_init_error() {
    images();
    let server = Server::start();
    let (zip, _) = fixture_zips();
    for runtime in RUNTIMES {
        for (case, handler, error_type) in [
            ("noclass", "conformance.Missing::echo", "java.lang.ClassNotFoundException"),
            ("nomethod", "conformance.Handlers::missing", "java.lang.NoSuchMethodException"),
            ("nointerface", "conformance.Handlers", "java.lang.IllegalArgumentException"),
        ] {
            deploy_zip(&server, &name(runtime, case), runtime, handler, zip, json!({})).await;
            let (status, headers, doc) = server.invoke(&name(runtime, case), "{}").await;
            assert_eq!(status, 200, "{doc}");
            assert_eq!(headers["x-amz-function-error"], "Unhandled");
            assert_eq!(doc["errorType"], error_type, "{handler}: {doc}");
            assert!(doc["errorMessage"].as_str().unwrap().contains(handler.split("::").next().unwrap()), "{doc}");
        }
    }
}
