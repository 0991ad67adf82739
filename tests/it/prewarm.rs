//! Prewarmed generic containers: started for the runtimes in use before any
//! function needs them, specialized on a cold start, one function for life.

use crate::common;

use std::time::Duration;

use common::{eventually, Server};
use serde_json::json;

async fn prewarmed(server: &Server) -> Vec<serde_json::Value> {
    server.ps().await.into_iter().filter(|c| c["state"] == "prewarmed").collect()
}

/// Wait (at most `within`) until exactly one container is prewarmed; its id.
async fn the_prewarmed(server: &Server, within: Duration) -> serde_json::Value {
    assert!(eventually(within, || async { prewarmed(server).await.len() == 1 }).await);
    prewarmed(server).await[0]["docker_id"].clone()
}

/// The id of the container serving function `name`.
async fn serving(server: &Server, name: &str) -> serde_json::Value {
    let ps = server.ps().await;
    ps.into_iter().find(|c| c["function"] == name).expect("a container serves it")["docker_id"].clone()
}

#[tokio::test]
async fn cold_starts_take_a_prewarmed_container_and_the_pool_refills() {
    let server = Server::start_with(&["--prewarm", "2"]);
    assert!(prewarmed(&server).await.is_empty(), "nothing is prewarmed before a runtime is in use");
    server.deploy("first", "app.context_fields", json!({"MemorySize": 256})).await;
    assert!(eventually(Duration::from_secs(20), || async { prewarmed(&server).await.len() == 2 }).await);
    let generic: Vec<String> =
        prewarmed(&server).await.iter().map(|c| c["docker_id"].as_str().unwrap().to_owned()).collect();

    let (status, headers, ctx) = server.invoke("first", "{}").await;
    assert_eq!(status, 200, "{ctx}");
    assert_eq!(ctx["function_name"], "first");
    assert_eq!(ctx["memory_limit_in_mb"], 256);
    assert_eq!(ctx["aws_request_id"], headers["x-amzn-requestid"].to_str().unwrap());
    let ps = server.ps().await;
    let serving = ps.iter().find(|c| c["function"] == "first").expect("a container serves it");
    assert!(generic.contains(&serving["docker_id"].as_str().unwrap().to_owned()), "a prewarmed one: {ps:?}");
    assert!(eventually(Duration::from_secs(20), || async { prewarmed(&server).await.len() == 2 }).await, "refilled");

    // Specialized containers see the function's own environment and code,
    // and its memory limit is the function's.
    server.deploy("env", "app.environment", json!({"Environment": {"Variables": {"OWN": "yes"}}})).await;
    let (_, _, env) = server.invoke("env", r#"{"keys":["OWN","AWS_LAMBDA_FUNCTION_NAME","_HANDLER"]}"#).await;
    assert_eq!(env, json!({"OWN": "yes", "AWS_LAMBDA_FUNCTION_NAME": "env", "_HANDLER": "app.environment"}));
    let (_, _, tail) = server.invoke_tail("env", r#"{"keys":[]}"#).await;
    assert!(tail.contains("Memory Size: 128 MB"), "{tail}");

    // A function that cannot use one (its /tmp size differs) still starts.
    server.deploy("big-tmp", "app.echo", json!({"EphemeralStorage": {"Size": 1024}})).await;
    assert_eq!(server.invoke("big-tmp", r#"{"x":1}"#).await.2, json!({"x": 1}));
}

#[tokio::test]
async fn prewarmed_containers_follow_the_runtimes_in_use() {
    common::ensure_runtime_image("nodejs20.x");
    let server = Server::start_with(&["--prewarm", "1"]);
    server.deploy("py", "app.echo", json!({})).await;
    let images = || async {
        let mut v: Vec<String> =
            prewarmed(&server).await.iter().map(|c| c["revision"].as_str().unwrap().to_owned()).collect();
        v.sort();
        v
    };
    assert!(eventually(Duration::from_secs(20), || async { images().await == ["lambdabox/python3.11:latest"] }).await);
    server
        .deploy_files(
            "node",
            "index.handler",
            &[("index.js", "exports.handler = async (e) => e;")],
            json!({"Runtime": "nodejs20.x"}),
        )
        .await;
    let both = ["lambdabox/nodejs20.x:latest", "lambdabox/python3.11:latest"];
    assert!(eventually(Duration::from_secs(20), || async { images().await == both }).await, "{:?}", images().await);
    assert_eq!(server.invoke("node", r#"{"n":1}"#).await.2, json!({"n": 1}));
    let resp = server.delete("/2015-03-31/functions/py").send().await;
    assert_eq!(resp.status(), 204);
    let node_only = ["lambdabox/nodejs20.x:latest"];
    assert!(
        eventually(Duration::from_secs(20), || async { images().await == node_only }).await,
        "{:?}",
        images().await
    );
}

#[tokio::test]
async fn shutdown_leaves_no_prewarmed_container_behind() {
    let mut server = Server::start_with(&["--prewarm", "3"]);
    let home = server.home();
    server.deploy("f", "app.echo", json!({})).await;
    assert!(eventually(Duration::from_secs(20), || async { !prewarmed(&server).await.is_empty() }).await);
    // Stop while some may still be starting.
    server.stop();
    assert!(common::containers(&home, None).await.is_empty(), "a stopped controller removes its prewarmed containers");
}

/// What a handler sees of its process, in Python: its environment (and a
/// child's), sys.path, argv, cwd, ids, and the names in the environment
/// block the process started with (`/proc/self/environ`).
const INTROSPECT_PY: &str = r#"
import os, subprocess, sys
print("init-phase", os.environ.get("MARK"))

def handler(event, context):
    print("invoke-phase", os.environ.get("MARK"))
    with open("/proc/self/environ", "rb") as f:
        started_with = [e.split(b"=", 1)[0].decode() for e in f.read().split(b"\0") if e]
    child = subprocess.run(["/usr/bin/env", "-0"], capture_output=True).stdout
    return {
        "env": dict(os.environ),
        "child_env": dict(e.decode().split("=", 1) for e in child.split(b"\0") if e),
        "path": sys.path,
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "ids": [os.getuid(), os.getgid(), os.geteuid()],
        "started_with": started_with,
    }
"#;

/// The same in Node.js, with V8's heap limit, module search paths and the
/// stack trace limit (which NODE_OPTIONS can set).
const INTROSPECT_JS: &str = r#"
const fs = require("fs");
const { execFileSync } = require("child_process");
console.log("init-phase", process.env.MARK);

exports.handler = async () => {
    console.log("invoke-phase", process.env.MARK);
    const startedWith = fs.readFileSync("/proc/self/environ", "latin1").split("\0").filter(Boolean).map((e) => e.split("=")[0]);
    const child = execFileSync("/usr/bin/env", ["-0"]).toString().split("\0").filter(Boolean);
    return {
        env: { ...process.env },
        child_env: Object.fromEntries(child.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])),
        argv: process.argv,
        execArgv: process.execArgv,
        cwd: process.cwd(),
        ids: [process.getuid(), process.getgid(), process.geteuid()],
        heap: require("v8").getHeapStatistics().heap_size_limit,
        paths: require("module").globalPaths,
        stackTraceLimit: Error.stackTraceLimit,
        started_with: startedWith,
    };
};
"#;

/// The same in Ruby, with its load path, gem path and program name.
const INTROSPECT_RB: &str = r#"
puts "init-phase #{ENV['MARK']}"

def handler(event:, context:)
  puts "invoke-phase #{ENV['MARK']}"
  started_with = File.binread('/proc/self/environ').split("\0").reject(&:empty?).map { |e| e.split('=', 2).first }
  child = IO.popen(['/usr/bin/env', '-0'], &:read).split("\0").reject(&:empty?).to_h { |e| e.split('=', 2) }
  {
    env: ENV.to_h,
    child_env: child,
    path: $LOAD_PATH,
    gem_path: Gem.path,
    argv: ARGV,
    program: $PROGRAM_NAME,
    cwd: Dir.pwd,
    ids: [Process.uid, Process.gid, Process.euid],
    encoding: Encoding.default_external.to_s,
    started_with: started_with,
  }
end
"#;

/// One runtime's introspection function.
struct Probe {
    runtime: &'static str,
    file: (&'static str, &'static str),
    handler: &'static str,
}

const PYTHON: Probe = Probe { runtime: "python3.11", file: ("probe.py", INTROSPECT_PY), handler: "probe.handler" };
const NODE: Probe = Probe { runtime: "nodejs20.x", file: ("probe.js", INTROSPECT_JS), handler: "probe.handler" };
const RUBY: Probe = Probe { runtime: "ruby3.3", file: ("probe.rb", INTROSPECT_RB), handler: "probe.handler" };

/// Deploy `probe` as `name` with `vars`, at 512 MB (a Node.js runtime is
/// started ahead per MemorySize: this one is not the generic default).
async fn deploy_probe(server: &Server, probe: &Probe, name: &str, handler: &str, vars: serde_json::Value) {
    let config = json!({"Runtime": probe.runtime, "MemorySize": 512, "Environment": {"Variables": vars}});
    server.deploy_files(name, handler, &[probe.file], config).await;
}

/// Invoke `name` once (its cold start); returns the probe's answer and the log tail.
async fn probe_once(server: &Server, name: &str) -> (serde_json::Value, String) {
    let (_, body, tail) = server.invoke_tail(name, "{}").await;
    (body, tail)
}

/// What differs between any two containers of one function: the log
/// stream's name is made per container.
fn comparable(mut answer: serde_json::Value) -> serde_json::Value {
    for key in ["env", "child_env"] {
        if let Some(env) = answer[key].as_object_mut() {
            env.remove("AWS_LAMBDA_LOG_STREAM_NAME");
            env.remove("_X_AMZN_TRACE_ID");
        }
    }
    answer.as_object_mut().unwrap().remove("started_with");
    answer
}

/// A function started in a runtime that was running before it was known
/// sees exactly what it sees in a container started for it, and that
/// runtime started with no variable of the function.
async fn same_as_without_prewarm(probe: &Probe) {
    common::ensure_runtime_image(probe.runtime);
    let (plain, warm) = (Server::start(), Server::start_with(&["--prewarm", "1"]));
    let vars = json!({"MARK": "marked", "TOKEN": "s3cret"});
    deploy_probe(&plain, probe, "probe", probe.handler, vars.clone()).await;
    deploy_probe(&warm, probe, "probe", probe.handler, vars).await;
    let generic = the_prewarmed(&warm, Duration::from_secs(30)).await;

    let (fresh, fresh_tail) = probe_once(&plain, "probe").await;
    let (handed, handed_tail) = probe_once(&warm, "probe").await;
    assert_eq!(serving(&warm, "probe").await, generic, "the prewarmed container served it");

    assert_eq!(
        comparable(handed.clone()),
        comparable(fresh.clone()),
        "{}: the same view of the process",
        probe.runtime
    );
    assert_eq!(handed["env"], handed["child_env"], "children inherit the environment the handler sees");
    assert_eq!(handed["env"]["TOKEN"], "s3cret");
    assert_ne!(handed["ids"][0], 0, "the sandbox user, not root");
    let started_with: Vec<&str> =
        handed["started_with"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for name in ["MARK", "TOKEN", "_HANDLER", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] {
        assert!(
            !started_with.contains(&name),
            "{}: the runtime started before {name} existed: {started_with:?}",
            probe.runtime
        );
    }
    assert!(fresh["started_with"].as_array().unwrap().iter().any(|v| v == "MARK"), "a fresh bootstrap starts with it");

    for tail in [&fresh_tail, &handed_tail] {
        assert!(tail.contains("invoke-phase marked"), "{}: {tail}", probe.runtime);
    }
    let log = warm.logs("probe").await;
    assert!(log.contains("init-phase marked") && log.contains("invoke-phase marked"), "{}: {log}", probe.runtime);
    assert_eq!(log.contains("init-phase marked"), plain.logs("probe").await.contains("init-phase marked"));
}

#[tokio::test]
async fn a_python_function_sees_the_same_process_in_a_prestarted_runtime() {
    same_as_without_prewarm(&PYTHON).await;
}

#[tokio::test]
async fn a_node_function_sees_the_same_process_in_a_prestarted_runtime() {
    same_as_without_prewarm(&NODE).await;
}

#[tokio::test]
async fn a_ruby_function_sees_the_same_process_in_a_prestarted_runtime() {
    same_as_without_prewarm(&RUBY).await;
}

/// The same in Java: System.getenv, the environment of children started
/// through ProcessBuilder (which copies the JDK's map) and Runtime.exec
/// (which passes none: the child inherits the C library's), the working
/// folder, the JVM's flags and command, and its heap limit.
const INTROSPECT_JAVA: &str = r#"
package probe;

import com.amazonaws.services.lambda.runtime.Context;
import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.*;

public class Probe {
    static { System.out.println("init-phase " + System.getenv("MARK")); }

    static Map<String, String> parse(byte[] block) {
        Map<String, String> env = new TreeMap<>();
        for (String e : new String(block, StandardCharsets.UTF_8).split("\0")) {
            int eq = e.indexOf('=');
            if (eq > 0) env.put(e.substring(0, eq), e.substring(eq + 1));
        }
        return env;
    }

    static byte[] drain(Process p) throws IOException, InterruptedException {
        try (InputStream in = p.getInputStream()) {
            byte[] out = in.readAllBytes();
            p.waitFor();
            return out;
        }
    }

    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) throws Exception {
        System.out.println("invoke-phase " + System.getenv("MARK"));
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("env", new TreeMap<>(System.getenv()));
        out.put("child_env", parse(drain(new ProcessBuilder("/usr/bin/env", "-0").start())));
        out.put("exec_env", parse(drain(Runtime.getRuntime().exec(new String[] {"/usr/bin/env", "-0"}))));
        out.put("cwd", Paths.get("").toAbsolutePath().toString());
        out.put("user_dir", System.getProperty("user.dir"));
        out.put("command", System.getProperty("sun.java.command"));
        out.put("class_path", System.getProperty("java.class.path"));
        out.put("flags", ManagementFactory.getRuntimeMXBean().getInputArguments());
        out.put("heap_mb", Runtime.getRuntime().maxMemory() >> 20);
        out.put("started_with", new ArrayList<>(parse(Files.readAllBytes(Paths.get("/proc/self/environ"))).keySet()));
        return out;
    }

    public String fail(Map<String, Object> event) {
        throw new IllegalStateException("boom");
    }
}
"#;

/// Deploy the Java probe's `method` as `name` on `runtime`, at 512 MB, with `vars`.
async fn deploy_java_probe(server: &Server, runtime: &str, name: &str, method: &str, vars: serde_json::Value) {
    let zip = common::java::function_zip(&[("probe/Probe.java", INTROSPECT_JAVA)], &[]);
    let config = json!({"MemorySize": 512, "Environment": {"Variables": vars}});
    let handler = format!("probe.Probe::{method}");
    common::java::deploy_zip(server, name, runtime, &handler, &zip, config).await;
}

/// A Java function handed to a JVM started before it was known sees what it
/// sees in a container started for it (the environment, also in children
/// started either way, the working folder, the JVM's flags, command and
/// heap), and that JVM started with no variable of the function.
#[tokio::test]
async fn a_java_function_sees_the_same_process_in_a_prestarted_runtime() {
    for runtime in ["java17", "java21"] {
        common::ensure_runtime_image(runtime);
        let (plain, warm) = (Server::start(), Server::start_with(&["--prewarm", "1"]));
        let vars = json!({"MARK": "marked", "TOKEN": "s3cret"});
        deploy_java_probe(&plain, runtime, "probe", "handleRequest", vars.clone()).await;
        deploy_java_probe(&warm, runtime, "probe", "handleRequest", vars.clone()).await;
        let generic = the_prewarmed(&warm, Duration::from_secs(60)).await;

        let (fresh, _) = probe_once(&plain, "probe").await;
        let (handed, handed_tail) = probe_once(&warm, "probe").await;
        assert_eq!(serving(&warm, "probe").await, generic, "{runtime}: the prewarmed container served it");

        let (mut handed_cmp, mut fresh_cmp) = (comparable(handed.clone()), comparable(fresh.clone()));
        for answer in [&mut handed_cmp, &mut fresh_cmp] {
            answer["exec_env"].as_object_mut().unwrap().remove("AWS_LAMBDA_LOG_STREAM_NAME");
        }
        assert_eq!(handed_cmp, fresh_cmp, "{runtime}: the same view of the process");
        assert_eq!(handed["env"], handed["child_env"], "{runtime}: ProcessBuilder's children inherit it");
        assert_eq!(handed["env"], handed["exec_env"], "{runtime}: so do Runtime.exec's");
        assert_eq!(handed["env"]["TOKEN"], "s3cret");
        assert_eq!(handed["env"]["PWD"], "/var/task", "{runtime}: as the bootstrap's shell leaves it");
        let started_with: Vec<&str> =
            handed["started_with"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        for name in ["MARK", "TOKEN", "_HANDLER", "AWS_LAMBDA_FUNCTION_NAME"] {
            assert!(
                !started_with.contains(&name),
                "{runtime}: the JVM started before {name} existed: {started_with:?}"
            );
        }
        assert!(fresh["started_with"].as_array().unwrap().iter().any(|v| v == "MARK"), "a fresh bootstrap has it");
        assert!(handed_tail.contains("invoke-phase marked"), "{runtime}: {handed_tail}");
        assert!(warm.logs("probe").await.contains("init-phase marked"), "{runtime}: the init phase saw it");

        // A handler's error carries the same frames: the client cuts the
        // trace at its own, above the launcher's.
        deploy_java_probe(&plain, runtime, "fail", "fail", vars.clone()).await;
        deploy_java_probe(&warm, runtime, "fail", "fail", vars).await;
        assert!(eventually(Duration::from_secs(60), || async { prewarmed(&warm).await.len() == 1 }).await);
        let (fresh_error, handed_error) = (plain.invoke("fail", "{}").await.2, warm.invoke("fail", "{}").await.2);
        assert_eq!(handed_error, fresh_error, "{runtime}");
        assert!(!handed_error.to_string().contains("lambdabox"), "{runtime}: {handed_error}");
    }
}

/// A Java function setting JAVA_TOOL_OPTIONS (read as the JVM starts) gets
/// a fresh bootstrap in the prewarmed container, and its flags take effect.
#[tokio::test]
async fn java_tool_options_get_a_fresh_jvm() {
    common::ensure_runtime_image("java21");
    let server = Server::start_with(&["--prewarm", "1"]);
    let vars = json!({"JAVA_TOOL_OPTIONS": "-Xmx64m"});
    deploy_java_probe(&server, "java21", "tool-options", "handleRequest", vars).await;
    let generic = the_prewarmed(&server, Duration::from_secs(60)).await;
    let (answer, _) = probe_once(&server, "tool-options").await;
    let heap = answer["heap_mb"].as_i64().unwrap();
    assert!((50..=64).contains(&heap), "the function's -Xmx64m wins: {heap} MB: {answer}");
    assert!(answer["started_with"].as_array().unwrap().iter().any(|v| v == "JAVA_TOOL_OPTIONS"), "a new JVM: {answer}");
    let ps = server.ps().await;
    let serving = ps.iter().find(|c| c["function"] == "tool-options").expect("a container serves it");
    assert_eq!(serving["docker_id"], generic, "it still took the prewarmed container: {ps:?}");
}

/// A gem bundled into `vendor/bundle` (as `bundle install --deployment`
/// puts it) for Ruby 3.3: its specification and its code.
fn vendored_gem(name: &str, version: &str, code: &str) -> Vec<(String, String)> {
    let root = "vendor/bundle/ruby/3.3.0";
    let spec = format!(
        "Gem::Specification.new do |s|\n  s.name = '{name}'\n  s.version = '{version}'\n  s.summary = 'x'\n  \
         s.authors = ['x']\n  s.files = ['lib/{name}.rb']\n  s.require_paths = ['lib']\nend\n"
    );
    vec![
        (format!("{root}/specifications/{name}-{version}.gemspec"), spec),
        (format!("{root}/gems/{name}-{version}/lib/{name}.rb"), code.to_owned()),
    ]
}

/// A prestarted Ruby finds the function's vendored gems (RubyGems reads
/// GEM_PATH again after the hand-over); a function vendoring a newer copy
/// of a gem the runtime loaded ahead (json) gets a fresh bootstrap in the
/// prewarmed container, which loads its copy, as a container started for
/// it would.
#[tokio::test]
async fn a_prestarted_ruby_finds_vendored_gems() {
    common::ensure_runtime_image(RUBY.runtime);
    let server = Server::start_with(&["--prewarm", "1"]);
    let handler = "require 'greet'\nrequire 'json'\n\ndef handler(event:, context:)\n  \
                   started = File.binread('/proc/self/environ').include?(\"MARK=\")\n  \
                   { greeting: Greet.hi, json: defined?(JSON::VENDORED) ? JSON::VENDORED : JSON::VERSION, \
                   started_with_function: started }\nend\n";
    let mut files = vendored_gem("greet", "1.0", "module Greet\n  def self.hi = 'hi from a vendored gem'\nend\n");
    files.push(("app.rb".into(), handler.into()));
    let mut with_json = files.clone();
    // Ruby's own json, marked: the runtime client needs a working one.
    let json = "require File.join(RbConfig::CONFIG['rubylibdir'], 'json')\nmodule JSON\n  VENDORED = '99.0'\nend\n";
    with_json.extend(vendored_gem("json", "99.0", json));
    let config = json!({"Runtime": RUBY.runtime, "MemorySize": 512, "Environment": {"Variables": {"MARK": "1"}}});
    for (name, files) in [("gems", &files), ("own-json", &with_json)] {
        let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        server.deploy_files(name, "app.handler", &refs, config.clone()).await;
    }
    for name in ["gems", "own-json"] {
        let generic = the_prewarmed(&server, Duration::from_secs(30)).await;
        let (status, _, answer) = server.invoke(name, "{}").await;
        assert_eq!(status, 200, "{name}: {answer}");
        assert_eq!(answer["greeting"], "hi from a vendored gem", "{name}: {answer}");
        assert_eq!(serving(&server, name).await, generic, "{name}: the prewarmed container served it");
        if name == "gems" {
            assert_eq!(answer["started_with_function"], false, "handed to the runtime started ahead: {answer}");
            assert_ne!(answer["json"], "99.0");
        } else {
            assert_eq!(answer["json"], "99.0", "its own json, as in a container started for it: {answer}");
            assert_eq!(answer["started_with_function"], true, "a fresh bootstrap: {answer}");
        }
    }
}

/// A function setting a variable the runtime reads as it starts gets a
/// fresh bootstrap, which honours it, in the prewarmed container.
#[tokio::test]
async fn variables_read_at_start_get_a_fresh_bootstrap() {
    common::ensure_runtime_image(PYTHON.runtime);
    common::ensure_runtime_image(NODE.runtime);
    let server = Server::start_with(&["--prewarm", "1"]);
    deploy_probe(&server, &PYTHON, "py", PYTHON.handler, json!({"PYTHONPATH": "/var/task/vendor"})).await;
    deploy_probe(&server, &NODE, "node", NODE.handler, json!({"NODE_OPTIONS": "--stack-trace-limit=7"})).await;
    assert!(eventually(Duration::from_secs(30), || async { prewarmed(&server).await.len() == 2 }).await);
    let generics: Vec<serde_json::Value> = prewarmed(&server).await.iter().map(|c| c["docker_id"].clone()).collect();

    let (py, _) = probe_once(&server, "py").await;
    assert!(py["path"].as_array().unwrap().iter().any(|p| p == "/var/task/vendor"), "{py}");
    assert!(py["started_with"].as_array().unwrap().iter().any(|v| v == "PYTHONPATH"), "a new interpreter: {py}");
    let (node, _) = probe_once(&server, "node").await;
    assert_eq!(node["stackTraceLimit"], 7, "{node}");
    assert!(node["started_with"].as_array().unwrap().iter().any(|v| v == "NODE_OPTIONS"), "a new node: {node}");
    let ps = server.ps().await;
    for name in ["py", "node"] {
        let serving = ps.iter().find(|c| c["function"] == name).expect("a container serves it");
        assert!(generics.contains(&serving["docker_id"]), "{name} still took a prewarmed container: {ps:?}");
    }
}

/// A handler that cannot be imported fails as it does in a fresh bootstrap.
#[tokio::test]
async fn a_missing_handler_module_fails_the_same_way() {
    for probe in [PYTHON, NODE] {
        common::ensure_runtime_image(probe.runtime);
        let (plain, warm) = (Server::start(), Server::start_with(&["--prewarm", "1"]));
        deploy_probe(&plain, &probe, "missing", "nowhere.handler", json!({})).await;
        deploy_probe(&warm, &probe, "missing", "nowhere.handler", json!({})).await;
        assert!(eventually(Duration::from_secs(30), || async { prewarmed(&warm).await.len() == 1 }).await);
        let (_, headers, fresh) = plain.invoke("missing", "{}").await;
        let (_, warm_headers, handed) = warm.invoke("missing", "{}").await;
        assert_eq!(fresh["errorType"], "Runtime.ImportModuleError", "{}: {fresh}", probe.runtime);
        assert_eq!(handed["errorType"], fresh["errorType"], "{}: {handed}", probe.runtime);
        assert_eq!(handed["errorMessage"], fresh["errorMessage"], "{}", probe.runtime);
        assert_eq!(headers.get("x-amz-function-error"), warm_headers.get("x-amz-function-error"));
    }
}

/// The pool grows after a burst of cold starts, to one generic container
/// per cold start (within `--prewarm-max`); a burst of another function of
/// the same runtime and size then takes them; once the bursts are an idle
/// TTL old the pool is back at its floor (`--prewarm 0`: none).
#[tokio::test]
async fn a_burst_grows_the_prewarmed_pool_and_idleness_shrinks_it() {
    let server = Server::start_with(&["--prewarm", "0", "--prewarm-max", "3", "--idle-ttl", "20"]);
    for name in ["first", "second"] {
        server.deploy(name, "app.echo", json!({"MemorySize": 256})).await;
    }
    let burst = |name: &'static str| {
        let server = &server;
        async move {
            let calls = (0..4).map(|_| server.invoke(name, r#"{"n":1}"#));
            for (status, _, body) in futures_util::future::join_all(calls).await {
                assert_eq!(status, 200, "{name}: {body}");
            }
        }
    };
    burst("first").await;
    assert!(
        eventually(Duration::from_secs(90), || async { prewarmed(&server).await.len() == 3 }).await,
        "grown to the cap: {:?}",
        server.ps().await
    );
    let generics: Vec<serde_json::Value> = prewarmed(&server).await.iter().map(|c| c["docker_id"].clone()).collect();
    burst("second").await;
    let ps = server.ps().await;
    let second: Vec<&serde_json::Value> = ps.iter().filter(|c| c["function"] == "second").collect();
    let taken = second.iter().filter(|c| generics.contains(&c["docker_id"])).count();
    assert_eq!(taken, 3, "the second burst took every prewarmed container: {ps:?}");
    assert!(
        eventually(Duration::from_secs(120), || async { prewarmed(&server).await.is_empty() }).await,
        "back to the floor once idle: {:?}",
        server.ps().await
    );
}
