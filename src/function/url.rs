//! Function URLs: a function (or one of its aliases) reachable over plain
//! HTTP at an address of its own. This is the configuration as stored and
//! as the management API describes it; serving the URLs is
//! [`crate::urls`]'s.

use serde::{Deserialize, Serialize};

use crate::constraints::{self, Checks, Refused};

/// Characters of a URL id (Lambda's: 32 of `[0-9a-z]`).
pub const URL_ID_LEN: usize = 32;

/// Who may call a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthType {
    /// Anyone who can reach the listener.
    #[serde(rename = "NONE")]
    None,
    /// Requests signed (SigV4, service `lambda`) with a key pair the controller accepts.
    #[serde(rename = "AWS_IAM")]
    AwsIam,
}

/// How a URL's answer reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvokeMode {
    #[serde(rename = "BUFFERED")]
    Buffered,
    #[serde(rename = "RESPONSE_STREAM")]
    ResponseStream,
}

/// A URL's CORS settings, in Lambda's wire shape (stored as given).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Cors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
}

impl Cors {
    /// The model's limits on every member.
    fn check(&self, checks: &mut Checks) {
        let headers = self.allow_headers.iter().chain(&self.expose_headers).flatten();
        checks
            .list(&constraints::CORS_ALLOW_HEADERS, self.allow_headers.as_deref())
            .list(&constraints::CORS_EXPOSE_HEADERS, self.expose_headers.as_deref())
            .list(&constraints::CORS_ALLOW_METHODS, self.allow_methods.as_deref())
            .list(&constraints::CORS_ALLOW_ORIGINS, self.allow_origins.as_deref())
            .each(&constraints::CORS_HEADER, headers)
            .each(&constraints::CORS_METHOD, self.allow_methods.iter().flatten())
            .each(&constraints::CORS_ORIGIN, self.allow_origins.iter().flatten())
            .number(&constraints::CORS_MAX_AGE, self.max_age);
    }
}

/// One function URL as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlConfig {
    /// The host name's first label: 32 random `[0-9a-z]`, fixed for the URL's life.
    pub url_id: String,
    pub function: String,
    /// The alias the URL invokes; `None`: the function (`$LATEST`).
    pub alias: Option<String>,
    pub auth_type: AuthType,
    pub cors: Option<Cors>,
    /// `None` until a request sets it: Lambda then reports `BUFFERED` from
    /// Get and List but leaves it out of Create's and Update's answers.
    pub invoke_mode: Option<InvokeMode>,
    pub creation_time: String,
    pub last_modified_time: String,
}

impl UrlConfig {
    /// The mode the URL serves in.
    pub fn mode(&self) -> InvokeMode {
        self.invoke_mode.unwrap_or(InvokeMode::Buffered)
    }
}

/// What CreateFunctionUrlConfig sets and UpdateFunctionUrlConfig changes;
/// `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPatch {
    pub auth_type: Option<AuthType>,
    pub cors: Option<Cors>,
    pub invoke_mode: Option<InvokeMode>,
}

impl UrlPatch {
    /// A patch from the request's members, checked against the model.
    pub fn parse(auth_type: Option<&str>, cors: Option<Cors>, invoke_mode: Option<&str>) -> Result<UrlPatch, Refused> {
        let mut checks = Checks::new();
        checks.one_of(&constraints::URL_AUTH_TYPE, auth_type).one_of(&constraints::URL_INVOKE_MODE, invoke_mode);
        if let Some(cors) = &cors {
            cors.check(&mut checks);
        }
        checks.finish()?;
        Ok(UrlPatch {
            auth_type: auth_type.map(|a| if a == "AWS_IAM" { AuthType::AwsIam } else { AuthType::None }),
            cors,
            invoke_mode: invoke_mode.map(|m| {
                if m == "RESPONSE_STREAM" {
                    InvokeMode::ResponseStream
                } else {
                    InvokeMode::Buffered
                }
            }),
        })
    }
}

/// A fresh URL id: 32 characters of `[0-9a-z]`, uniformly drawn.
pub fn new_url_id() -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut id = String::with_capacity(URL_ID_LEN);
    while id.len() < URL_ID_LEN {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).expect("the OS has randomness");
        // 252 = 7 × 36: rejecting the rest keeps every character equally likely.
        let picked = bytes.iter().filter(|b| **b < 252).map(|b| char::from(ALPHABET[usize::from(*b % 36)]));
        id.extend(picked.take(URL_ID_LEN - id.len()));
    }
    id
}

/// Whether `s` could be a URL id (anything else is never looked up).
pub fn is_url_id(s: &str) -> bool {
    s.len() == URL_ID_LEN && s.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_ids_are_lambdas_shape_and_differ() {
        let (a, b) = (new_url_id(), new_url_id());
        assert!(is_url_id(&a) && is_url_id(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(!is_url_id("0123456789ABCDEFGHIJKLMNOPQRSTUV"));
    }

    #[test]
    fn patches_are_checked_as_aws_does() {
        let p = UrlPatch::parse(Some("AWS_IAM"), None, Some("RESPONSE_STREAM")).unwrap();
        assert_eq!((p.auth_type, p.invoke_mode), (Some(AuthType::AwsIam), Some(InvokeMode::ResponseStream)));
        assert_eq!(
            UrlPatch::parse(Some("NONE"), None, Some("UNKNOWN")),
            Err(Refused::Validation(
                "1 validation error detected: Value 'UNKNOWN' at 'invokeMode' failed to satisfy constraint: Member \
                 must satisfy enum value set: [RESPONSE_STREAM, BUFFERED]"
                    .into()
            ))
        );
        let cors = Cors { max_age: Some(86_401), allow_methods: Some(vec!["OPTIONSX".into()]), ..Cors::default() };
        let Err(Refused::Validation(m)) = UrlPatch::parse(Some("NONE"), Some(cors), None) else { panic!() };
        assert!(m.starts_with("2 validation errors") && m.contains("cors.maxAge"), "{m}");
    }
}
