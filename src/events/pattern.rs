//! Event patterns with EventBridge's semantics: which events a rule takes.
//!
//! A pattern is a JSON object mirroring the event. A key whose value is an
//! object descends into the event's field of that name; a key whose value
//! is an array lists what the event's field may be, any one sufficing:
//! literal strings, numbers, booleans and `null` (exact), or one of the
//! content filters `prefix`, `suffix`, `equals-ignore-case`, `wildcard`,
//! `anything-but` (a value, a list, a prefix, a suffix, a wildcard, or
//! values ignoring case), `numeric` ranges and `exists`. `$or` lists
//! alternative sub-patterns. Every key of a pattern must match.
//!
//! Arrays in the event are flattened, as EventBridge does: a field matches
//! when any of its elements does, however deep the array. A field the event
//! lacks matches only `{"exists": false}`; `anything-but` needs the field.
//! Patterns are checked when a rule is stored, with EventBridge's reasons.

use serde_json::{Map, Value};

/// A pattern EventBridge would refuse, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Event pattern is not valid. Reason: {0}")]
pub struct InvalidPattern(pub String);

fn invalid<T>(reason: impl Into<String>) -> Result<T, InvalidPattern> {
    Err(InvalidPattern(reason.into()))
}

/// A checked pattern, ready to match.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPattern {
    root: Node,
}

/// One level of a pattern: every field must match, and each `$or` one of
/// its alternatives.
#[derive(Debug, Clone, PartialEq, Default)]
struct Node {
    fields: Vec<(String, Field)>,
    ors: Vec<Vec<Node>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Nested(Node),
    /// Any of these.
    Leaf(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    /// A literal: a string, a number, a boolean or `null`.
    Exact(Value),
    Prefix {
        text: String,
        ignore_case: bool,
    },
    Suffix {
        text: String,
        ignore_case: bool,
    },
    EqualsIgnoreCase(String),
    Wildcard(String),
    AnythingBut(Not),
    /// Every bound must hold.
    Numeric(Vec<(Comparison, f64)>),
    Exists(bool),
}

/// What `anything-but` excludes.
#[derive(Debug, Clone, PartialEq)]
enum Not {
    Values(Vec<Value>),
    Prefix(String),
    Suffix(String),
    IgnoreCase(Vec<String>),
    Wildcard(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Less,
    LessOrEqual,
    Equal,
    Greater,
    GreaterOrEqual,
}

impl EventPattern {
    /// Parse and check a pattern as PutRule and TestEventPattern receive it.
    pub fn parse(text: &str) -> Result<EventPattern, InvalidPattern> {
        let value: Value = serde_json::from_str(text).map_err(|e| InvalidPattern(e.to_string()))?;
        let Value::Object(map) = value else { return invalid("Filter is not an object") };
        Ok(EventPattern { root: node(&map)? })
    }

    /// Whether `event` (the whole envelope) matches.
    pub fn matches(&self, event: &Value) -> bool {
        self.root.matches(&[event])
    }
}

fn node(map: &Map<String, Value>) -> Result<Node, InvalidPattern> {
    let mut out = Node::default();
    for (key, value) in map {
        match (key.as_str(), value) {
            ("$or", Value::Array(alternatives)) => {
                let mut nodes = Vec::new();
                for alternative in alternatives {
                    let Value::Object(m) = alternative else { return invalid("$or must be an array of objects") };
                    nodes.push(node(m)?);
                }
                if nodes.len() < 2 {
                    return invalid("$or must have at least two alternatives");
                }
                out.ors.push(nodes);
            }
            (_, Value::Object(m)) => out.fields.push((key.clone(), Field::Nested(node(m)?))),
            (_, Value::Array(items)) if items.is_empty() => return invalid("Empty arrays are not allowed"),
            (_, Value::Array(items)) => {
                let matchers = items.iter().map(matcher).collect::<Result<_, _>>()?;
                out.fields.push((key.clone(), Field::Leaf(matchers)));
            }
            _ => return invalid(format!("\"{key}\" must be an object or an array")),
        }
    }
    Ok(out)
}

fn matcher(item: &Value) -> Result<Matcher, InvalidPattern> {
    let Value::Object(filter) = item else {
        return match item {
            Value::Array(_) => invalid("Match value must be String, number, true, false, or null"),
            literal => Ok(Matcher::Exact(literal.clone())),
        };
    };
    let mut entries = filter.iter();
    let (Some((kind, value)), None) = (entries.next(), entries.next()) else {
        return invalid("Only one key allowed in match expression");
    };
    match kind.as_str() {
        "prefix" | "suffix" => affix(kind, value),
        "equals-ignore-case" => Ok(Matcher::EqualsIgnoreCase(string(value, "equals-ignore-case")?.to_owned())),
        "wildcard" => Ok(Matcher::Wildcard(wildcard(value)?)),
        "anything-but" => anything_but(value).map(Matcher::AnythingBut),
        "numeric" => numeric(value).map(Matcher::Numeric),
        "exists" => match value {
            Value::Bool(b) => Ok(Matcher::Exists(*b)),
            _ => invalid("exists match pattern must be either true or false."),
        },
        other => invalid(format!("Unrecognized match type {other}")),
    }
}

fn string<'a>(value: &'a Value, kind: &str) -> Result<&'a str, InvalidPattern> {
    value.as_str().ok_or_else(|| InvalidPattern(format!("{kind} match pattern must be a string")))
}

/// `{"prefix": "x"}`, `{"prefix": {"equals-ignore-case": "x"}}`, and suffixes alike.
fn affix(kind: &str, value: &Value) -> Result<Matcher, InvalidPattern> {
    let (text, ignore_case) = match value {
        Value::Object(m) if m.len() == 1 && m.contains_key("equals-ignore-case") => {
            (string(&m["equals-ignore-case"], "equals-ignore-case")?, true)
        }
        Value::Null => return invalid("Null prefix/suffix not allowed"),
        _ => (string(value, kind)?, false),
    };
    let text = text.to_owned();
    Ok(if kind == "prefix" { Matcher::Prefix { text, ignore_case } } else { Matcher::Suffix { text, ignore_case } })
}

fn wildcard(value: &Value) -> Result<String, InvalidPattern> {
    let w = string(value, "wildcard")?;
    if let Some(pos) = w.find("**") {
        return invalid(format!("Consecutive wildcard characters at pos {}", pos + 1));
    }
    Ok(w.to_owned())
}

fn anything_but(value: &Value) -> Result<Not, InvalidPattern> {
    const SHAPE: &str = "Value of anything-but must be an array or single string/number value.";
    match value {
        Value::String(_) | Value::Number(_) => Ok(Not::Values(vec![value.clone()])),
        Value::Array(items) if !items.is_empty() => {
            let same_kind = items.iter().all(Value::is_string) || items.iter().all(Value::is_number);
            if !same_kind {
                return invalid("Inside anything but list, start|null|boolean is not supported.");
            }
            Ok(Not::Values(items.clone()))
        }
        Value::Object(m) if m.len() == 1 => {
            let (kind, inner) = m.iter().next().expect("one entry");
            match kind.as_str() {
                "prefix" => Ok(Not::Prefix(string(inner, "prefix/suffix")?.to_owned())),
                "suffix" => Ok(Not::Suffix(string(inner, "prefix/suffix")?.to_owned())),
                "equals-ignore-case" => Ok(Not::IgnoreCase(strings(inner, "equals-ignore-case")?)),
                "wildcard" => Ok(Not::Wildcard(match inner {
                    Value::Array(items) => items.iter().map(wildcard).collect::<Result<_, _>>()?,
                    one => vec![wildcard(one)?],
                })),
                other => invalid(format!("Unsupported anything-but pattern: {other}")),
            }
        }
        _ => invalid(SHAPE),
    }
}

/// A string or a non-empty list of strings.
fn strings(value: &Value, kind: &str) -> Result<Vec<String>, InvalidPattern> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_owned).ok_or_else(|| {
                    InvalidPattern(format!(
                        "Inside anything-but/{kind} list, number|start|null|boolean is not supported."
                    ))
                })
            })
            .collect(),
        _ => invalid(format!("{kind} match pattern must be a string")),
    }
}

/// `[">", 0, "<=", 5]` or `["=", 3]`: at most one lower and one upper bound.
fn numeric(value: &Value) -> Result<Vec<(Comparison, f64)>, InvalidPattern> {
    let Value::Array(items) = value else { return invalid("Value of numeric must be an array.") };
    if items.is_empty() || items.len() % 2 != 0 {
        return invalid("Value of numeric must be an array of operator and value pairs.");
    }
    let mut bounds = Vec::new();
    let (mut lower, mut upper) = (false, false);
    for pair in items.chunks(2) {
        let op = pair[0].as_str().unwrap_or_default();
        let comparison = match op {
            "<" => Comparison::Less,
            "<=" => Comparison::LessOrEqual,
            "=" => Comparison::Equal,
            ">" => Comparison::Greater,
            ">=" => Comparison::GreaterOrEqual,
            _ => return invalid(format!("Unrecognized numeric range operator: {}", pair[0])),
        };
        let Some(n) = pair[1].as_f64() else { return invalid(format!("Value of {op} must be numeric")) };
        let (is_lower, is_upper) = match comparison {
            Comparison::Greater | Comparison::GreaterOrEqual => (true, false),
            Comparison::Less | Comparison::LessOrEqual => (false, true),
            Comparison::Equal => (true, true),
        };
        if (is_lower && lower) || (is_upper && upper) || (comparison == Comparison::Equal && items.len() > 2) {
            return invalid(format!("Bad numeric range operator: {op}"));
        }
        lower |= is_lower;
        upper |= is_upper;
        bounds.push((comparison, n));
    }
    Ok(bounds)
}

impl Node {
    /// Whether the objects at this level (`here`, flattened) match.
    fn matches(&self, here: &[&Value]) -> bool {
        self.fields.iter().all(|(key, field)| {
            let values = children(here, key);
            match field {
                Field::Nested(node) => node.matches(&values),
                Field::Leaf(matchers) => matchers.iter().any(|m| m.matches(&values)),
            }
        }) && self.ors.iter().all(|alternatives| alternatives.iter().any(|n| n.matches(here)))
    }
}

/// The values of field `key` of each object in `here`, arrays flattened.
fn children<'a>(here: &[&'a Value], key: &str) -> Vec<&'a Value> {
    fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
            other => out.push(other),
        }
    }
    let mut out = Vec::new();
    for value in here {
        if let Some(v) = value.get(key) {
            flatten(v, &mut out);
        }
    }
    out
}

impl Matcher {
    /// Whether a field with these values (none: absent) matches.
    fn matches(&self, values: &[&Value]) -> bool {
        match self {
            Matcher::Exists(wanted) => values.is_empty() != *wanted,
            _ => values.iter().any(|v| self.matches_one(v)),
        }
    }

    fn matches_one(&self, value: &Value) -> bool {
        let text = value.as_str();
        match self {
            Matcher::Exact(literal) => same(literal, value),
            Matcher::Prefix { text: p, ignore_case } => {
                text.is_some_and(|t| if *ignore_case { lower(t).starts_with(&lower(p)) } else { t.starts_with(p) })
            }
            Matcher::Suffix { text: s, ignore_case } => {
                text.is_some_and(|t| if *ignore_case { lower(t).ends_with(&lower(s)) } else { t.ends_with(s) })
            }
            Matcher::EqualsIgnoreCase(s) => text.is_some_and(|t| lower(t) == lower(s)),
            Matcher::Wildcard(w) => text.is_some_and(|t| glob(w.as_bytes(), t.as_bytes())),
            Matcher::AnythingBut(not) => !not.excludes(value),
            Matcher::Numeric(bounds) => value.as_f64().is_some_and(|n| bounds.iter().all(|(c, b)| c.holds(n, *b))),
            Matcher::Exists(_) => true,
        }
    }
}

impl Not {
    fn excludes(&self, value: &Value) -> bool {
        let text = value.as_str();
        match self {
            Not::Values(list) => list.iter().any(|l| same(l, value)),
            Not::Prefix(p) => text.is_some_and(|t| t.starts_with(p.as_str())),
            Not::Suffix(s) => text.is_some_and(|t| t.ends_with(s.as_str())),
            Not::IgnoreCase(list) => text.is_some_and(|t| list.iter().any(|l| lower(l) == lower(t))),
            Not::Wildcard(list) => text.is_some_and(|t| list.iter().any(|w| glob(w.as_bytes(), t.as_bytes()))),
        }
    }
}

impl Comparison {
    fn holds(self, n: f64, bound: f64) -> bool {
        match self {
            Comparison::Less => n < bound,
            Comparison::LessOrEqual => n <= bound,
            Comparison::Equal => n == bound,
            Comparison::Greater => n > bound,
            Comparison::GreaterOrEqual => n >= bound,
        }
    }
}

/// Equal literals; numbers by value (`300` is `3.0e2`), never a string.
fn same(literal: &Value, value: &Value) -> bool {
    match (literal, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// `*` matches any run of characters; `\*` is a literal star.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((b'\\', [c, rest @ ..])) => text.first() == Some(c) && glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "version": "0", "id": "1", "detail-type": "Order Placed", "source": "shop.orders",
            "account": "000000000000", "time": "2024-05-01T10:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:000000000000:instance/i-1", "arn:x:y"],
            "detail": {
                "state": "running", "count": 3, "price": 300, "flag": true, "empty": "", "gone": null,
                "customer": {"tier": "Gold", "address": {"city": "Paris"}},
                "items": [{"sku": "a-1", "qty": 2}, {"sku": "b-7", "qty": 40}],
                "tags": ["red", "blue"], "ip": "10.0.0.7"
            }
        })
    }

    /// `(pattern, matches the event above?)`.
    fn cases() -> Vec<(Value, bool)> {
        vec![
            (json!({"source": ["shop.orders"]}), true),
            (json!({"source": ["shop.other"]}), false),
            (json!({"source": ["x", "shop.orders"]}), true),
            (json!({"detail-type": ["Order Placed"], "source": ["shop.orders"]}), true),
            (json!({"detail-type": ["Order Placed"], "source": ["nope"]}), false),
            (json!({"resources": ["arn:x:y"]}), true),
            (json!({"resources": ["arn:x:z"]}), false),
            (json!({"detail": {"state": ["running"]}}), true),
            (json!({"detail": {"state": ["Running"]}}), false),
            (json!({"detail": {"customer": {"address": {"city": ["Paris"]}}}}), true),
            (json!({"detail": {"customer": {"address": {"city": ["Rome"]}}}}), false),
            (json!({"detail": {"items": {"sku": ["b-7"]}}}), true),
            (json!({"detail": {"items": {"sku": ["c-9"]}}}), false),
            (json!({"detail": {"tags": ["blue"]}}), true),
            (json!({"detail": {"count": [3]}}), true),
            (json!({"detail": {"count": ["3"]}}), false),
            (json!({"detail": {"price": [3.0e2]}}), true),
            (json!({"detail": {"flag": [true]}}), true),
            (json!({"detail": {"flag": ["true"]}}), false),
            (json!({"detail": {"gone": [null]}}), true),
            (json!({"detail": {"missing": [null]}}), false),
            (json!({"detail": {"empty": [""]}}), true),
            (json!({"detail": {"state": [{"prefix": "run"}]}}), true),
            (json!({"detail": {"state": [{"prefix": "RUN"}]}}), false),
            (json!({"detail": {"state": [{"prefix": {"equals-ignore-case": "RUN"}}]}}), true),
            (json!({"detail": {"state": [{"suffix": "ing"}]}}), true),
            (json!({"detail": {"state": [{"suffix": "ed"}]}}), false),
            (json!({"detail": {"state": [{"suffix": {"equals-ignore-case": "ING"}}]}}), true),
            (json!({"detail": {"customer": {"tier": [{"equals-ignore-case": "gOLD"}]}}}), true),
            (json!({"detail": {"customer": {"tier": [{"equals-ignore-case": "silver"}]}}}), false),
            (json!({"detail": {"state": [{"wildcard": "r*n*g"}]}}), true),
            (json!({"detail": {"state": [{"wildcard": "r*x"}]}}), false),
            (json!({"detail": {"state": [{"anything-but": "stopped"}]}}), true),
            (json!({"detail": {"state": [{"anything-but": "running"}]}}), false),
            (json!({"detail": {"state": [{"anything-but": ["stopped", "running"]}]}}), false),
            (json!({"detail": {"state": [{"anything-but": {"prefix": "run"}}]}}), false),
            (json!({"detail": {"state": [{"anything-but": {"prefix": "stop"}}]}}), true),
            (json!({"detail": {"state": [{"anything-but": {"suffix": "ing"}}]}}), false),
            (json!({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["RUNNING"]}}]}}), false),
            (json!({"detail": {"state": [{"anything-but": {"wildcard": "*ed"}}]}}), true),
            (json!({"detail": {"count": [{"anything-but": [1, 2]}]}}), true),
            (json!({"detail": {"count": [{"anything-but": 3}]}}), false),
            (json!({"detail": {"missing": [{"anything-but": "x"}]}}), false),
            (json!({"detail": {"gone": [{"anything-but": "x"}]}}), true),
            (json!({"detail": {"count": [{"numeric": [">", 0, "<=", 5]}]}}), true),
            (json!({"detail": {"count": [{"numeric": [">", 3]}]}}), false),
            (json!({"detail": {"count": [{"numeric": ["=", 3]}]}}), true),
            (json!({"detail": {"items": {"qty": [{"numeric": [">=", 40]}]}}}), true),
            (json!({"detail": {"state": [{"numeric": [">", 0]}]}}), false),
            (json!({"detail": {"state": [{"exists": true}]}}), true),
            (json!({"detail": {"missing": [{"exists": true}]}}), false),
            (json!({"detail": {"missing": [{"exists": false}]}}), true),
            (json!({"detail": {"state": [{"exists": false}]}}), false),
            (json!({"detail": {"nowhere": {"deeper": [{"exists": false}]}}}), true),
            (json!({"detail": {"$or": [{"state": ["stopped"]}, {"count": [{"numeric": ["<", 10]}]}]}}), true),
            (json!({"detail": {"$or": [{"state": ["stopped"]}, {"count": [{"numeric": [">", 10]}]}]}}), false),
            (json!({"$or": [{"source": ["a"]}, {"detail": {"tags": ["red"]}}], "region": ["us-east-1"]}), true),
            (json!({"source": ["shop.orders"], "detail": {"state": ["running"], "count": [4]}}), false),
            (json!({"Source": ["shop.orders"]}), false),
        ]
    }

    #[test]
    fn patterns_match_as_eventbridge_matches() {
        let event = event();
        for (pattern, expected) in cases() {
            let p = EventPattern::parse(&pattern.to_string()).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            assert_eq!(p.matches(&event), expected, "{pattern}");
        }
    }

    #[test]
    fn malformed_patterns_are_refused_with_eventbridges_reasons() {
        let reason = |p: &str| EventPattern::parse(p).unwrap_err().0;
        assert_eq!(reason(r#"["a"]"#), "Filter is not an object");
        assert_eq!(reason(r#"{"source": "a"}"#), r#""source" must be an object or an array"#);
        assert_eq!(reason(r#"{"source": []}"#), "Empty arrays are not allowed");
        assert_eq!(reason(r#"{"a": [{"prefix": 1}]}"#), "prefix match pattern must be a string");
        assert_eq!(reason(r#"{"a": [{"suffix": null}]}"#), "Null prefix/suffix not allowed");
        assert_eq!(reason(r#"{"a": [{"wildcard": 2}]}"#), "wildcard match pattern must be a string");
        assert_eq!(reason(r#"{"a": [{"numeric": 2}]}"#), "Value of numeric must be an array.");
        assert_eq!(reason(r#"{"a": [{"numeric": [">", 0, ">", 1]}]}"#), "Bad numeric range operator: >");
        assert_eq!(reason(r#"{"a": [{"numeric": ["<", "x"]}]}"#), "Value of < must be numeric");
        assert_eq!(reason(r#"{"a": [{"NUMERIC": [">", 1]}]}"#), "Unrecognized match type NUMERIC");
        assert_eq!(
            reason(r#"{"a": [{"anything-but": true}]}"#),
            "Value of anything-but must be an array or single string/number value."
        );
        assert_eq!(reason(r#"{"a": [{"wildcard": "a**b"}]}"#), "Consecutive wildcard characters at pos 2");
        assert!(EventPattern::parse("{'a': 1}").is_err());
        assert_eq!(InvalidPattern("x".into()).to_string(), "Event pattern is not valid. Reason: x");
    }

    #[test]
    fn wildcards_and_escapes() {
        assert!(glob(b"*:event-bus/*", b"arn:aws:events:r:1:event-bus/b"));
        assert!(glob(b"a\\*", b"a*"));
        assert!(!glob(b"a\\*", b"ab"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"a*c", b"abd"));
    }
}
