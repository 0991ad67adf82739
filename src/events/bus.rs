//! The default event bus: PutEvents entries checked and made into events
//! (EventBridge's envelope), and the deliveries an event makes, one per
//! target of every enabled rule whose pattern it matches.

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::rule::{lambda_target, Loaded, Target};
use super::transform::{self, Context};
use super::Bus;
use crate::function::FunctionRef;

/// Largest PutEvents request, summed over its entries, as on EventBridge.
pub const MAX_PUT_EVENTS_BYTES: usize = 256 * 1024;
/// Most entries one PutEvents carries.
pub const MAX_ENTRIES: usize = 10;

/// One PutEvents entry as received.
#[derive(Debug, Clone, Default)]
pub struct NewEntry {
    pub source: Option<String>,
    pub detail_type: Option<String>,
    pub detail: Option<String>,
    pub resources: Vec<String>,
    pub time: Option<DateTime<Utc>>,
    pub event_bus_name: Option<String>,
}

impl NewEntry {
    /// Its size as EventBridge counts it toward the request's limit.
    pub fn size(&self) -> usize {
        let text = |s: &Option<String>| s.as_deref().map_or(0, str::len);
        14 + text(&self.source)
            + text(&self.detail_type)
            + text(&self.detail)
            + self.resources.iter().map(String::len).sum::<usize>()
    }
}

/// How one entry ended: its event id, or EventBridge's error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    Accepted(String),
    Failed { code: &'static str, message: String },
}

/// One function to run with one payload, for one rule's target.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub rule: String,
    pub target: String,
    pub function: FunctionRef,
    pub payload: Bytes,
}

/// `2024-05-01T10:00:00Z`, as EventBridge stamps events.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Bus {
    /// An event for `entry`, or the failure EventBridge answers for it.
    pub fn event_of(&self, entry: &NewEntry) -> Result<Value, EntryResult> {
        let failed = |code, message: &str| EntryResult::Failed { code, message: message.to_owned() };
        let required = |v: &Option<String>, name: &str| match v.as_deref() {
            Some(s) if !s.is_empty() => Ok(s.to_owned()),
            _ => Err(failed(
                "InvalidArgument",
                &format!("Parameter {name} is not valid. Reason: {name} is a required argument."),
            )),
        };
        let source = required(&entry.source, "Source")?;
        let detail_type = required(&entry.detail_type, "DetailType")?;
        let detail = required(&entry.detail, "Detail")?;
        let detail: Value = serde_json::from_str(&detail)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| failed("MalformedDetail", "Detail is malformed."))?;
        if let Err(e) = self.check_bus(entry.event_bus_name.as_deref()) {
            return Err(EntryResult::Failed { code: "ResourceNotFoundException", message: e.to_string() });
        }
        Ok(self.envelope(&source, &detail_type, entry.resources.clone(), detail, entry.time.unwrap_or_else(Utc::now)))
    }

    /// An event in EventBridge's envelope, with a fresh id.
    pub fn envelope(
        &self,
        source: &str,
        detail_type: &str,
        resources: Vec<String>,
        detail: Value,
        time: DateTime<Utc>,
    ) -> Value {
        json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": detail_type,
            "source": source,
            "account": self.realm().account,
            "time": timestamp(time),
            "region": self.realm().region,
            "resources": resources,
            "detail": detail,
        })
    }

    /// What `event` makes: a delivery per target of every enabled pattern
    /// rule it matches.
    pub fn route(&self, event: &Value) -> Vec<Delivery> {
        let now = timestamp(Utc::now());
        let mut out = Vec::new();
        for loaded in self.rules() {
            let matched = loaded.pattern.as_ref().is_some_and(|p| p.matches(event));
            if loaded.rule.enabled() && matched {
                out.extend(self.deliveries(&loaded, event, &now));
            }
        }
        out
    }

    /// One delivery per target of `loaded` for `event`, received at `ingestion_time`.
    pub fn deliveries(&self, loaded: &Loaded, event: &Value, ingestion_time: &str) -> Vec<Delivery> {
        let rule_arn = self.rule_arn(&loaded.rule.name);
        let cx = Context { event, rule_arn: &rule_arn, rule_name: &loaded.rule.name, ingestion_time };
        loaded
            .rule
            .targets
            .iter()
            .filter_map(|t| {
                let function = lambda_target(&t.arn, self.realm())?;
                Some(Delivery {
                    rule: loaded.rule.name.clone(),
                    target: t.id.clone(),
                    function,
                    payload: Bytes::from(input_for(t, cx)),
                })
            })
            .collect()
    }
}

/// What target `t` receives for the event in `cx`.
fn input_for(t: &Target, cx: Context<'_>) -> String {
    if let Some(input) = &t.input {
        return input.clone();
    }
    if let Some(path) = t.input_path.as_deref().filter(|p| !p.is_empty()) {
        return transform::select(cx.event, path).unwrap_or(&Value::Null).to_string();
    }
    match &t.input_transformer {
        Some(transformer) => transform::transform(transformer, cx),
        None => cx.event.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arn::Realm;
    use crate::events::PutRule;

    fn bus() -> (Bus, tempfile::TempDir) {
        let tmp = tempfile::tempdir().unwrap();
        (Bus::open(tmp.path(), Realm::default(), 1).unwrap(), tmp)
    }

    fn entry(detail: &str) -> NewEntry {
        NewEntry {
            source: Some("shop".into()),
            detail_type: Some("Order".into()),
            detail: Some(detail.into()),
            ..Default::default()
        }
    }

    #[test]
    fn entries_become_eventbridges_envelope_or_its_failures() {
        let (bus, _tmp) = bus();
        let time = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let e =
            bus.event_of(&NewEntry { time: Some(time), resources: vec!["r1".into()], ..entry(r#"{"n": 1}"#) }).unwrap();
        assert_eq!(e["version"], "0");
        assert_eq!(e["detail-type"], "Order");
        assert_eq!(e["source"], "shop");
        assert_eq!(e["account"], "000000000000");
        assert_eq!(e["region"], "us-east-1");
        assert_eq!(e["time"], "2024-05-01T10:00:00Z");
        assert_eq!(e["resources"], json!(["r1"]));
        assert_eq!(e["detail"], json!({"n": 1}));
        assert_eq!(e["id"].as_str().unwrap().len(), 36);
        let code = |r: Result<Value, EntryResult>| match r {
            Err(EntryResult::Failed { code, message }) => (code, message),
            other => panic!("{other:?}"),
        };
        assert_eq!(code(bus.event_of(&entry("[1]"))).0, "MalformedDetail");
        assert_eq!(
            code(bus.event_of(&NewEntry { source: None, ..entry("{}") })).1,
            "Parameter Source is not valid. Reason: Source is a required argument."
        );
        assert_eq!(
            code(bus.event_of(&NewEntry { event_bus_name: Some("b".into()), ..entry("{}") })).0,
            "ResourceNotFoundException"
        );
    }

    #[test]
    fn matching_enabled_rules_deliver_to_each_target() {
        let (bus, _tmp) = bus();
        let f = "arn:aws:lambda:us-east-1:000000000000:function:f";
        let rule = |name: &str, pattern: &str| PutRule {
            name: name.into(),
            event_pattern: Some(pattern.into()),
            ..Default::default()
        };
        bus.put_rule(rule("orders", r#"{"source": ["shop"]}"#)).unwrap();
        bus.put_rule(rule("other", r#"{"source": ["elsewhere"]}"#)).unwrap();
        bus.put_rule(PutRule { state: Some("DISABLED".into()), ..rule("off", r#"{"source": ["shop"]}"#) }).unwrap();
        let t = |id: &str| Target {
            id: id.into(),
            arn: f.into(),
            role_arn: None,
            input: None,
            input_path: None,
            input_transformer: None,
        };
        for name in ["orders", "other", "off"] {
            bus.put_targets(name, vec![t("whole")]).unwrap();
        }
        let path = Target { input_path: Some("$.detail".into()), ..t("path") };
        let fixed = Target { input: Some(r#"{"fixed": true}"#.into()), ..t("fixed") };
        bus.put_targets("orders", vec![path, fixed]).unwrap();
        let event = bus.event_of(&entry(r#"{"n": 1}"#)).unwrap();
        let out = bus.route(&event);
        let got: Vec<(&str, &str, Value)> = out
            .iter()
            .map(|d| (d.rule.as_str(), d.target.as_str(), serde_json::from_slice(&d.payload).unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("orders", "whole", event.clone()),
                ("orders", "path", json!({"n": 1})),
                ("orders", "fixed", json!({"fixed": true})),
            ]
        );
        assert_eq!(out[0].function.name, "f");
    }
}
