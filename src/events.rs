//! EventBridge-compatible rules, schedules and the default event bus: what
//! makes functions run because something happened or because it is time.
//!
//! - [`rule`]: a rule (an event pattern or a schedule, its state, its
//!   targets) as stored; [`store`] keeps rules in SQLite and in memory.
//! - [`pattern`]: event patterns, matched with EventBridge's semantics.
//! - [`schedule`]: `rate(…)` and `cron(…)` and the slots they name;
//!   [`clock`] the time the scheduler reads; [`scheduler`] the task that
//!   fires schedule rules, each slot at most once.
//! - [`transform`]: what a target receives (`Input`, `InputPath`,
//!   `InputTransformer`).
//! - [`bus`]: PutEvents entries made into events, and every enabled
//!   pattern rule's targets that take them.
//!
//! [`Bus`] is the core the `AWSEvents.*` API drives; it knows nothing of
//! HTTP. Targets are Lambda functions of this box; every delivery goes
//! through the asynchronous queue (`InvocationType: Event`), committed
//! before PutEvents answers.

pub mod bus;
pub mod clock;
pub mod pattern;
pub mod rule;
pub mod schedule;
pub mod scheduler;
pub mod store;
pub mod transform;

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::arn::Realm;
pub use bus::{Delivery, EntryResult, NewEntry};
pub use clock::Clock;
use pattern::{EventPattern, InvalidPattern};
pub use rule::{Loaded, Rule, Target};
use schedule::{InvalidSchedule, Schedule};
pub use store::{RuleStore, RuleStoreError};

/// The one event bus lambdabox serves.
pub const DEFAULT_BUS: &str = "default";
/// Most targets a rule may have, as on EventBridge.
pub const MAX_TARGETS: usize = 5;

/// Failures of the bus's operations, by the exception EventBridge answers.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Validation(String),
    #[error(transparent)]
    InvalidPattern(#[from] InvalidPattern),
    #[error("{0}")]
    LimitExceeded(String),
    /// The rules database failed: the change was not made.
    #[error("{0}")]
    Store(#[from] RuleStoreError),
}

impl From<InvalidSchedule> for EventsError {
    fn from(e: InvalidSchedule) -> EventsError {
        EventsError::Validation(e.to_string())
    }
}

impl From<crate::constraints::Refused> for EventsError {
    fn from(e: crate::constraints::Refused) -> EventsError {
        EventsError::Validation(e.to_string())
    }
}

/// PutRule's input.
#[derive(Debug, Clone, Default)]
pub struct PutRule {
    pub name: String,
    pub event_pattern: Option<String>,
    pub schedule_expression: Option<String>,
    pub state: Option<String>,
    pub description: Option<String>,
    pub role_arn: Option<String>,
}

/// One target PutTargets could not take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTarget {
    pub id: String,
    pub code: &'static str,
    pub message: String,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Bus {
    store: RuleStore,
    realm: Realm,
    clock: Clock,
    /// Read-modify-write of rules, one at a time.
    writes: Mutex<()>,
    /// Poked when schedules may have changed, so the scheduler looks again.
    pub(crate) changed: tokio::sync::Notify,
}

impl Bus {
    /// Open the rules under `data_dir`. `clock_scale` above 1 runs the
    /// scheduler's clock faster, for tests ([`clock`]).
    pub fn open(data_dir: &Path, realm: Realm, clock_scale: u32) -> Result<Bus, RuleStoreError> {
        let store = RuleStore::open(data_dir)?;
        let clock = if clock_scale > 1 { scaled_clock(&store, clock_scale)? } else { Clock::wall() };
        Ok(Bus { store, realm, clock, writes: Mutex::new(()), changed: tokio::sync::Notify::new() })
    }

    pub fn realm(&self) -> &Realm {
        &self.realm
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// `arn:aws:events:REGION:ACCOUNT:rule/NAME`.
    pub fn rule_arn(&self, name: &str) -> String {
        format!("arn:aws:events:{}:{}:rule/{name}", self.realm.region, self.realm.account)
    }

    /// `arn:aws:events:REGION:ACCOUNT:event-bus/default`.
    pub fn bus_arn(&self) -> String {
        format!("arn:aws:events:{}:{}:event-bus/{DEFAULT_BUS}", self.realm.region, self.realm.account)
    }

    /// The bus an `EventBusName` (a name or an ARN) names: only the default one exists.
    pub fn check_bus(&self, name_or_arn: Option<&str>) -> Result<(), EventsError> {
        match name_or_arn {
            None | Some(DEFAULT_BUS) => Ok(()),
            Some(arn) if arn == self.bus_arn() => Ok(()),
            Some(other) => {
                let name = other.rsplit('/').next().unwrap_or(other);
                Err(EventsError::NotFound(format!("Event bus {name} does not exist.")))
            }
        }
    }

    fn no_rule(name: &str) -> EventsError {
        EventsError::NotFound(format!("Rule {name} does not exist on EventBus {DEFAULT_BUS}."))
    }

    pub fn get(&self, name: &str) -> Result<Arc<Loaded>, EventsError> {
        self.store.get(name).ok_or_else(|| Bus::no_rule(name))
    }

    /// Every rule, in name order.
    pub fn rules(&self) -> Vec<Arc<Loaded>> {
        self.store.list()
    }

    /// PutRule: create the rule, or replace what it says (its targets stay).
    /// Returns its ARN.
    pub fn put_rule(&self, p: PutRule) -> Result<String, EventsError> {
        if p.event_pattern.is_none() && p.schedule_expression.is_none() {
            return Err(EventsError::Validation(
                "Parameter(s) EventPattern or ScheduleExpression must be specified.".into(),
            ));
        }
        if let Some(s) = &p.schedule_expression {
            Schedule::parse(s)?;
        }
        if let Some(pattern) = &p.event_pattern {
            EventPattern::parse(pattern)?;
        }
        let _guard = self.writes.lock().expect("rule writes lock poisoned");
        let now = self.clock.now().timestamp_millis();
        let old = self.store.get(&p.name);
        let state = p.state.unwrap_or_else(|| rule::ENABLED.to_owned());
        let mut rule = Rule {
            name: p.name.clone(),
            event_pattern: p.event_pattern,
            schedule_expression: p.schedule_expression,
            state,
            description: p.description,
            role_arn: p.role_arn,
            targets: Vec::new(),
            anchor_ms: now,
            fired_ms: now,
        };
        if let Some(old) = old {
            let old = &old.rule;
            rule.targets = old.targets.clone();
            if old.schedule_expression == rule.schedule_expression {
                rule.anchor_ms = old.anchor_ms;
                // Slots passed while disabled are not owed.
                rule.fired_ms = if old.enabled() { old.fired_ms } else { now };
            }
        }
        self.store.put(rule)?;
        self.changed.notify_one();
        Ok(self.rule_arn(&p.name))
    }

    /// DeleteRule: refused while the rule has targets; a rule that does
    /// not exist is deleted already.
    pub fn delete_rule(&self, name: &str) -> Result<(), EventsError> {
        let _guard = self.writes.lock().expect("rule writes lock poisoned");
        match self.store.get(name) {
            None => Ok(()),
            Some(l) if !l.rule.targets.is_empty() => {
                Err(EventsError::Validation("Rule can't be deleted since it has targets.".into()))
            }
            Some(_) => {
                self.store.delete(name)?;
                self.changed.notify_one();
                Ok(())
            }
        }
    }

    /// EnableRule / DisableRule. Enabling starts the schedule afresh: no
    /// slot that passed while disabled fires.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), EventsError> {
        self.update(name, |rule, now| {
            if enabled && !rule.enabled() {
                rule.fired_ms = now;
            }
            rule.state = if enabled { rule::ENABLED } else { rule::DISABLED }.to_owned();
            Ok(())
        })?;
        Ok(())
    }

    /// Change a stored rule under the write lock; `now` is the scheduler's clock.
    fn update(
        &self,
        name: &str,
        change: impl FnOnce(&mut Rule, i64) -> Result<(), EventsError>,
    ) -> Result<Arc<Loaded>, EventsError> {
        let _guard = self.writes.lock().expect("rule writes lock poisoned");
        let mut rule = self.get(name)?.rule.clone();
        change(&mut rule, self.clock.now().timestamp_millis())?;
        let loaded = self.store.put(rule)?;
        self.changed.notify_one();
        Ok(loaded)
    }

    /// PutTargets: add or replace targets by id. Targets that are not
    /// Lambda functions of this box are answered as failed entries.
    pub fn put_targets(&self, name: &str, targets: Vec<Target>) -> Result<Vec<FailedTarget>, EventsError> {
        for t in &targets {
            transform::check(&t.id, t.input.as_deref(), t.input_path.as_deref(), t.input_transformer.as_ref())
                .map_err(|e| EventsError::Validation(e.to_string()))?;
        }
        let (good, failed): (Vec<Target>, Vec<Target>) =
            targets.into_iter().partition(|t| rule::lambda_target(&t.arn, &self.realm).is_some());
        self.update(name, |rule, _| {
            for t in good {
                match rule.targets.iter_mut().find(|old| old.id == t.id) {
                    Some(old) => *old = t,
                    None => rule.targets.push(t),
                }
            }
            if rule.targets.len() > MAX_TARGETS {
                return Err(EventsError::LimitExceeded(
                    "The requested resource exceeds the maximum number allowed.".into(),
                ));
            }
            Ok(())
        })?;
        Ok(failed.into_iter().map(|t| unserved_target(t, &self.realm)).collect())
    }

    /// RemoveTargets: ids the rule does not have are no failure.
    pub fn remove_targets(&self, name: &str, ids: &[String]) -> Result<(), EventsError> {
        self.update(name, |rule, _| {
            rule.targets.retain(|t| !ids.contains(&t.id));
            Ok(())
        })?;
        Ok(())
    }

    /// The next time a schedule rule fires, if it is enabled and has one.
    pub fn next_firing(&self, loaded: &Loaded) -> Option<DateTime<Utc>> {
        let schedule = loaded.schedule.as_ref().filter(|_| loaded.rule.enabled())?;
        let (anchor, fired) = (millis(loaded.rule.anchor_ms), millis(loaded.rule.fired_ms));
        schedule.next_after(anchor, fired)
    }

    /// Record that `name` fired for `slot` (or skipped to it), unless the
    /// rule changed meanwhile. Returns whether it was recorded.
    pub(crate) fn mark_fired(&self, name: &str, expected: &Rule, slot: DateTime<Utc>) -> Result<bool, EventsError> {
        let _guard = self.writes.lock().expect("rule writes lock poisoned");
        match self.store.get(name) {
            Some(current) if current.rule == *expected => {
                let rule = Rule { fired_ms: slot.timestamp_millis(), ..expected.clone() };
                self.store.put(rule)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// Unix ms as a time (the scheduler's clock never leaves chrono's range).
pub(crate) fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The failed entry of a target lambdabox cannot deliver to.
fn unserved_target(t: Target, realm: &Realm) -> FailedTarget {
    let service = t.arn.split(':').nth(2).unwrap_or("");
    let message = if service == "lambda" {
        format!(
            "Target {} is not a function of this lambdabox: targets must be Lambda functions in {} of account {}.",
            t.arn, realm.region, realm.account
        )
    } else {
        format!(
            "lambdabox delivers events to Lambda functions only; {} is not one (SQS, SNS, Step Functions and the \
             other services EventBridge can target are not available on this box).",
            t.arn
        )
    };
    FailedTarget { id: t.id, code: "InvalidArgument", message }
}

/// The scaled clock, its origin the first start with this scale.
fn scaled_clock(store: &RuleStore, scale: u32) -> Result<Clock, RuleStoreError> {
    let key = format!("clock-origin-x{scale}");
    let origin = match store.setting(&key)?.and_then(|v| v.parse().ok()) {
        Some(origin) => origin,
        None => {
            let now = Utc::now().timestamp_millis();
            store.set_setting(&key, &now.to_string())?;
            now
        }
    };
    tracing::warn!(scale, "the scheduler's clock runs {scale} times faster than the wall clock (a test setting)");
    Ok(Clock::scaled(scale, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bus() -> (Bus, tempfile::TempDir) {
        let tmp = tempfile::tempdir().unwrap();
        (Bus::open(tmp.path(), Realm::default(), 1).unwrap(), tmp)
    }

    fn target(id: &str, arn: &str) -> Target {
        Target {
            id: id.into(),
            arn: arn.into(),
            role_arn: None,
            input: None,
            input_path: None,
            input_transformer: None,
        }
    }

    const F: &str = "arn:aws:lambda:us-east-1:000000000000:function:f";

    #[test]
    fn rules_keep_their_targets_and_refuse_deletion_while_they_have_some() {
        let (bus, _tmp) = bus();
        let put = |s: &str| PutRule { name: "r".into(), schedule_expression: Some(s.into()), ..Default::default() };
        assert_eq!(bus.put_rule(put("rate(5 minutes)")).unwrap(), "arn:aws:events:us-east-1:000000000000:rule/r");
        let failed = bus.put_targets("r", vec![target("1", F), target("2", "arn:aws:sqs:us-east-1:000000000000:q")]);
        let failed = failed.unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!((failed[0].id.as_str(), failed[0].code), ("2", "InvalidArgument"));
        bus.put_rule(put("rate(10 minutes)")).unwrap();
        assert_eq!(bus.get("r").unwrap().rule.targets.len(), 1, "PutRule keeps the targets");
        assert!(matches!(bus.delete_rule("r"), Err(EventsError::Validation(m)) if m.contains("has targets")));
        bus.remove_targets("r", &["1".into(), "nope".into()]).unwrap();
        bus.delete_rule("r").unwrap();
        bus.delete_rule("r").unwrap();
        assert!(
            matches!(bus.get("r"), Err(EventsError::NotFound(m)) if m == "Rule r does not exist on EventBus default.")
        );
    }

    #[test]
    fn refusals_name_eventbridges_exceptions() {
        let (bus, _tmp) = bus();
        let empty = PutRule { name: "r".into(), ..Default::default() };
        assert!(matches!(bus.put_rule(empty), Err(EventsError::Validation(_))));
        let bad =
            PutRule { name: "r".into(), schedule_expression: Some("rate(1 minutes)".into()), ..Default::default() };
        assert!(
            matches!(bus.put_rule(bad), Err(EventsError::Validation(m)) if m == "Parameter ScheduleExpression is not valid.")
        );
        let bad = PutRule { name: "r".into(), event_pattern: Some("[1]".into()), ..Default::default() };
        assert!(matches!(bus.put_rule(bad), Err(EventsError::InvalidPattern(_))));
        assert!(matches!(bus.set_enabled("none", true), Err(EventsError::NotFound(_))));
        assert!(
            matches!(bus.check_bus(Some("other")), Err(EventsError::NotFound(m)) if m == "Event bus other does not exist.")
        );
        bus.check_bus(Some("arn:aws:events:us-east-1:000000000000:event-bus/default")).unwrap();
        let p = PutRule { name: "r".into(), event_pattern: Some("{}".into()), ..Default::default() };
        bus.put_rule(p).unwrap();
        let six: Vec<Target> = (0..6).map(|i| target(&i.to_string(), F)).collect();
        assert!(matches!(bus.put_targets("r", six), Err(EventsError::LimitExceeded(_))));
        assert!(bus.get("r").unwrap().rule.targets.is_empty(), "nothing is stored from a refused request");
    }

    #[test]
    fn disabled_slots_are_not_owed() {
        let (bus, _tmp) = bus();
        let p = PutRule { name: "r".into(), schedule_expression: Some("rate(1 minute)".into()), ..Default::default() };
        bus.put_rule(p).unwrap();
        let l = bus.get("r").unwrap();
        let next = bus.next_firing(&l).unwrap();
        assert_eq!(next.timestamp_millis(), l.rule.anchor_ms + 60_000);
        bus.set_enabled("r", false).unwrap();
        assert_eq!(bus.next_firing(&bus.get("r").unwrap()), None);
        bus.set_enabled("r", true).unwrap();
        let again = bus.get("r").unwrap();
        assert!(again.rule.fired_ms >= l.rule.fired_ms);
        assert_eq!(again.rule.anchor_ms, l.rule.anchor_ms, "the rate keeps its anchor");
    }
}
