//! `Schedule` events as EventBridge rules, through the EventBridge API
//! the controller serves (JSON 1.1 on `POST /`): a rule and its one target
//! are written only where they differ from the template.

use anyhow::Result;
use serde_json::{json, Value};

use super::deploy::Change;
use super::Client;
use crate::project::events::Schedule;

/// One EventBridge operation; `None` when the rule does not exist.
async fn call(client: &Client, operation: &str, body: &Value) -> Result<Option<Value>> {
    let req = || {
        client
            .api
            .post("/")
            .header("x-amz-target", format!("AWSEvents.{operation}"))
            .header("content-type", "application/x-amz-json-1.1")
            .body(body.to_string())
    };
    let resp = client.execute(req()).await?;
    if resp.status().is_success() {
        return Ok(Some(resp.json().await.unwrap_or(Value::Null)));
    }
    let text = resp.text().await.unwrap_or_default();
    if text.contains("ResourceNotFoundException") {
        return Ok(None);
    }
    client.send(req()).await?;
    anyhow::bail!("{operation} failed: {text}")
}

/// Make rule `s.rule` fire the function `target_arn`.
pub async fn apply(client: &Client, s: &Schedule, target_id: &str, target_arn: &str) -> Result<Change> {
    let state = if s.enabled { "ENABLED" } else { "DISABLED" };
    let current = call(client, "DescribeRule", &json!({ "Name": s.rule })).await?;
    let mut change = Change::Unchanged;
    let same_rule = current.as_ref().is_some_and(|c| {
        c["ScheduleExpression"].as_str() == Some(&s.expression)
            && c["State"].as_str() == Some(state)
            && c["Description"].as_str().unwrap_or("") == s.description.as_deref().unwrap_or("")
    });
    if !same_rule {
        let mut rule = json!({ "Name": s.rule, "ScheduleExpression": s.expression, "State": state });
        if let Some(d) = &s.description {
            rule["Description"] = json!(d);
        }
        call(client, "PutRule", &rule).await?;
        change = if current.is_some() { Change::Updated } else { Change::Created };
    }
    let mut target = json!({ "Id": target_id, "Arn": target_arn });
    if let Some(input) = &s.input {
        target["Input"] = json!(input);
    }
    let targets = call(client, "ListTargetsByRule", &json!({ "Rule": s.rule })).await?.unwrap_or(Value::Null);
    let listed = targets["Targets"].as_array().cloned().unwrap_or_default();
    if listed != [target.clone()] {
        let stale: Vec<&Value> = listed.iter().map(|t| &t["Id"]).filter(|id| *id != &json!(target_id)).collect();
        if !stale.is_empty() {
            call(client, "RemoveTargets", &json!({ "Rule": s.rule, "Ids": stale })).await?;
        }
        call(client, "PutTargets", &json!({ "Rule": s.rule, "Targets": [target] })).await?;
        change = change.and(Change::Updated);
    }
    Ok(change)
}

/// Remove rule `name` and its targets.
pub async fn delete(client: &Client, name: &str) -> Result<()> {
    let Some(targets) = call(client, "ListTargetsByRule", &json!({ "Rule": name })).await? else { return Ok(()) };
    let ids: Vec<&Value> = targets["Targets"].as_array().into_iter().flatten().map(|t| &t["Id"]).collect();
    if !ids.is_empty() {
        call(client, "RemoveTargets", &json!({ "Rule": name, "Ids": ids })).await?;
    }
    call(client, "DeleteRule", &json!({ "Name": name })).await?;
    Ok(())
}
