//! AWS error responses: status, `x-amzn-ErrorType` header and a JSON body
//! with `Type` and the message, under the key AWS's model gives that
//! exception (`Message` for ResourceNotFoundException and ServiceException,
//! `message` for the rest; authentication failures: `message` alone), the
//! shape botocore and the AWS SDKs parse.
//! [`From<EngineError>`] is the one place engine failures become AWS codes.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::constraints::Refused;
use crate::engine::EngineError;

/// Exceptions whose message member AWS's model spells `Message`.
const CAPITALISED_MESSAGE: &[&str] = &["ResourceNotFoundException", "ServiceException"];

/// One AWS error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// The exception name, e.g. `ResourceNotFoundException`.
    pub code: &'static str,
    pub message: String,
    /// TooManyRequestsException's `Reason`.
    pub reason: Option<&'static str>,
    /// What the body holds besides the message's key.
    pub body: BodyShape,
}

/// The body's shape, by who answers on AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyShape {
    /// The service: `Type` and the message.
    Typed,
    /// Before any operation ran (authentication): AWS's front end sends
    /// `message` alone, without `Type`.
    Untyped,
    /// `AccessDeniedException` for another account's ARN: `{"Message": null}`.
    NoMessage,
    /// A JSON 1.1 service's (EventBridge's): `{"__type": CODE, "message": …}`.
    AmzJson,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), reason: None, body: BodyShape::Typed }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidParameterValueException", message)
    }

    pub fn invalid_content(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidRequestContentException", message)
    }

    pub fn too_large(message: impl Into<String>) -> ApiError {
        // AWS's name for it, not the modelled RequestTooLargeException.
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLargeException", message)
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    /// `User` for the caller's mistakes, `Service` for ours.
    fn fault(&self) -> &'static str {
        if self.status.is_server_error() {
            "Service"
        } else {
            "User"
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let message = e.to_string();
        match e {
            EngineError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message),
            EngineError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "ResourceConflictException", message),
            EngineError::InvalidParameter(_) => ApiError::invalid_parameter(message),
            EngineError::Validation(_) => ApiError::validation(message),
            EngineError::AccessDenied => ApiError {
                body: BodyShape::NoMessage,
                ..ApiError::new(StatusCode::FORBIDDEN, "AccessDeniedException", message)
            },
            EngineError::InvalidRequestContent(_) => ApiError::invalid_content(message),
            EngineError::RequestTooLarge(_) => ApiError::too_large(message),
            EngineError::Throttled(t) => ApiError {
                reason: Some(t.reason()),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", message)
            },
            EngineError::PreconditionFailed(_) => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, "PreconditionFailedException", message)
            }
            EngineError::ProvisionedNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "ProvisionedConcurrencyConfigNotFoundException", message)
            }
            // Listed one by one so that a new variant needs a decision here.
            EngineError::Store(_)
            | EngineError::Code(_)
            | EngineError::Pool(_)
            | EngineError::Image(_)
            | EngineError::ImageGone { .. }
            | EngineError::Logs(_)
            | EngineError::Queue(_)
            | EngineError::Task { .. }
            | EngineError::Busy(_) => {
                tracing::error!(error = %message, cause = ?e, "service error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", message)
            }
        }
    }
}

impl From<Refused> for ApiError {
    fn from(e: Refused) -> ApiError {
        ApiError::from(EngineError::from(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let key = if CAPITALISED_MESSAGE.contains(&self.code) { "Message" } else { "message" };
        let mut body = match self.body {
            BodyShape::Typed => serde_json::json!({ "Type": self.fault(), key: self.message }),
            BodyShape::Untyped => serde_json::json!({ "message": self.message }),
            BodyShape::NoMessage => serde_json::json!({ "Message": null }),
            BodyShape::AmzJson => serde_json::json!({ "__type": self.code, "message": self.message }),
        };
        let content_type = match self.body {
            BodyShape::AmzJson => "application/x-amz-json-1.1",
            _ => "application/json",
        };
        if let Some(reason) = self.reason {
            body["Reason"] = reason.into();
        }
        let mut response = (self.status, body.to_string()).into_response();
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            // Seconds; clients back off and retry.
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_have_aws_shape() {
        let r = ApiError::from(EngineError::NotFound("Function not found: x".into())).into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()["x-amzn-errortype"], "ResourceNotFoundException");
        let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!({"Type": "User", "Message": "Function not found: x"}));
        let r = ApiError::from(EngineError::Throttled(crate::pool::Throttle::Reserved)).into_response();
        assert_eq!((r.status().as_u16(), r.headers()["retry-after"].to_str().unwrap()), (429, "1"));
        let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["Reason"], "ReservedFunctionConcurrentInvocationLimitExceeded");
        let r = ApiError::from(EngineError::Code(std::io::Error::other("disk full")));
        assert_eq!((r.status.as_u16(), r.fault()), (500, "Service"));
    }
}
