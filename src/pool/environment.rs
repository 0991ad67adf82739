//! The environment a function's bootstrap starts with, as on Lambda.
//! `AWS_LAMBDA_RUNTIME_API` is added by lambdabox-init, which owns the address.

use crate::arn::Realm;

/// The X-Ray daemon's address on Lambda (nothing listens there here; the
/// SDKs send trace segments over UDP and carry on).
const XRAY_DAEMON: &str = "169.254.79.129";
use crate::function::{Function, Runtime};

/// `KEY=VALUE` pairs for a container of `f`. User variables come last but
/// can never replace a reserved one (validation refuses them on the way in).
/// Container image functions (`runtime` is `None`) keep their image's
/// `PATH` and `LD_LIBRARY_PATH`, and `_HANDLER` is the first word of CMD.
pub fn lambda_environment(
    f: &Function,
    runtime: Option<&Runtime>,
    realm: &Realm,
    initialization_type: &str,
) -> Vec<String> {
    let version = f.version_label();
    let stream = format!("{}/[{version}]{}", chrono::Utc::now().format("%Y/%m/%d"), uuid::Uuid::new_v4().simple());
    let handler = f.image.as_ref().map_or_else(|| f.handler.clone(), |image| image.handler());
    let mut env = vec![
        format!("_HANDLER={handler}"),
        format!("AWS_REGION={}", realm.region),
        format!("AWS_DEFAULT_REGION={}", realm.region),
        format!("AWS_LAMBDA_FUNCTION_NAME={}", f.name),
        format!("AWS_LAMBDA_FUNCTION_MEMORY_SIZE={}", f.memory_mb),
        format!("AWS_LAMBDA_FUNCTION_VERSION={version}"),
        format!("AWS_LAMBDA_INITIALIZATION_TYPE={initialization_type}"),
        format!("AWS_LAMBDA_LOG_GROUP_NAME={}", f.logging.log_group(&f.name)),
        format!("AWS_LAMBDA_LOG_STREAM_NAME={stream}"),
    ];
    env.extend(fixed_environment());
    if let Some(runtime) = runtime {
        env.extend(runtime_environment(runtime));
    }
    env.extend(f.logging.environment());
    env.extend(f.environment.iter().map(|(k, v)| format!("{k}={v}")));
    env
}

/// What a container of `runtime` is given before it knows its function
/// (a pre-started runtime starts with it): Lambda's variables that are the
/// same for every function of the runtime, and nothing else.
pub fn neutral_environment(runtime: &Runtime) -> Vec<String> {
    fixed_environment().into_iter().chain(runtime_environment(runtime)).collect()
}

/// Lambda's variables of every function, whatever its runtime.
fn fixed_environment() -> Vec<String> {
    vec![
        "LAMBDA_TASK_ROOT=/var/task".to_owned(),
        "LAMBDA_RUNTIME_DIR=/var/runtime".to_owned(),
        "TZ=:UTC".to_owned(),
        "LANG=en_US.UTF-8".to_owned(),
        // X-Ray's, set on Lambda whether tracing is on or not; SDKs read
        // them (LOG_ERROR: no trace context is logged, not thrown).
        "AWS_XRAY_CONTEXT_MISSING=LOG_ERROR".to_owned(),
        format!("AWS_XRAY_DAEMON_ADDRESS={XRAY_DAEMON}:2000"),
        format!("_AWS_XRAY_DAEMON_ADDRESS={XRAY_DAEMON}"),
        "_AWS_XRAY_DAEMON_PORT=2000".to_owned(),
    ]
}

/// Lambda's variables of every function on a managed or provided `runtime`.
fn runtime_environment(runtime: &Runtime) -> Vec<String> {
    let mut env = vec![
        "PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin".to_owned(),
        "LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
            .to_owned(),
    ];
    if let Some(exec_env) = runtime.execution_env() {
        env.push(format!("AWS_EXECUTION_ENV={exec_env}"));
    }
    env.extend(runtime.env.iter().map(|(k, v)| format!("{k}={v}")));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_lambdas_variables_and_the_users() {
        let f = Function {
            name: "greeter".into(),
            runtime: "python3.11".into(),
            handler: "app.handler".into(),
            role: String::new(),
            description: String::new(),
            memory_mb: 256,
            timeout_s: 3,
            ephemeral_storage_mb: 512,
            environment: [("GREETING".to_string(), "hej".to_string())].into(),
            code_sha256: String::new(),
            code_size: 0,
            last_modified: String::new(),
            revision_id: String::new(),
            ..Default::default()
        };
        let runtime = Runtime::find("python3.11").unwrap();
        let env = lambda_environment(&f, Some(runtime), &Realm::default(), "on-demand");
        for expected in [
            "_HANDLER=app.handler",
            "AWS_LAMBDA_FUNCTION_NAME=greeter",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
            "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/greeter",
            "AWS_EXECUTION_ENV=AWS_Lambda_python3.11",
            "AWS_REGION=us-east-1",
            "TZ=:UTC",
            "GREETING=hej",
            "PYTHONPATH=/var/runtime",
            "SHLVL=0",
            "AWS_XRAY_CONTEXT_MISSING=LOG_ERROR",
        ] {
            assert!(env.iter().any(|e| e == expected), "missing {expected}");
        }
        let stream = env.iter().find(|e| e.starts_with("AWS_LAMBDA_LOG_STREAM_NAME=")).unwrap();
        assert!(stream.contains("/[$LATEST]"), "{stream}");
        let v7 = Function { version: Some(7), ..f };
        let env = lambda_environment(&v7, Some(runtime), &Realm::default(), "on-demand");
        assert!(env.iter().any(|e| e == "AWS_LAMBDA_FUNCTION_VERSION=7"));
        assert!(env.iter().any(|e| e.starts_with("AWS_LAMBDA_LOG_STREAM_NAME=") && e.contains("/[7]")));
    }

    #[test]
    fn the_neutral_environment_is_the_functions_without_anything_of_it() {
        let f = Function {
            name: "secretive".into(),
            handler: "app.handler".into(),
            environment: [("TOKEN".to_string(), "s3cret".to_string())].into(),
            ..Default::default()
        };
        let runtime = Runtime::find("python3.11").unwrap();
        let neutral = neutral_environment(runtime);
        let env = lambda_environment(&f, Some(runtime), &Realm::default(), "on-demand");
        for pair in &neutral {
            assert!(env.contains(pair), "{pair} is the function's too");
        }
        for name in ["_HANDLER", "AWS_LAMBDA_", "AWS_REGION", "TOKEN"] {
            assert!(!neutral.iter().any(|p| p.starts_with(name)), "{name} is not neutral: {neutral:?}");
        }
    }
}
