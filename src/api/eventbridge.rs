//! The EventBridge API (protocol JSON 1.1: `POST /`, `X-Amz-Target:
//! AWSEvents.<Operation>`, `application/x-amz-json-1.1`) on the Lambda
//! API's listener, over [`crate::events::Bus`]; and lambdabox's own
//! `GET /lambdabox/v1/rules` (rules with their next firing) for the CLI.
//!
//! Members are checked against EventBridge's model ([`constraints`]);
//! errors answer `{"__type": CODE, "message": …}`, the shape botocore and
//! the SDKs read JSON 1.1 errors from.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::BodyShape;
use super::paging::page;
use super::{read_limited, ApiError};
use crate::constraints::{self as c, Checks};
use crate::engine::Engine;
use crate::events::bus::{timestamp, MAX_ENTRIES, MAX_PUT_EVENTS_BYTES};
use crate::events::pattern::EventPattern;
use crate::events::{EntryResult, EventsError, Loaded, NewEntry, PutRule, Target, DEFAULT_BUS};

const TARGET_PREFIX: &str = "AWSEvents.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// Largest request body: PutEvents' 256 KB of entries, JSON-escaped.
const MAX_BODY: usize = 2 * 1024 * 1024;
/// Page size of ListRules and ListTargetsByRule when the client does not say.
const DEFAULT_LIMIT: usize = 100;

/// The routes; merged into [`super::app`].
pub fn routes() -> Router<Arc<Engine>> {
    Router::new().route("/", post(dispatch)).route("/lambdabox/v1/rules", get(rules_with_next_firing))
}

type Answer = Result<Value, ApiError>;

/// A 400 with EventBridge's exception name `code`.
fn refuse(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// A member outside EventBridge's model: always a ValidationException
/// there (Lambda's InvalidParameterValueException does not exist here).
fn refused(e: crate::constraints::Refused) -> ApiError {
    ApiError::validation(e.to_string())
}

impl From<EventsError> for ApiError {
    fn from(e: EventsError) -> ApiError {
        let message = e.to_string();
        match e {
            EventsError::NotFound(_) => refuse("ResourceNotFoundException", message),
            EventsError::Validation(_) => ApiError::validation(message),
            EventsError::InvalidPattern(_) => refuse("InvalidEventPatternException", message),
            EventsError::LimitExceeded(_) => refuse("LimitExceededException", message),
            EventsError::Store(_) => {
                tracing::error!(error = %message, "rules store failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalException", message)
            }
        }
    }
}

/// `POST /`: the operation `X-Amz-Target` names.
async fn dispatch(State(engine): State<Arc<Engine>>, headers: HeaderMap, body: Body) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(op) = target.strip_prefix(TARGET_PREFIX) else {
        return ApiError::new(StatusCode::NOT_FOUND, "UnknownOperationException", "Unknown operation").into_response();
    };
    let bytes = match read_limited(body, MAX_BODY, || ApiError::too_large("Request is too large")).await {
        Ok(b) => b,
        Err(e) => return json11(e),
    };
    let answer = operate(&engine, op, &bytes).await;
    match answer {
        Ok(value) => {
            let mut response = (StatusCode::OK, value.to_string()).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
        Err(e) => json11(e),
    }
}

/// An error in JSON 1.1's shape, `{"__type": CODE, "message": …}`.
fn json11(e: ApiError) -> Response {
    ApiError { body: BodyShape::AmzJson, ..e }.into_response()
}

/// Run operation `op` on its body.
async fn operate(engine: &Engine, op: &str, bytes: &[u8]) -> Answer {
    match op {
        "PutRule" => put_rule(engine, parse(bytes)?),
        "DescribeRule" => describe_rule(engine, parse(bytes)?),
        "ListRules" => list_rules(engine, parse(bytes)?),
        "DeleteRule" => rule_op(engine, parse(bytes)?, |bus, name| bus.delete_rule(name)),
        "EnableRule" => rule_op(engine, parse(bytes)?, |bus, name| bus.set_enabled(name, true)),
        "DisableRule" => rule_op(engine, parse(bytes)?, |bus, name| bus.set_enabled(name, false)),
        "PutTargets" => put_targets(engine, parse(bytes)?),
        "RemoveTargets" => remove_targets(engine, parse(bytes)?),
        "ListTargetsByRule" => list_targets(engine, parse(bytes)?),
        "PutEvents" => put_events(engine, parse(bytes)?).await,
        "TestEventPattern" => test_event_pattern(parse(bytes)?),
        _ => Err(refuse("UnknownOperationException", format!("Operation {op} is not supported by lambdabox"))),
    }
}

/// A request body of type `T`; an empty body is `{}`.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { bytes };
    serde_json::from_slice(bytes).map_err(|e| refuse("SerializationException", e.to_string()))
}

/// `Value null at 'FIELD' failed to satisfy constraint: Member must not be null`.
fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ApiError> {
    value.as_deref().ok_or_else(|| {
        ApiError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRuleBody {
    name: Option<String>,
    schedule_expression: Option<String>,
    event_pattern: Option<String>,
    state: Option<String>,
    description: Option<String>,
    role_arn: Option<String>,
    event_bus_name: Option<String>,
}

fn put_rule(engine: &Engine, b: PutRuleBody) -> Answer {
    let name = required(&b.name, "name")?;
    Checks::new()
        .text(&c::RULE_NAME, Some(name))
        .text(&c::SCHEDULE_EXPRESSION, b.schedule_expression.as_deref())
        .text(&c::EVENT_PATTERN, b.event_pattern.as_deref())
        .one_of(&c::RULE_STATE, b.state.as_deref())
        .text(&c::RULE_DESCRIPTION, b.description.as_deref())
        .text(&c::EVENTS_ROLE_ARN, b.role_arn.as_deref())
        .text(&c::EVENT_BUS_NAME, b.event_bus_name.as_deref())
        .finish()
        .map_err(refused)?;
    engine.bus().check_bus(b.event_bus_name.as_deref())?;
    let arn = engine.bus().put_rule(PutRule {
        name: name.to_owned(),
        event_pattern: b.event_pattern,
        schedule_expression: b.schedule_expression,
        state: b.state,
        description: b.description,
        role_arn: b.role_arn,
    })?;
    Ok(json!({ "RuleArn": arn }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleRef {
    name: Option<String>,
    event_bus_name: Option<String>,
}

/// The rule's name, checked, on the default bus.
fn rule_name<'a>(
    engine: &Engine,
    name: &'a Option<String>,
    bus: Option<&str>,
    field: &str,
) -> Result<&'a str, ApiError> {
    let name = required(name, field)?;
    let member = if field == "rule" { &c::TARGETS_RULE } else { &c::RULE_NAME };
    Checks::new().text(member, Some(name)).text(&c::EVENT_BUS_NAME, bus).finish().map_err(refused)?;
    engine.bus().check_bus(bus)?;
    Ok(name)
}

/// A rule as DescribeRule and ListRules answer it.
fn rule_json(engine: &Engine, l: &Loaded) -> Value {
    let r = &l.rule;
    let mut out = json!({
        "Name": r.name,
        "Arn": engine.bus().rule_arn(&r.name),
        "State": r.state,
        "EventBusName": DEFAULT_BUS,
    });
    let optional = [
        ("EventPattern", &r.event_pattern),
        ("ScheduleExpression", &r.schedule_expression),
        ("Description", &r.description),
        ("RoleArn", &r.role_arn),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            out[key] = v.clone().into();
        }
    }
    out
}

fn describe_rule(engine: &Engine, b: RuleRef) -> Answer {
    let name = rule_name(engine, &b.name, b.event_bus_name.as_deref(), "name")?;
    let loaded = engine.bus().get(name)?;
    let mut out = rule_json(engine, &loaded);
    out["CreatedBy"] = engine.realm().account.clone().into();
    Ok(out)
}

fn rule_op(
    engine: &Engine,
    b: RuleRef,
    op: impl FnOnce(&crate::events::Bus, &str) -> Result<(), EventsError>,
) -> Answer {
    let name = rule_name(engine, &b.name, b.event_bus_name.as_deref(), "name")?;
    op(engine.bus(), name)?;
    Ok(json!({}))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBody {
    name_prefix: Option<String>,
    rule: Option<String>,
    event_bus_name: Option<String>,
    next_token: Option<String>,
    limit: Option<u32>,
}

/// A page's size, checked.
fn limit(b: &ListBody) -> Result<usize, ApiError> {
    Checks::new()
        .number(&c::EVENTS_LIMIT, b.limit)
        .text(&c::EVENTS_NEXT_TOKEN, b.next_token.as_deref())
        .text(&c::EVENT_BUS_NAME, b.event_bus_name.as_deref())
        .finish()
        .map_err(refused)?;
    Ok(b.limit.map_or(DEFAULT_LIMIT, |n| n as usize))
}

/// One page of `all` keyed by `key`, as `(items, NextToken)`.
fn paged<'a, T>(all: &'a [T], b: &ListBody, key: impl Fn(&T) -> String) -> Result<(&'a [T], Option<String>), ApiError> {
    let max = limit(b)?;
    page(all, b.next_token.as_deref(), max, key)
        .map_err(|_| ApiError::validation("The NextToken is not one this server issued."))
}

fn list_rules(engine: &Engine, b: ListBody) -> Answer {
    Checks::new().text(&c::NAME_PREFIX, b.name_prefix.as_deref()).finish().map_err(refused)?;
    engine.bus().check_bus(b.event_bus_name.as_deref())?;
    let prefix = b.name_prefix.as_deref().unwrap_or("");
    let all: Vec<Arc<Loaded>> = engine.bus().rules().into_iter().filter(|l| l.rule.name.starts_with(prefix)).collect();
    let (items, next) = paged(&all, &b, |l| l.rule.name.clone())?;
    let rules: Vec<Value> = items.iter().map(|l| rule_json(engine, l)).collect();
    let mut out = json!({ "Rules": rules });
    if let Some(token) = next {
        out["NextToken"] = token.into();
    }
    Ok(out)
}

fn list_targets(engine: &Engine, b: ListBody) -> Answer {
    let name = rule_name(engine, &b.rule, b.event_bus_name.as_deref(), "rule")?;
    let loaded = engine.bus().get(name)?;
    let mut all = loaded.rule.targets.clone();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let (items, next) = paged(&all, &b, |t| t.id.clone())?;
    let mut out = json!({ "Targets": items });
    if let Some(token) = next {
        out["NextToken"] = token.into();
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutTargetsBody {
    rule: Option<String>,
    event_bus_name: Option<String>,
    targets: Option<Vec<Target>>,
}

fn put_targets(engine: &Engine, b: PutTargetsBody) -> Answer {
    let name = rule_name(engine, &b.rule, b.event_bus_name.as_deref(), "rule")?;
    let targets = b.targets.ok_or_else(|| required(&None, "targets").unwrap_err())?;
    check_count(targets.len(), 100, "targets")?;
    let mut checks = Checks::new();
    for (i, t) in targets.iter().enumerate() {
        let n = i + 1;
        checks
            .item(&c::TARGET_ID, n, Some(&t.id))
            .item(&c::TARGET_ARN, n, Some(&t.arn))
            .item(&c::TARGET_ROLE_ARN, n, t.role_arn.as_deref())
            .item(&c::TARGET_INPUT, n, t.input.as_deref())
            .item(&c::TARGET_INPUT_PATH, n, t.input_path.as_deref());
        if let Some(tr) = &t.input_transformer {
            checks.item(&c::INPUT_TEMPLATE, n, Some(&tr.input_template));
            for (key, path) in tr.input_paths_map.iter().flatten() {
                checks.item(&c::INPUT_PATHS_MAP_KEY, n, Some(key)).item(&c::INPUT_PATHS_MAP_VALUE, n, Some(path));
            }
        }
    }
    checks.finish().map_err(refused)?;
    let failed = engine.bus().put_targets(name, targets)?;
    let entries: Vec<Value> =
        failed.iter().map(|f| json!({ "TargetId": f.id, "ErrorCode": f.code, "ErrorMessage": f.message })).collect();
    Ok(json!({ "FailedEntryCount": entries.len(), "FailedEntries": entries }))
}

/// A list of `len` items where the model allows 1 to `max`.
fn check_count(len: usize, max: usize, field: &str) -> Result<(), ApiError> {
    let bound = if len == 0 { "greater than or equal to 1" } else { &format!("less than or equal to {max}") };
    if len == 0 || len > max {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length {bound}"
        )));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RemoveTargetsBody {
    rule: Option<String>,
    event_bus_name: Option<String>,
    ids: Option<Vec<String>>,
}

fn remove_targets(engine: &Engine, b: RemoveTargetsBody) -> Answer {
    let name = rule_name(engine, &b.rule, b.event_bus_name.as_deref(), "rule")?;
    let ids = b.ids.ok_or_else(|| required(&None, "ids").unwrap_err())?;
    check_count(ids.len(), 100, "ids")?;
    Checks::new().each(&c::REMOVE_TARGET_ID, &ids).finish().map_err(refused)?;
    engine.bus().remove_targets(name, &ids)?;
    Ok(json!({ "FailedEntryCount": 0, "FailedEntries": [] }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsBody {
    entries: Option<Vec<EntryBody>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryBody {
    source: Option<String>,
    detail_type: Option<String>,
    detail: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    /// Epoch seconds (what the SDKs send) or an RFC 3339 string.
    time: Option<Value>,
    event_bus_name: Option<String>,
}

async fn put_events(engine: &Engine, b: PutEventsBody) -> Answer {
    let entries = b.entries.ok_or_else(|| required(&None, "entries").unwrap_err())?;
    check_count(entries.len(), MAX_ENTRIES, "entries")?;
    let mut checks = Checks::new();
    for (i, e) in entries.iter().enumerate() {
        checks.text(&c::EVENT_BUS_NAME, e.event_bus_name.as_deref());
        for r in &e.resources {
            checks.item(&c::EVENT_RESOURCE, i + 1, Some(r));
        }
    }
    checks.finish().map_err(refused)?;
    let entries: Vec<NewEntry> = entries.into_iter().map(entry).collect::<Result<_, _>>()?;
    if entries.iter().map(NewEntry::size).sum::<usize>() > MAX_PUT_EVENTS_BYTES {
        return Err(ApiError::validation("Total size of the entries in the request is over the limit."));
    }
    let results = engine.put_events(entries).await;
    let failed = results.iter().filter(|r| matches!(r, EntryResult::Failed { .. })).count();
    let answers: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            EntryResult::Accepted(id) => json!({ "EventId": id }),
            EntryResult::Failed { code, message } => json!({ "ErrorCode": code, "ErrorMessage": message }),
        })
        .collect();
    Ok(json!({ "FailedEntryCount": failed, "Entries": answers }))
}

fn entry(e: EntryBody) -> Result<NewEntry, ApiError> {
    let time = match &e.time {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            let ms = n.as_f64().map(|s| (s * 1000.0) as i64);
            Some(ms.and_then(chrono::DateTime::from_timestamp_millis).ok_or_else(bad_time)?)
        }
        Some(Value::String(s)) => Some(chrono::DateTime::parse_from_rfc3339(s).map_err(|_| bad_time())?.to_utc()),
        Some(_) => return Err(bad_time()),
    };
    Ok(NewEntry {
        source: e.source,
        detail_type: e.detail_type,
        detail: e.detail,
        resources: e.resources,
        time,
        event_bus_name: e.event_bus_name,
    })
}

fn bad_time() -> ApiError {
    refuse("SerializationException", "Time must be a timestamp (epoch seconds or RFC 3339)")
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TestBody {
    event_pattern: Option<String>,
    event: Option<String>,
}

/// The envelope members EventBridge requires of TestEventPattern's event.
const TEST_EVENT_FIELDS: [&str; 6] = ["id", "account", "source", "time", "region", "detail-type"];

fn test_event_pattern(b: TestBody) -> Answer {
    let pattern = required(&b.event_pattern, "eventPattern")?;
    let event = required(&b.event, "event")?;
    Checks::new().text(&c::EVENT_PATTERN, Some(pattern)).finish().map_err(refused)?;
    let pattern = EventPattern::parse(pattern).map_err(EventsError::from)?;
    let event: Value = serde_json::from_str(event)
        .ok()
        .filter(|e: &Value| TEST_EVENT_FIELDS.iter().all(|f| e.get(f).is_some()))
        .ok_or_else(|| ApiError::validation("Parameter Event is not valid."))?;
    Ok(json!({ "Result": pattern.matches(&event) }))
}

/// `lambdabox rules`: every rule with its next firing (schedule rules).
async fn rules_with_next_firing(State(engine): State<Arc<Engine>>) -> Response {
    let bus = engine.bus();
    let rules: Vec<Value> = bus
        .rules()
        .iter()
        .map(|l| {
            let mut r = rule_json(&engine, l);
            r["Targets"] = l.rule.targets.len().into();
            if let Some(next) = bus.next_firing(l) {
                r["NextFiring"] = timestamp(next).into();
            }
            r
        })
        .collect();
    Json(json!({ "Rules": rules })).into_response()
}
