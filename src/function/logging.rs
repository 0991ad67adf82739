//! A function's `LoggingConfig`: the format of its logs (Text or JSON), the
//! levels kept when they are JSON, and its log group. The runtimes' own
//! clients do the formatting (awslambdaric, aws-lambda-ric and AWS's Java
//! client read `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL`), so what
//! lambdabox owns is the setting, its checks and the environment it becomes.

use serde::{Deserialize, Serialize};

use crate::constraints::{self, invalid, Checks, Refused};

/// As stored with the function. The default is Lambda's: Text, `/aws/lambda/NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggingConfig {
    pub json: bool,
    /// JSON only: TRACE … FATAL (INFO when unset).
    pub application_level: Option<String>,
    /// JSON only: DEBUG, INFO, WARN (INFO when unset).
    pub system_level: Option<String>,
    /// Set when the function names its own.
    pub log_group: Option<String>,
}

/// `LoggingConfig` as a request sends it: only what is given changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoggingPatch {
    pub log_format: Option<String>,
    pub application_level: Option<String>,
    pub system_level: Option<String>,
    pub log_group: Option<String>,
}

/// Lambda's level when JSON logs name none.
const DEFAULT_LEVEL: &str = "INFO";

impl LoggingPatch {
    /// The model's constraints, with the patch's other members.
    pub fn check(&self, checks: &mut Checks) {
        checks
            .one_of(&constraints::LOG_FORMAT, self.log_format.as_deref())
            .one_of(&constraints::APPLICATION_LOG_LEVEL, self.application_level.as_deref())
            .one_of(&constraints::SYSTEM_LOG_LEVEL, self.system_level.as_deref())
            .text(&constraints::LOG_GROUP, self.log_group.as_deref());
    }

    /// The function's config with this patch applied; levels need JSON
    /// (going back to Text drops them).
    pub fn applied_to(self, current: &LoggingConfig) -> Result<LoggingConfig, Refused> {
        let json = self.log_format.as_deref().map_or(current.json, |f| f == "JSON");
        if !json && (self.application_level.is_some() || self.system_level.is_some()) {
            return Err(invalid(
                "ApplicationLogLevel and SystemLogLevel can only be set when the function's LogFormat is JSON",
            )
            .into());
        }
        Ok(LoggingConfig {
            json,
            application_level: self.application_level.or_else(|| current.application_level.clone()).filter(|_| json),
            system_level: self.system_level.or_else(|| current.system_level.clone()).filter(|_| json),
            log_group: self.log_group.or_else(|| current.log_group.clone()),
        })
    }
}

impl LoggingConfig {
    pub fn log_group(&self, function: &str) -> String {
        self.log_group.clone().unwrap_or_else(|| format!("/aws/lambda/{function}"))
    }

    /// What the runtime's client reads: the format and level, JSON only.
    pub fn environment(&self) -> Vec<String> {
        if !self.json {
            return Vec::new();
        }
        let level = self.application_level.as_deref().unwrap_or(DEFAULT_LEVEL);
        vec!["AWS_LAMBDA_LOG_FORMAT=JSON".to_owned(), format!("AWS_LAMBDA_LOG_LEVEL={level}")]
    }

    /// `LoggingConfig` as GetFunctionConfiguration answers it.
    pub fn wire(&self, function: &str) -> serde_json::Value {
        let mut out = serde_json::json!({
            "LogFormat": if self.json { "JSON" } else { "Text" },
            "LogGroup": self.log_group(function),
        });
        if self.json {
            out["ApplicationLogLevel"] = self.application_level.as_deref().unwrap_or(DEFAULT_LEVEL).into();
            out["SystemLogLevel"] = self.system_level.as_deref().unwrap_or(DEFAULT_LEVEL).into();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(format: Option<&str>, app: Option<&str>) -> LoggingPatch {
        LoggingPatch {
            log_format: format.map(Into::into),
            application_level: app.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn json_brings_levels_and_text_drops_them() {
        let text = LoggingConfig::default();
        assert_eq!(text.wire("f"), serde_json::json!({"LogFormat": "Text", "LogGroup": "/aws/lambda/f"}));
        assert!(text.environment().is_empty());
        assert!(patch(None, Some("DEBUG")).applied_to(&text).is_err(), "levels need JSON");

        let json = patch(Some("JSON"), Some("DEBUG")).applied_to(&text).unwrap();
        assert_eq!(json.environment(), ["AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=DEBUG"]);
        assert_eq!(json.wire("f")["SystemLogLevel"], "INFO");
        let back = patch(Some("Text"), None).applied_to(&json).unwrap();
        assert_eq!(back, LoggingConfig::default());
    }

    #[test]
    fn the_models_values_are_checked() {
        let mut checks = Checks::new();
        LoggingPatch { log_format: Some("XML".into()), log_group: Some("bad group".into()), ..Default::default() }
            .check(&mut checks);
        let refused = checks.finish().unwrap_err().to_string();
        assert!(refused.starts_with("2 validation errors detected"), "{refused}");
    }
}
