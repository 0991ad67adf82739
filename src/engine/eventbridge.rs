//! The event bus's deliveries through the engine: PutEvents' entries and
//! the records Lambda destinations send to the bus become asynchronous
//! invocations of the targets' functions, each committed to the queue
//! before the caller hears back.

use bytes::Bytes;
use chrono::Utc;
use serde_json::Value;

use super::{Engine, EngineError};
use crate::events::{Bus, Delivery, EntryResult, NewEntry};

impl Engine {
    /// The rules and the default bus.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// PutEvents: each entry's event id, or why it was refused. An entry is
    /// answered once every matching target's invocation is on disk.
    pub async fn put_events(&self, entries: Vec<NewEntry>) -> Vec<EntryResult> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let event = match self.bus.event_of(&entry) {
                Ok(event) => event,
                Err(failed) => {
                    out.push(failed);
                    continue;
                }
            };
            let id = event["id"].as_str().unwrap_or_default().to_owned();
            out.push(match self.publish(&event).await {
                Ok(()) => EntryResult::Accepted(id),
                Err(e) => EntryResult::Failed { code: "InternalFailure", message: e.to_string() },
            });
        }
        out
    }

    /// Hand `event` to every target of every rule it matches.
    pub async fn publish(&self, event: &Value) -> Result<(), EngineError> {
        for delivery in self.bus.route(event) {
            self.deliver(&delivery).await?;
        }
        Ok(())
    }

    /// Queue one target's invocation. A function that no longer exists is
    /// the target's failure, logged, as EventBridge's are not the caller's;
    /// only a queue that cannot commit is an error.
    pub async fn deliver(&self, d: &Delivery) -> Result<(), EngineError> {
        match self.invoke_async(&d.function, d.payload.clone(), None).await {
            Ok(request_id) => {
                tracing::debug!(rule = %d.rule, target = %d.target, %request_id, "event delivered to the queue");
                Ok(())
            }
            Err(e @ EngineError::Queue(_)) => Err(e),
            Err(e) => {
                tracing::warn!(rule = %d.rule, target = %d.target, function = %d.function.name, error = %e, "target not invoked");
                Ok(())
            }
        }
    }

    /// The event a destination on the default bus gets for an invocation
    /// record (facts: `source: lambda`).
    pub fn record_event(&self, function_arn: &str, success: bool, record: &Bytes) -> Value {
        let outcome = if success { "Success" } else { "Failure" };
        let detail = serde_json::from_slice(record).unwrap_or(Value::Null);
        let resources = vec![self.bus.bus_arn(), function_arn.to_owned()];
        let detail_type = format!("Lambda Function Invocation Result - {outcome}");
        self.bus.envelope("lambda", &detail_type, resources, detail, Utc::now())
    }
}
