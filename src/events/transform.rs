//! What a target receives: the event itself, a fixed `Input`, the part of
//! the event an `InputPath` names, or an `InputTransformer`'s template
//! filled with values the `InputPathsMap` picks out of the event.
//!
//! Paths are the JSONPath subset EventBridge documents: `$`, then `.name`,
//! `['name']` or `[N]` steps. A template is JSON (or a quoted string) with
//! `<name>` placeholders: inside a JSON string a string value goes in bare,
//! anywhere else as JSON. EventBridge's own placeholders are
//! `<aws.events.rule-arn>`, `<aws.events.rule-name>`,
//! `<aws.events.event.ingestion-time>` and `<aws.events.event>` /
//! `<aws.events.event.json>` (the whole event, outside strings only).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `InputTransformer` as stored and answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputTransformer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_paths_map: Option<BTreeMap<String, String>>,
    pub input_template: String,
}

/// Why an input definition is refused (answered as ValidationException).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error("Only one of Input, InputPath, or InputTransformer must be provided for target {0}.")]
    MoreThanOne(String),
    #[error("Input for target {0} is not valid JSON text.")]
    NotJson(String),
    #[error("Invalid InputPath for target {target}: {path}")]
    Path { target: String, path: String },
    #[error("InputTemplate for target {target} contains invalid placeholder {name}.")]
    Placeholder { target: String, name: String },
}

/// EventBridge's predefined placeholders.
const RULE_ARN: &str = "aws.events.rule-arn";
const RULE_NAME: &str = "aws.events.rule-name";
const INGESTION_TIME: &str = "aws.events.event.ingestion-time";
const WHOLE_EVENT: [&str; 2] = ["aws.events.event", "aws.events.event.json"];

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parse `$`, `$.a.b`, `$.a[0]`, `$['a-b']`.
fn path(text: &str) -> Option<Vec<Step>> {
    let mut rest = text.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']")?;
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            steps.push(Step::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// The value `text` (a checked path) names in `event`; `None` when absent.
pub fn select<'a>(event: &'a Value, text: &str) -> Option<&'a Value> {
    path(text)?.iter().try_fold(event, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(*i),
    })
}

/// Check one target's input definition.
pub fn check(
    target: &str,
    input: Option<&str>,
    input_path: Option<&str>,
    transformer: Option<&InputTransformer>,
) -> Result<(), InvalidInput> {
    if [input.is_some(), input_path.is_some(), transformer.is_some()].iter().filter(|b| **b).count() > 1 {
        return Err(InvalidInput::MoreThanOne(target.to_owned()));
    }
    if let Some(input) = input {
        serde_json::from_str::<Value>(input).map_err(|_| InvalidInput::NotJson(target.to_owned()))?;
    }
    let bad_path = |p: &str| InvalidInput::Path { target: target.to_owned(), path: p.to_owned() };
    if let Some(p) = input_path.filter(|p| !p.is_empty()) {
        path(p).ok_or_else(|| bad_path(p))?;
    }
    if let Some(t) = transformer {
        let map = t.input_paths_map.clone().unwrap_or_default();
        for p in map.values() {
            path(p).ok_or_else(|| bad_path(p))?;
        }
        for name in placeholders(&t.input_template) {
            if !map.contains_key(name) && !is_predefined(name) {
                return Err(InvalidInput::Placeholder { target: target.to_owned(), name: name.to_owned() });
            }
        }
    }
    Ok(())
}

fn is_predefined(name: &str) -> bool {
    [RULE_ARN, RULE_NAME, INGESTION_TIME].contains(&name) || WHOLE_EVENT.contains(&name)
}

/// What `<name>` placeholders a template holds.
fn placeholders(template: &str) -> Vec<&str> {
    scan(template)
        .into_iter()
        .filter_map(|piece| if let Piece::Slot { name, .. } = piece { Some(name) } else { None })
        .collect()
}

/// A template cut into literal text and placeholders.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    /// `quoted`: inside a JSON string.
    Slot {
        name: &'a str,
        quoted: bool,
    },
}

fn scan(template: &str) -> Vec<Piece<'_>> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    let mut pieces = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if quoted => escaped = !escaped,
            '"' if !escaped => {
                quoted = !quoted;
            }
            '<' => {
                let rest = &template[i + 1..];
                let len = rest.find(|c: char| !is_name(c)).unwrap_or(rest.len());
                if len > 0 && rest[len..].starts_with('>') {
                    pieces.push(Piece::Text(&template[start..i]));
                    pieces.push(Piece::Slot { name: &rest[..len], quoted });
                    start = i + 1 + len + 1;
                    while chars.peek().is_some_and(|(j, _)| *j < start) {
                        chars.next();
                    }
                }
            }
            _ => {}
        }
        if c != '\\' {
            escaped = false;
        }
    }
    pieces.push(Piece::Text(&template[start..]));
    pieces
}

/// What a rule's target hands to the function for one event.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub event: &'a Value,
    pub rule_arn: &'a str,
    pub rule_name: &'a str,
    /// When the event was accepted (RFC 3339).
    pub ingestion_time: &'a str,
}

/// Fill `t`'s template for the event in `cx`.
pub fn transform(t: &InputTransformer, cx: Context<'_>) -> String {
    let map = t.input_paths_map.clone().unwrap_or_default();
    let mut out = String::new();
    for piece in scan(&t.input_template) {
        let (name, quoted) = match piece {
            Piece::Text(text) => {
                out.push_str(text);
                continue;
            }
            Piece::Slot { name, quoted } => (name, quoted),
        };
        let value = match name {
            RULE_ARN => Value::from(cx.rule_arn),
            RULE_NAME => Value::from(cx.rule_name),
            INGESTION_TIME => Value::from(cx.ingestion_time),
            n if WHOLE_EVENT.contains(&n) => cx.event.clone(),
            n => map.get(n).and_then(|p| select(cx.event, p)).cloned().unwrap_or(Value::Null),
        };
        out.push_str(&render(&value, quoted));
    }
    out
}

/// A value in a template: bare text inside a JSON string, JSON elsewhere.
fn render(value: &Value, quoted: bool) -> String {
    match (value, quoted) {
        (Value::String(s), true) => {
            let json = Value::from(s.as_str()).to_string();
            json[1..json.len() - 1].to_owned()
        }
        (Value::Null, true) => String::new(),
        (other, true) => {
            let json = Value::from(other.to_string()).to_string();
            json[1..json.len() - 1].to_owned()
        }
        (other, false) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cx(event: &Value) -> Context<'_> {
        Context {
            event,
            rule_arn: "arn:aws:events:r:1:rule/r1",
            rule_name: "r1",
            ingestion_time: "2024-01-01T00:00:00Z",
        }
    }

    #[test]
    fn paths_select_parts_of_the_event() {
        let e = json!({"detail": {"items": [{"sku": "a"}, {"sku": "b"}], "odd-key": 1}});
        assert_eq!(select(&e, "$"), Some(&e));
        assert_eq!(select(&e, "$.detail.items[1].sku"), Some(&json!("b")));
        assert_eq!(select(&e, "$.detail['odd-key']"), Some(&json!(1)));
        assert_eq!(select(&e, "$.detail.none"), None);
        assert_eq!(path("detail"), None);
        assert_eq!(path("$..x"), None);
    }

    #[test]
    fn templates_put_strings_bare_inside_quotes_and_json_elsewhere() {
        let e = json!({"detail": {"id": "i-1", "state": "running", "n": 3, "tags": ["a"], "q": "say \"hi\""}});
        let t = |template: &str| InputTransformer {
            input_paths_map: Some(BTreeMap::from([
                ("id".to_owned(), "$.detail.id".to_owned()),
                ("state".to_owned(), "$.detail.state".to_owned()),
                ("n".to_owned(), "$.detail.n".to_owned()),
                ("tags".to_owned(), "$.detail.tags".to_owned()),
                ("q".to_owned(), "$.detail.q".to_owned()),
                ("none".to_owned(), "$.detail.none".to_owned()),
            ])),
            input_template: template.to_owned(),
        };
        let out = transform(
            &t(r#"{"instance": "<id>", "n": <n>, "tags": <tags>, "q": "<q>", "rule": "<aws.events.rule-name>"}"#),
            cx(&e),
        );
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap(),
            json!({"instance": "i-1", "n": 3, "tags": ["a"], "q": "say \"hi\"", "rule": "r1"})
        );
        assert_eq!(transform(&t(r#""<id> is in state <state>""#), cx(&e)), r#""i-1 is in state running""#);
        assert_eq!(transform(&t(r#"{"missing": <none>}"#), cx(&e)), r#"{"missing": null}"#);
        let whole = transform(&t(r#"{"original": <aws.events.event.json>}"#), cx(&e));
        assert_eq!(serde_json::from_str::<Value>(&whole).unwrap()["original"], e);
        assert_eq!(transform(&t("a <b> c"), cx(&e)), "a null c", "an unknown name reads as absent");
    }

    #[test]
    fn definitions_are_checked_as_eventbridge_checks_them() {
        let t = InputTransformer { input_paths_map: None, input_template: r#"{"a": "<notdefinedkey>"}"#.into() };
        assert_eq!(
            check("t1", None, None, Some(&t)).unwrap_err().to_string(),
            "InputTemplate for target t1 contains invalid placeholder notdefinedkey."
        );
        assert_eq!(
            check("t1", Some("{}"), Some("$"), None).unwrap_err().to_string(),
            "Only one of Input, InputPath, or InputTransformer must be provided for target t1."
        );
        assert!(check("t1", Some("{not json"), None, None).is_err());
        assert!(check("t1", None, Some("$.detail"), None).is_ok());
        let ok =
            InputTransformer { input_paths_map: None, input_template: r#"{"arn": "<aws.events.rule-arn>"}"#.into() };
        assert!(check("t1", None, None, Some(&ok)).is_ok());
    }
}
