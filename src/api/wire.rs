//! The AWS Lambda REST-JSON shapes: request bodies in, FunctionConfiguration out.
//! Field names are Lambda's (PascalCase); unknown fields are ignored, as
//! newer clients send fields older servers do not know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::arn::Realm;
use crate::engine::{DestinationPatch, EventInvokePatch};
use crate::function::logging::LoggingPatch;
use crate::function::{ConfigPatch, Function, ImageConfig};
use crate::queue::ConfigEntry;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentBody {
    pub variables: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CodeBody {
    /// Base64 of the zip.
    pub zip_file: Option<String>,
    pub s3_bucket: Option<String>,
    pub image_uri: Option<String>,
}

/// `ImageConfig` in and out: overrides of an image's ENTRYPOINT, CMD, WORKDIR.
#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfigBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
}

impl From<ImageConfigBody> for ImageConfig {
    fn from(b: ImageConfigBody) -> ImageConfig {
        ImageConfig { entry_point: b.entry_point, command: b.command, working_directory: b.working_directory }
    }
}

impl From<&ImageConfig> for ImageConfigBody {
    fn from(c: &ImageConfig) -> ImageConfigBody {
        ImageConfigBody {
            entry_point: c.entry_point.clone(),
            command: c.command.clone(),
            working_directory: c.working_directory.clone(),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralStorageBody {
    pub size: u32,
}

/// The configuration members CreateFunction and
/// UpdateFunctionConfiguration share, spelled once.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigurationFields {
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub role: Option<String>,
    pub description: Option<String>,
    pub memory_size: Option<u32>,
    pub timeout: Option<u32>,
    pub environment: Option<EnvironmentBody>,
    pub ephemeral_storage: Option<EphemeralStorageBody>,
    /// lambdabox's own: seconds an idle container is kept (0: the default).
    pub idle_ttl_seconds: Option<u32>,
    pub layers: Option<Vec<String>>,
    pub image_config: Option<ImageConfigBody>,
    /// Checked and refused when it names a target ([`super::event_invoke`]).
    pub dead_letter_config: Option<DeadLetterConfigBody>,
    pub logging_config: Option<LoggingConfigBody>,
}

/// `LoggingConfig` of CreateFunction and UpdateFunctionConfiguration.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingConfigBody {
    pub log_format: Option<String>,
    pub application_log_level: Option<String>,
    pub system_log_level: Option<String>,
    pub log_group: Option<String>,
}

impl From<ConfigurationFields> for ConfigPatch {
    fn from(b: ConfigurationFields) -> ConfigPatch {
        ConfigPatch {
            runtime: b.runtime,
            handler: b.handler,
            role: b.role,
            description: b.description,
            memory_mb: b.memory_size,
            timeout_s: b.timeout,
            // `Environment: {}` clears the variables, as on Lambda.
            environment: b.environment.map(|e| e.variables.unwrap_or_default()),
            ephemeral_storage_mb: b.ephemeral_storage.map(|e| e.size),
            idle_ttl_s: b.idle_ttl_seconds,
            layers: b.layers,
            image_config: b.image_config.map(Into::into),
            logging: b.logging_config.map(|l| LoggingPatch {
                log_format: l.log_format,
                application_level: l.application_log_level,
                system_level: l.system_log_level,
                log_group: l.log_group,
            }),
        }
    }
}

/// CreateFunction's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateFunctionBody {
    pub function_name: String,
    #[serde(default)]
    pub code: CodeBody,
    pub package_type: Option<String>,
    pub architectures: Option<Vec<String>>,
    /// Publish version 1 at once.
    pub publish: Option<bool>,
    #[serde(flatten)]
    pub config: ConfigurationFields,
}

/// UpdateFunctionConfiguration's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateConfigurationBody {
    /// Update only if `$LATEST` is still this revision.
    pub revision_id: Option<String>,
    #[serde(flatten)]
    pub config: ConfigurationFields,
}

/// UpdateFunctionCode's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateCodeBody {
    pub zip_file: Option<String>,
    pub s3_bucket: Option<String>,
    pub image_uri: Option<String>,
    pub architectures: Option<Vec<String>>,
    /// Publish a version of the updated function.
    pub publish: Option<bool>,
    /// Update only if `$LATEST` is still this revision.
    pub revision_id: Option<String>,
}

/// PutFunctionConcurrency's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConcurrencyBody {
    pub reserved_concurrent_executions: u32,
}

/// PutProvisionedConcurrencyConfig's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProvisionedBody {
    pub provisioned_concurrent_executions: u32,
}

/// The provisioned concurrency config as Lambda reports it.
pub fn provisioned_config(s: &crate::engine::ProvisionedStatus) -> serde_json::Value {
    serde_json::json!({
        "RequestedProvisionedConcurrentExecutions": s.requested,
        "AvailableProvisionedConcurrentExecutions": s.ready,
        "AllocatedProvisionedConcurrentExecutions": s.ready,
        "Status": if s.ready >= s.requested { "READY" } else { "IN_PROGRESS" },
        "LastModified": s.last_modified,
    })
}

/// Lambda's documented account limits (GetAccountSettings), which
/// lambdabox reports as its own: its code limits are Lambda's, and AWS's
/// default concurrency quota is what clients plan with.
const TOTAL_CODE_SIZE: u64 = 80 * 1024 * 1024 * 1024;
const CONCURRENT_EXECUTIONS: u64 = 1000;

/// GetAccountSettings' answer.
pub fn account_settings(usage: &crate::engine::AccountUsage) -> serde_json::Value {
    serde_json::json!({
        "AccountLimit": {
            "TotalCodeSize": TOTAL_CODE_SIZE,
            "CodeSizeUnzipped": crate::function::MAX_UNZIPPED_BYTES,
            "CodeSizeZipped": crate::function::MAX_ZIP_BYTES,
            "ConcurrentExecutions": CONCURRENT_EXECUTIONS,
            "UnreservedConcurrentExecutions": CONCURRENT_EXECUTIONS.saturating_sub(usage.reserved_concurrency),
        },
        "AccountUsage": { "TotalCodeSize": usage.total_code_size, "FunctionCount": usage.function_count },
    })
}

/// Lambda's FunctionConfiguration, as clients and waiters read it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionConfiguration {
    pub function_name: String,
    pub function_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    pub code_size: u64,
    pub description: String,
    pub timeout: u32,
    pub memory_size: u32,
    pub last_modified: String,
    pub code_sha256: String,
    pub version: String,
    /// Always there, `{"Variables": {}}` when there are none, as AWS sends it.
    pub environment: EnvironmentOut,
    pub tracing_config: serde_json::Value,
    pub revision_id: String,
    pub layers: Vec<serde_json::Value>,
    pub state: &'static str,
    pub last_update_status: &'static str,
    pub package_type: &'static str,
    pub architectures: [&'static str; 1],
    pub ephemeral_storage: serde_json::Value,
    pub logging_config: serde_json::Value,
    /// lambdabox's own: the function's idle TTL, when it sets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_ttl_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_config_response: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentOut {
    pub variables: BTreeMap<String, String>,
}

impl FunctionConfiguration {
    /// `f` as Lambda describes it; `qualifier` when the request named a
    /// version (then the ARN names it too, as AWS's does).
    pub fn of(f: &Function, realm: &Realm, qualifier: Option<&str>) -> FunctionConfiguration {
        let arn = realm.function_arn(&f.name);
        FunctionConfiguration {
            function_name: f.name.clone(),
            function_arn: match qualifier {
                Some(q) => format!("{arn}:{q}"),
                None => arn,
            },
            runtime: f.image.is_none().then(|| f.runtime.clone()),
            role: f.role.clone(),
            handler: f.image.is_none().then(|| f.handler.clone()),
            code_size: f.code_size,
            description: f.description.clone(),
            timeout: f.timeout_s,
            memory_size: f.memory_mb,
            last_modified: f.last_modified.clone(),
            code_sha256: f.code_digest(),
            version: f.version_label(),
            environment: EnvironmentOut { variables: f.environment.clone() },
            tracing_config: serde_json::json!({ "Mode": "PassThrough" }),
            revision_id: f.revision_id.clone(),
            layers: f.layers.iter().map(|l| serde_json::json!({ "Arn": l.arn, "CodeSize": l.code_size })).collect(),
            state: "Active",
            last_update_status: "Successful",
            package_type: f.package_type(),
            architectures: ["x86_64"],
            ephemeral_storage: serde_json::json!({ "Size": f.ephemeral_storage_mb }),
            logging_config: f.logging.wire(&f.name),
            idle_ttl_seconds: f.idle_ttl_s,
            image_config_response: f
                .image
                .as_ref()
                .map(|i| serde_json::json!({ "ImageConfig": ImageConfigBody::from(&i.config) })),
        }
    }
}

/// Put/UpdateFunctionEventInvokeConfig's body.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct EventInvokeConfigBody {
    pub maximum_retry_attempts: Option<u32>,
    pub maximum_event_age_in_seconds: Option<u32>,
    pub destination_config: Option<DestinationConfigBody>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationConfigBody {
    pub on_success: Option<DestinationBody>,
    pub on_failure: Option<DestinationBody>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationBody {
    pub destination: Option<String>,
}

impl From<EventInvokeConfigBody> for EventInvokePatch {
    fn from(b: EventInvokeConfigBody) -> EventInvokePatch {
        EventInvokePatch {
            max_retries: b.maximum_retry_attempts,
            max_age_s: b.maximum_event_age_in_seconds,
            destinations: b.destination_config.map(|d| DestinationPatch {
                on_success: d.on_success.map(|s| s.destination),
                on_failure: d.on_failure.map(|f| f.destination),
            }),
        }
    }
}

/// A FunctionEventInvokeConfig as Lambda shows it: the qualified ARN,
/// `LastModified` in epoch seconds (a number), `DestinationConfig` always,
/// unset members left out.
pub fn event_invoke_config(e: &ConfigEntry, realm: &Realm) -> serde_json::Value {
    let destination = |d: &Option<String>| match d {
        Some(arn) => serde_json::json!({ "Destination": arn }),
        None => serde_json::json!({}),
    };
    let c = &e.config;
    let mut out = serde_json::json!({
        "FunctionArn": format!("{}:{}", realm.function_arn(&e.function), e.qualifier),
        "LastModified": c.last_modified_ms as f64 / 1000.0,
        "DestinationConfig": { "OnSuccess": destination(&c.on_success), "OnFailure": destination(&c.on_failure) },
    });
    if let Some(n) = c.max_retries {
        out["MaximumRetryAttempts"] = n.into();
    }
    if let Some(n) = c.max_age_s {
        out["MaximumEventAgeInSeconds"] = n.into();
    }
    out
}

/// `DeadLetterConfig` of CreateFunction and UpdateFunctionConfiguration.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterConfigBody {
    pub target_arn: Option<String>,
}
