//! A function's `Events`: `Schedule` / `ScheduleV2` become EventBridge
//! rules, `Api` / `HttpApi` become routes of the local API listener; any
//! other source (SQS, S3, DynamoDB…) is one warning, since nothing on the
//! box would ever send those events.

use serde_json::Value;

use super::function::{text, FunctionSpec};
use super::template::{Reader, TemplateError};

/// A `Schedule` or `ScheduleV2` event: one EventBridge rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The event's name in the template.
    pub id: String,
    /// The rule's name (`Name`, else FUNCTION-EVENT).
    pub rule: String,
    pub expression: String,
    pub input: Option<String>,
    pub enabled: bool,
    pub description: Option<String>,
}

/// An `Api` or `HttpApi` event: one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `Api` or `HttpApi`.
    pub kind: String,
    /// Upper case, or `ANY`.
    pub method: String,
    /// `/items/{id}`, or `$default` (an HttpApi event without a path).
    pub path: String,
    /// `1.0` or `2.0`.
    pub payload_format: String,
}

/// Read `Events` (at `path`) into `spec`.
pub(super) fn read(
    reader: &mut Reader<'_>,
    path: &str,
    events: &Value,
    spec: &mut FunctionSpec,
) -> Result<(), TemplateError> {
    for (id, event) in events.as_object().into_iter().flatten() {
        let here = format!("{path}.{id}");
        let kind = event.get("Type").and_then(Value::as_str).unwrap_or("");
        let props = event.get("Properties").cloned().unwrap_or(Value::Null);
        let Some(props) = reader.eval(&format!("{here}.Properties"), &props)? else { continue };
        match kind {
            "Schedule" | "ScheduleV2" => {
                if let Some(s) = schedule(reader, &here, id, kind, &props, &spec.name) {
                    spec.schedules.push(s);
                }
            }
            "Api" | "HttpApi" => spec.routes.push(route(reader, &here, kind, &props)?),
            other => reader.warn(&here, format!("{other} events are not honoured: nothing on lambdabox sends them")),
        }
    }
    Ok(())
}

fn schedule(
    reader: &mut Reader<'_>,
    path: &str,
    id: &str,
    kind: &str,
    props: &Value,
    function: &str,
) -> Option<Schedule> {
    let expression_key = if kind == "Schedule" { "Schedule" } else { "ScheduleExpression" };
    let mut s = Schedule {
        id: id.to_owned(),
        rule: rule_name(function, id),
        expression: String::new(),
        input: None,
        enabled: true,
        description: None,
    };
    for (key, value) in props.as_object().into_iter().flatten() {
        match key.as_str() {
            k if k == expression_key => s.expression = text(value),
            "Input" => s.input = Some(text(value)),
            "Enabled" => s.enabled = value.as_bool().unwrap_or(text(value) == "true"),
            "State" => s.enabled = text(value) == "ENABLED",
            "Name" => s.rule = text(value),
            "Description" => s.description = Some(text(value)),
            "ScheduleExpressionTimezone" if text(value) == "UTC" => {}
            _ => reader.warn(&format!("{path}.Properties.{key}"), "not honoured by lambdabox's schedules"),
        }
    }
    if s.expression.is_empty() {
        reader.warn(path, format!("not scheduled: {expression_key} is missing"));
        return None;
    }
    Some(s)
}

/// FUNCTION-EVENT within EventBridge's 64 characters.
fn rule_name(function: &str, event: &str) -> String {
    let mut name = format!("{function}-{event}");
    name.truncate(64);
    name
}

fn route(reader: &mut Reader<'_>, path: &str, kind: &str, props: &Value) -> Result<Route, TemplateError> {
    let mut route = Route {
        kind: kind.to_owned(),
        method: "ANY".into(),
        path: String::new(),
        payload_format: if kind == "Api" { "1.0" } else { "2.0" }.into(),
    };
    for (key, value) in props.as_object().into_iter().flatten() {
        match key.as_str() {
            "Path" => route.path = text(value),
            "Method" => route.method = text(value).to_ascii_uppercase(),
            "RestApiId" | "ApiId" => {}
            "PayloadFormatVersion" if kind == "HttpApi" => route.payload_format = text(value),
            _ => reader.warn(&format!("{path}.Properties.{key}"), "not honoured by lambdabox's API listener"),
        }
    }
    route.method = route.method.replace("X-AMAZON-APIGATEWAY-ANY-METHOD", "ANY");
    match (kind, route.path.is_empty()) {
        ("Api", true) => return Err(reader.error(path, "an Api event needs Path and Method")),
        (_, true) => route.path = "$default".into(),
        _ => {}
    }
    if !route.path.starts_with('/') && route.path != "$default" {
        return Err(reader.error(&format!("{path}.Properties.Path"), "a route's path starts with /"));
    }
    if route.payload_format != "1.0" && route.payload_format != "2.0" {
        return Err(reader.error(path, format!("PayloadFormatVersion {} is neither 1.0 nor 2.0", route.payload_format)));
    }
    Ok(route)
}
