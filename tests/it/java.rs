//! The java17 and java21 runtimes: AWS's runtime interface client running
//! functions written against aws-lambda-java-core (and aws-lambda-java-events),
//! compiled here with the image's own javac (tests/common/java.rs).

use crate::common;

use common::java::{deploy_zip, fixture_zips, function_zip, function_zip_with_libs, maven_jar};
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
        let runtime_frame = |f: &serde_json::Value| {
            f.as_str().unwrap().starts_with("com.amazonaws.services.lambda.runtime.api.client.")
        };
        assert!(!trace.iter().any(runtime_frame), "no runtime frames: {doc}");

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
            server.invoke(&name(runtime, "pojo"), r#"{"name":"Ada","age":36,"tags":["x"],"unknown":1}"#).await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(out, json!({"message": "Hello, Ada!", "nextAge": 37, "tags": ["x"]}));
        // AWS's serializer matches property names exactly, as on Lambda.
        let (_, _, out) = server.invoke(&name(runtime, "pojo"), r#"{"NAME":"Ada","age":1}"#).await;
        assert_eq!(out, json!({"message": "Hello, null!", "nextAge": 2}), "and leaves out null fields");

        deploy("string", "example.Greeter::shout").await;
        assert_eq!(server.invoke(&name(runtime, "string"), r#""héllo""#).await.2, json!("HÉLLO"));
        deploy("integer", "example.Greeter::twice").await;
        assert_eq!(server.invoke(&name(runtime, "integer"), "21").await.2, json!(42));
        deploy("hidden", "example.Hidden::hello").await;
        // AWS's client calls the method through reflection without making it
        // accessible: a class that is not public fails as on Lambda.
        let (_, headers, doc) = server.invoke(&name(runtime, "hidden"), "{}").await;
        assert_eq!(headers["x-amz-function-error"], "Unhandled");
        assert_eq!(doc["errorType"], "java.lang.IllegalAccessException", "{doc}");
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

/// As AWS's client reports it on Lambda: a handler that cannot be found fails
/// every invocation (the runtime stays up); a missing class carries the
/// exception's type, a missing method or interface only a message.
#[tokio::test]
async fn a_handler_that_cannot_be_found_fails_its_invocations() {
    images();
    let server = Server::start();
    let (zip, _) = fixture_zips();
    for runtime in RUNTIMES {
        for (case, handler, error_type, message) in [
            ("noclass", "conformance.Missing::echo", Some("java.lang.ClassNotFoundException"), "Class not found"),
            ("nomethod", "conformance.Handlers::missing", None, "No public method named missing"),
            ("nointerface", "conformance.Handlers", None, "does not implement an appropriate handler interface"),
        ] {
            deploy_zip(&server, &name(runtime, case), runtime, handler, zip, json!({})).await;
            for _ in 0..2 {
                let (status, headers, doc) = server.invoke(&name(runtime, case), "{}").await;
                assert_eq!(status, 200, "{doc}");
                assert_eq!(headers["x-amz-function-error"], "Unhandled");
                assert_eq!(doc.get("errorType").and_then(|t| t.as_str()), error_type, "{handler}: {doc}");
                let text = doc["errorMessage"].as_str().unwrap();
                assert!(text.contains(message), "{doc}");
                assert!(text.contains(handler.split("::").next().unwrap()), "{doc}");
            }
        }
    }
}

/// A function built against aws-lambda-java-events, with the events library and
/// joda-time in its zip's lib/ as a user's build packs them.
const EVENTS: &str = r#"
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.events.APIGatewayV2HTTPEvent;
import com.amazonaws.services.lambda.runtime.events.APIGatewayV2HTTPResponse;
import com.amazonaws.services.lambda.runtime.events.S3Event;
import com.amazonaws.services.lambda.runtime.events.SQSEvent;
import com.amazonaws.services.lambda.runtime.events.ScheduledEvent;
import com.amazonaws.services.lambda.runtime.events.models.s3.S3EventNotification.S3EventNotificationRecord;
import java.util.LinkedHashMap;
import java.util.Map;
import org.joda.time.DateTime;

public class Events {
    public Map<String, Object> sqs(SQSEvent event, Context context) {
        SQSEvent.SQSMessage m = event.getRecords().get(0);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("records", event.getRecords().size());
        out.put("messageId", m.getMessageId());
        out.put("body", m.getBody());
        out.put("eventSource", m.getEventSource());
        out.put("eventSourceArn", m.getEventSourceArn());
        out.put("receiveCount", m.getAttributes().get("ApproximateReceiveCount"));
        out.put("author", m.getMessageAttributes().get("Author").getStringValue());
        out.put("authorType", m.getMessageAttributes().get("Author").getDataType());
        out.put("secondBody", event.getRecords().get(1).getBody());
        return out;
    }

    public Map<String, Object> scheduled(ScheduledEvent event) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", event.getId());
        out.put("detailType", event.getDetailType());
        out.put("source", event.getSource());
        out.put("account", event.getAccount());
        out.put("region", event.getRegion());
        out.put("resource", event.getResources().get(0));
        out.put("timeMillis", event.getTime().getMillis());
        out.put("timeClass", event.getTime().getClass().getName());
        return out;
    }

    public APIGatewayV2HTTPResponse http(APIGatewayV2HTTPEvent event) {
        String read = event.getRequestContext().getHttp().getMethod() + " " + event.getRawPath()
                + "?" + event.getRawQueryString() + " q=" + event.getQueryStringParameters().get("q")
                + " ua=" + event.getHeaders().get("user-agent") + " cookies=" + event.getCookies()
                + " route=" + event.getRouteKey() + " ip=" + event.getRequestContext().getHttp().getSourceIp()
                + " body=" + event.getBody() + " base64=" + event.getIsBase64Encoded();
        return APIGatewayV2HTTPResponse.builder()
                .withStatusCode(201)
                .withHeaders(Map.of("content-type", "text/plain"))
                .withBody(read)
                .build();
    }

    public Map<String, Object> s3(S3Event event) {
        S3EventNotificationRecord r = event.getRecords().get(0);
        DateTime time = r.getEventTime();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("eventName", r.getEventName());
        out.put("region", r.getAwsRegion());
        out.put("bucket", r.getS3().getBucket().getName());
        out.put("key", r.getS3().getObject().getKey());
        out.put("decodedKey", r.getS3().getObject().getUrlDecodedKey());
        out.put("size", r.getS3().getObject().getSizeAsLong());
        out.put("eventTimeMillis", time.getMillis());
        out.put("eventTimeUtc", time.toDateTime(org.joda.time.DateTimeZone.UTC).toString());
        out.put("principal", r.getUserIdentity().getPrincipalId());
        return out;
    }
}
"#;

/// The events library and the joda-time its pom declares, from Maven Central.
fn events_libs() -> Vec<(String, Vec<u8>)> {
    vec![
        maven_jar(
            "com/amazonaws/aws-lambda-java-events/3.16.1/aws-lambda-java-events-3.16.1.jar",
            "e090b3832e8b4decbde272b8b0e6dd248115fe20d05f17e00f32a00805892f05",
        ),
        maven_jar(
            "joda-time/joda-time/2.10.8/joda-time-2.10.8.jar",
            "da04572b431597f0a42e6a7f44973f2bdc975776c25ad3cdb2ba92d17c554a66",
        ),
    ]
}

const SQS_EVENT: &str = r#"{"Records":[
  {"messageId":"059f36b4-87a3-44ab-83d2-661975830a7d","receiptHandle":"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
   "body":"Test message.","attributes":{"ApproximateReceiveCount":"1","SentTimestamp":"1545082649183",
   "SenderId":"AIDAIENQZJOLO23YVJ4VO","ApproximateFirstReceiveTimestamp":"1545082649185"},
   "messageAttributes":{"Author":{"stringValue":"Ada","stringListValues":[],"binaryListValues":[],"dataType":"String"}},
   "md5OfBody":"e4e68fb7bd0e697a0ae8f1bb342846b3","eventSource":"aws:sqs",
   "eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:my-queue","awsRegion":"us-east-2"},
  {"messageId":"2e1424d4-f796-459a-8184-9c92662be6da","receiptHandle":"AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq",
   "body":"Second message.","attributes":{"ApproximateReceiveCount":"1","SentTimestamp":"1545082650636",
   "SenderId":"AIDAIENQZJOLO23YVJ4VO","ApproximateFirstReceiveTimestamp":"1545082650649"},
   "messageAttributes":{},"md5OfBody":"e4e68fb7bd0e697a0ae8f1bb342846b3","eventSource":"aws:sqs",
   "eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:my-queue","awsRegion":"us-east-2"}]}"#;

const SCHEDULED_EVENT: &str = r#"{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
  "detail-type":"Scheduled Event","source":"aws.events","account":"123456789012",
  "time":"2015-10-08T16:53:06Z","region":"us-east-1",
  "resources":["arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"],"detail":{}}"#;

const HTTP_EVENT: &str = r#"{"version":"2.0","routeKey":"$default","rawPath":"/my/path",
  "rawQueryString":"q=1&x=y","cookies":["a=1","b=2"],
  "headers":{"user-agent":"curl/8.0","content-type":"text/plain"},
  "queryStringParameters":{"q":"1","x":"y"},
  "requestContext":{"accountId":"123456789012","apiId":"abc123","domainName":"abc123.lambda-url.us-east-1.on.aws",
    "domainPrefix":"abc123","http":{"method":"POST","path":"/my/path","protocol":"HTTP/1.1",
    "sourceIp":"192.0.2.1","userAgent":"curl/8.0"},"requestId":"id","routeKey":"$default","stage":"$default",
    "time":"12/Mar/2020:19:03:58 +0000","timeEpoch":1583348638390},
  "body":"hello","isBase64Encoded":false}"#;

const S3_EVENT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
  "eventTime":"2024-05-06T07:08:09.123Z","eventName":"ObjectCreated:Put",
  "userIdentity":{"principalId":"EXAMPLE"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},
  "responseElements":{"x-amz-request-id":"EXAMPLE123456789","x-amz-id-2":"EXAMPLE123/5678abcdefghijklambdaisawesome"},
  "s3":{"s3SchemaVersion":"1.0","configurationId":"testConfigRule",
    "bucket":{"name":"my-bucket","ownerIdentity":{"principalId":"EXAMPLE"},"arn":"arn:aws:s3:::my-bucket"},
    "object":{"key":"my+photos/cat%21.jpg","size":1024,"eTag":"0123456789abcdef0123456789abcdef",
      "sequencer":"0A1B2C3D4E5F678901"}}}]}"#;

/// Events from SQS, EventBridge schedules, API Gateway v2 and S3 reach a
/// function typed with aws-lambda-java-events' classes as on Lambda: AWS's
/// serializer maps each service's field names (`Records`, `eventSourceARN`,
/// `detail-type`) and reads the S3 and schedule times as joda-time DateTimes.
#[tokio::test]
async fn aws_lambda_java_events_deserialize_as_on_lambda() {
    images();
    let server = Server::start();
    let zip = function_zip_with_libs(&[("example/Events.java", EVENTS)], &[], &events_libs());
    for runtime in RUNTIMES {
        let deploy = |case: &'static str, handler: &'static str| {
            let (server, zip) = (&server, &zip);
            async move { deploy_zip(server, &name(runtime, case), runtime, handler, zip, json!({"Timeout": 20})).await }
        };
        deploy("sqs", "example.Events::sqs").await;
        let (status, headers, out) = server.invoke(&name(runtime, "sqs"), SQS_EVENT).await;
        assert_eq!(status, 200, "{out}");
        assert!(headers.get("x-amz-function-error").is_none(), "{out}");
        assert_eq!(
            out,
            json!({
                "records": 2, "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d", "body": "Test message.",
                "eventSource": "aws:sqs", "eventSourceArn": "arn:aws:sqs:us-east-2:123456789012:my-queue",
                "receiveCount": "1", "author": "Ada", "authorType": "String", "secondBody": "Second message."
            })
        );

        deploy("scheduled", "example.Events::scheduled").await;
        let (_, _, out) = server.invoke(&name(runtime, "scheduled"), SCHEDULED_EVENT).await;
        assert_eq!(
            out,
            json!({
                "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detailType": "Scheduled Event",
                "source": "aws.events", "account": "123456789012", "region": "us-east-1",
                "resource": "arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule",
                "timeMillis": 1_444_323_186_000_i64, "timeClass": "org.joda.time.DateTime"
            })
        );

        deploy("http", "example.Events::http").await;
        let (_, _, out) = server.invoke(&name(runtime, "http"), HTTP_EVENT).await;
        assert_eq!(out["statusCode"], 201, "{out}");
        assert_eq!(out["headers"], json!({"content-type": "text/plain"}), "{out}");
        assert_eq!(
            out["body"],
            "POST /my/path?q=1&x=y q=1 ua=curl/8.0 cookies=[a=1, b=2] route=$default ip=192.0.2.1 \
             body=hello base64=false",
            "{out}"
        );

        deploy("s3", "example.Events::s3").await;
        let (_, _, out) = server.invoke(&name(runtime, "s3"), S3_EVENT).await;
        assert_eq!(
            out,
            json!({
                "eventName": "ObjectCreated:Put", "region": "us-east-1", "bucket": "my-bucket",
                "key": "my+photos/cat%21.jpg", "decodedKey": "my photos/cat!.jpg", "size": 1024,
                "eventTimeMillis": 1_714_979_289_123_i64, "eventTimeUtc": "2024-05-06T07:08:09.123Z",
                "principal": "EXAMPLE"
            })
        );
    }
}
