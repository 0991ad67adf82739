//! The invocation record Lambda sends a destination: what was asked, how it
//! ended and what the function answered, in Lambda's shape (version 1.0), so
//! a destination function reads it as it would on AWS.

use bytes::Bytes;
use serde_json::{json, Value};

/// How an event ended, for its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Success => "Success",
            Condition::RetriesExhausted => "RetriesExhausted",
            Condition::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// What a record says; `response` is the function's last answer (its
/// result, or its error document on failure), absent when it never ran.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub request_id: &'a str,
    /// The source function's qualified ARN (`…:$LATEST`).
    pub function_arn: &'a str,
    pub condition: Condition,
    /// Times the function ran for this event.
    pub invoke_count: u32,
    pub request_payload: &'a [u8],
    pub response: Option<&'a [u8]>,
    /// Unix ms the event ended.
    pub at_ms: i64,
}

impl Record<'_> {
    /// The record as the destination's event.
    pub fn to_json(&self) -> Bytes {
        let mut response_context = json!({ "statusCode": 200, "executedVersion": crate::function::LATEST });
        if self.condition != Condition::Success && self.response.is_some() {
            response_context["functionError"] = "Unhandled".into();
        }
        let mut record = json!({
            "version": "1.0",
            "timestamp": timestamp(self.at_ms),
            "requestContext": {
                "requestId": self.request_id,
                "functionArn": self.function_arn,
                "condition": self.condition.as_str(),
                "approximateInvokeCount": self.invoke_count,
            },
            "requestPayload": document(self.request_payload),
            "responseContext": response_context,
        });
        if let Some(response) = self.response {
            record["responsePayload"] = document(response);
        }
        Bytes::from(record.to_string())
    }
}

/// A payload as JSON; one that is not (a custom runtime may answer
/// anything) travels as a string.
fn document(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// `2019-11-14T18:16:05.568Z`, as Lambda stamps records.
fn timestamp(at_ms: i64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(condition: Condition, response: Option<&'static [u8]>) -> Value {
        let r = Record {
            request_id: "req-1",
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
            condition,
            invoke_count: 3,
            request_payload: br#"{"n": 1}"#,
            response,
            at_ms: 1_573_755_365_568,
        };
        serde_json::from_slice(&r.to_json()).unwrap()
    }

    #[test]
    fn records_have_lambdas_shape() {
        let failed = record(Condition::RetriesExhausted, Some(br#"{"errorMessage":"boom","errorType":"E"}"#));
        assert_eq!(
            failed,
            json!({
                "version": "1.0",
                "timestamp": "2019-11-14T18:16:05.568Z",
                "requestContext": {
                    "requestId": "req-1",
                    "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": 3,
                },
                "requestPayload": {"n": 1},
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                "responsePayload": {"errorMessage": "boom", "errorType": "E"},
            })
        );
        let ok = record(Condition::Success, Some(b"plain text"));
        assert_eq!(ok["responseContext"], json!({"statusCode": 200, "executedVersion": "$LATEST"}));
        assert_eq!(ok["responsePayload"], "plain text");
        let never_ran = record(Condition::EventAgeExceeded, None);
        assert!(never_ran.get("responsePayload").is_none());
        assert!(never_ran["responseContext"].get("functionError").is_none());
    }
}
