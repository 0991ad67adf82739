//! What a rule is: its pattern or schedule, its state and its targets, as
//! stored, and the checked forms the bus and the scheduler work with.

use serde::{Deserialize, Serialize};

use super::pattern::EventPattern;
use super::schedule::Schedule;
use super::transform::InputTransformer;
use crate::function::{FunctionRef, NameForm};

/// A rule's `State`: anything but `DISABLED` takes events and fires.
pub const DISABLED: &str = "DISABLED";
pub const ENABLED: &str = "ENABLED";

/// A rule as stored (one JSON document per rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub event_pattern: Option<String>,
    pub schedule_expression: Option<String>,
    pub state: String,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    pub targets: Vec<Target>,
    /// Where a rate counts from (scheduler clock, Unix ms): the rule's
    /// creation or the last change of its expression.
    pub anchor_ms: i64,
    /// No slot at or before this fires: the last slot fired, or when the
    /// schedule (re)started (created, changed, enabled).
    pub fired_ms: i64,
}

/// A target as PutTargets takes it and ListTargetsByRule answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Target {
    pub id: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_transformer: Option<InputTransformer>,
}

impl Rule {
    pub fn enabled(&self) -> bool {
        self.state != DISABLED
    }
}

/// A stored rule with its pattern and schedule parsed once.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub rule: Rule,
    pub pattern: Option<EventPattern>,
    pub schedule: Option<Schedule>,
}

impl Loaded {
    /// Parse what was checked when the rule was stored; a stored rule
    /// that no longer parses (a newer build's) takes nothing and never fires.
    pub fn new(rule: Rule) -> Loaded {
        let pattern = rule.event_pattern.as_deref().and_then(|p| EventPattern::parse(p).ok());
        let schedule = rule.schedule_expression.as_deref().and_then(|s| Schedule::parse(s).ok());
        Loaded { rule, pattern, schedule }
    }
}

/// The function a target ARN names, when it is a Lambda function of this
/// region and account (`…:function:NAME`, `…:function:NAME:QUALIFIER`).
pub fn lambda_target(arn: &str, realm: &crate::arn::Realm) -> Option<FunctionRef> {
    let r = FunctionRef::parse(arn, NameForm::Namespaced).ok()?;
    let here = r.region.as_deref() == Some(&realm.region) && r.account.as_deref() == Some(&realm.account);
    (arn.starts_with("arn:") && here).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_realms_functions_are_targets() {
        let realm = crate::arn::Realm::default();
        let f = lambda_target("arn:aws:lambda:us-east-1:000000000000:function:f", &realm).unwrap();
        assert_eq!((f.name.as_str(), f.qualifier), ("f", None));
        let q = lambda_target("arn:aws:lambda:us-east-1:000000000000:function:f:live", &realm).unwrap();
        assert_eq!(q.qualifier.as_deref(), Some("live"));
        assert!(lambda_target("arn:aws:lambda:eu-west-1:000000000000:function:f", &realm).is_none());
        assert!(lambda_target("arn:aws:sqs:us-east-1:000000000000:q", &realm).is_none());
        assert!(lambda_target("f", &realm).is_none());
    }
}
