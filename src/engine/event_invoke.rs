//! The EventInvokeConfig operations (Put, Update, Get, Delete, List) and
//! the destinations they name, checked as Lambda checks them.
//!
//! Configs are keyed by function and qualifier. Only `$LATEST` exists on
//! this box today, so any other qualifier answers as AWS answers one that
//! does not exist; versions and aliases plug in at [`Engine::config_target`].
//! Destinations must be other functions of this box or its default event
//! bus: lambdabox serves no SQS, SNS or S3 to deliver records to.

use std::sync::Arc;

use super::{Engine, EngineError};
use crate::constraints::{self as c, Checks, InvalidParameter, Refused};
use crate::function::{Function, FunctionRef, NameForm, LATEST};
use crate::queue::store::now_ms;
use crate::queue::{ConfigEntry, EventInvokeConfig};

/// Services AWS delivers records to that lambdabox does not serve.
const UNSERVED_DESTINATIONS: &[&str] = &["sqs", "sns", "s3"];

/// Put/UpdateFunctionEventInvokeConfig's input; `None` is "not given".
#[derive(Debug, Clone, Default)]
pub struct EventInvokePatch {
    pub max_retries: Option<u32>,
    pub max_age_s: Option<u32>,
    pub destinations: Option<DestinationPatch>,
}

/// `DestinationConfig`: the outer `Option` is whether `OnSuccess` /
/// `OnFailure` was given, the inner whether it named a `Destination`.
#[derive(Debug, Clone, Default)]
pub struct DestinationPatch {
    pub on_success: Option<Option<String>>,
    pub on_failure: Option<Option<String>>,
}

impl DestinationPatch {
    /// The destinations given, empty ones (`""`, matched by the model's `$`) left out.
    fn given(&self) -> Vec<String> {
        self.success().into_iter().chain(self.failure()).collect()
    }

    fn success(&self) -> Option<String> {
        self.on_success.clone().flatten().filter(|d| !d.is_empty())
    }

    fn failure(&self) -> Option<String> {
        self.on_failure.clone().flatten().filter(|d| !d.is_empty())
    }

    /// As AWS's message shows a refused config (Java's record syntax).
    fn shown(&self) -> String {
        let side = |kind: &str, d: &Option<Option<String>>| match d {
            None => "null".to_owned(),
            Some(dest) => format!("{kind}(destination={})", dest.as_deref().unwrap_or("null")),
        };
        format!(
            "DestinationConfig(onSuccess={}, onFailure={})",
            side("OnSuccess", &self.on_success),
            side("OnFailure", &self.on_failure)
        )
    }
}

impl EventInvokePatch {
    /// The model's bounds, then: something must be set.
    fn validate(&self) -> Result<(), Refused> {
        let d = self.destinations.as_ref();
        Checks::new()
            .number(&c::MAXIMUM_RETRY_ATTEMPTS, self.max_retries)
            .number(&c::MAXIMUM_EVENT_AGE, self.max_age_s)
            .text(&c::ON_SUCCESS_DESTINATION, d.and_then(|d| d.on_success.clone().flatten()).as_deref())
            .text(&c::ON_FAILURE_DESTINATION, d.and_then(|d| d.on_failure.clone().flatten()).as_deref())
            .finish()?;
        if self.max_retries.is_none() && self.max_age_s.is_none() && self.destinations.is_none() {
            return Err(InvalidParameter(
                "You must specify at least one of error handling or destination setting.".into(),
            )
            .into());
        }
        Ok(())
    }

    /// `base` with what this patch gives (a given DestinationConfig
    /// replaces both destinations, as Lambda's Update does).
    fn apply(self, base: EventInvokeConfig) -> EventInvokeConfig {
        let (on_success, on_failure) = match &self.destinations {
            Some(d) => (d.success(), d.failure()),
            None => (base.on_success, base.on_failure),
        };
        EventInvokeConfig {
            max_retries: self.max_retries.or(base.max_retries),
            max_age_s: self.max_age_s.or(base.max_age_s),
            on_success,
            on_failure,
            last_modified_ms: now_ms(),
        }
    }
}

fn no_function() -> EngineError {
    EngineError::NotFound("The function doesn't exist.".into())
}

impl Engine {
    /// PutFunctionEventInvokeConfig: replace the config (or create it).
    pub async fn put_event_invoke_config(
        &self,
        r: &FunctionRef,
        patch: EventInvokePatch,
    ) -> Result<ConfigEntry, EngineError> {
        patch.validate()?;
        let _guard = self.writes.lock().await;
        let (f, qualifier) = self.config_target(r)?.ok_or_else(no_function)?;
        self.store_config(&f, qualifier, patch, EventInvokeConfig::default()).await
    }

    /// UpdateFunctionEventInvokeConfig: change what is given of an existing config.
    pub async fn update_event_invoke_config(
        &self,
        r: &FunctionRef,
        patch: EventInvokePatch,
    ) -> Result<ConfigEntry, EngineError> {
        patch.validate()?;
        let _guard = self.writes.lock().await;
        let (f, qualifier) = self.config_target(r)?.ok_or_else(no_function)?;
        let base = self.queue.store().config(&f.name, &qualifier).ok_or_else(|| self.no_config(r))?;
        self.store_config(&f, qualifier, patch, base).await
    }

    async fn store_config(
        &self,
        f: &Function,
        qualifier: String,
        patch: EventInvokePatch,
        base: EventInvokeConfig,
    ) -> Result<ConfigEntry, EngineError> {
        if let Some(d) = &patch.destinations {
            self.check_destinations(&f.name, d)?;
        }
        let config = patch.apply(base);
        self.queue.store().set_config(&f.name, &qualifier, Some(config.clone())).await.map_err(EngineError::Queue)?;
        Ok(ConfigEntry { function: f.name.clone(), qualifier, config })
    }

    /// GetFunctionEventInvokeConfig.
    pub fn get_event_invoke_config(&self, r: &FunctionRef) -> Result<ConfigEntry, EngineError> {
        let (f, qualifier) = self.config_target(r)?.ok_or_else(|| self.no_config(r))?;
        let config = self.queue.store().config(&f.name, &qualifier).ok_or_else(|| self.no_config(r))?;
        Ok(ConfigEntry { function: f.name.clone(), qualifier, config })
    }

    /// DeleteFunctionEventInvokeConfig.
    pub async fn delete_event_invoke_config(&self, r: &FunctionRef) -> Result<(), EngineError> {
        let _guard = self.writes.lock().await;
        let entry = self.get_event_invoke_config(r)?;
        self.queue.store().set_config(&entry.function, &entry.qualifier, None).await.map_err(EngineError::Queue)
    }

    /// ListFunctionEventInvokeConfigs: every config of the function, by qualifier.
    pub fn list_event_invoke_configs(&self, r: &FunctionRef) -> Result<Vec<ConfigEntry>, EngineError> {
        self.check_realm(r)?;
        let f = self.store.get(&r.name).ok_or_else(no_function)?;
        Ok(self.queue.store().configs(&f.name))
    }

    /// The function and qualifier (`$LATEST`, a version or an alias) a
    /// config reference names, when both exist. A config belongs to the
    /// qualifier as named: an alias keeps its own, whichever version it
    /// routes to.
    fn config_target(&self, r: &FunctionRef) -> Result<Option<(Arc<Function>, String)>, EngineError> {
        self.check_realm(r)?;
        let qualifier = r.qualifier.clone().unwrap_or_else(|| LATEST.to_owned());
        match self.resolve(r) {
            Ok(f) => Ok(self.store.get(&f.name).map(|latest| (latest, qualifier))),
            Err(EngineError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `The function ARN:QUALIFIER doesn't have an EventInvokeConfig`.
    fn no_config(&self, r: &FunctionRef) -> EngineError {
        let arn = self.realm.function_arn(&r.name);
        let qualifier = r.qualifier.as_deref().unwrap_or(LATEST);
        EngineError::NotFound(format!("The function {arn}:{qualifier} doesn't have an EventInvokeConfig"))
    }

    /// Each destination given must be another function of this box.
    fn check_destinations(&self, source: &str, d: &DestinationPatch) -> Result<(), EngineError> {
        for arn in &d.given() {
            let service = arn.split(':').nth(2).filter(|_| arn.starts_with("arn:"));
            match service {
                Some("lambda") => {
                    self.destination(arn, source)?;
                }
                Some("events") if self.is_default_bus(arn) => {}
                Some("events") => {
                    return Err(InvalidParameter(format!(
                        "The destination {arn} is not this lambdabox's event bus: only {} is served.",
                        self.bus.bus_arn()
                    ))
                    .into())
                }
                Some(s) if UNSERVED_DESTINATIONS.contains(&s) => return Err(unserved(arn)),
                None => return Err(unserved(arn)),
                Some(_) => {
                    return Err(
                        InvalidParameter(format!("The provided destination config {} is invalid.", d.shown())).into()
                    )
                }
            }
        }
        Ok(())
    }

    /// Whether a destination ARN names this box's default event bus.
    pub fn is_default_bus(&self, arn: &str) -> bool {
        arn == self.bus.bus_arn()
    }

    /// The function a Lambda destination ARN names (`$LATEST`, the only
    /// version here), if it is another function of this box.
    pub fn destination(&self, arn: &str, source: &str) -> Result<String, EngineError> {
        let invalid = || EngineError::from(InvalidParameter(format!("The destination ARN {arn} is invalid.")));
        let r = FunctionRef::parse(arn, NameForm::Namespaced).map_err(|_| invalid())?;
        let here = r.region.as_deref() == Some(&self.realm.region) && r.account.as_deref() == Some(&self.realm.account);
        if !here || !matches!(r.qualifier.as_deref(), None | Some(LATEST)) {
            return Err(invalid());
        }
        if r.name == source {
            return Err(InvalidParameter("You can't specify the function as a destination for itself.".into()).into());
        }
        self.store.get(&r.name).map(|f| f.name.clone()).ok_or_else(invalid)
    }
}

/// A destination of a service lambdabox does not serve (or a Kafka topic).
fn unserved(arn: &str) -> EngineError {
    InvalidParameter(format!(
        "The destination {arn} is not a Lambda function. lambdabox serves only Lambda, so a destination must be \
         another function on this box or its default event bus (SQS, SNS, S3 and Kafka destinations are not \
         available)."
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_configs_are_shown_as_aws_shows_them() {
        let d = DestinationPatch { on_success: Some(Some("arn:aws:iam:r:1:x".into())), on_failure: None };
        assert_eq!(d.shown(), "DestinationConfig(onSuccess=OnSuccess(destination=arn:aws:iam:r:1:x), onFailure=null)");
        let d = DestinationPatch { on_success: None, on_failure: Some(None) };
        assert_eq!(d.shown(), "DestinationConfig(onSuccess=null, onFailure=OnFailure(destination=null))");
    }

    #[test]
    fn update_merges_and_a_destination_config_replaces_both() {
        let base = EventInvokeConfig {
            max_retries: Some(2),
            max_age_s: Some(60),
            on_success: Some("s".into()),
            on_failure: Some("f".into()),
            last_modified_ms: 1,
        };
        let retries = EventInvokePatch { max_retries: Some(0), ..Default::default() }.apply(base.clone());
        assert_eq!(
            (retries.max_retries, retries.max_age_s, retries.on_failure.as_deref()),
            (Some(0), Some(60), Some("f"))
        );
        assert!(retries.last_modified_ms > 1);
        let d = DestinationPatch { on_success: Some(Some("s2".into())), on_failure: None };
        let dests = EventInvokePatch { destinations: Some(d), ..Default::default() }.apply(base);
        assert_eq!((dests.on_success.as_deref(), dests.on_failure), (Some("s2"), None));
        assert!(matches!(EventInvokePatch::default().validate(), Err(Refused::InvalidParameter(_))));
    }
}
