//! Checking a request's SigV4 signature, in two steps so that a request
//! that cannot be valid is refused before its body is read:
//! [`Verifier::claim`] parses the `Authorization` header (or a presigned
//! URL's query) and checks the key, scope and clock; [`Claim::verify`] then
//! checks the signature over the payload hash.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::credentials::{KeyPair, KeyRing};
use super::sigv4::{self, RequestParts, Scope, SigningKey, ALGORITHM, AMZ_DATE_FORMAT, TERMINATOR};

/// The service name credential scopes carry: Lambda's API, and the
/// EventBridge API served on the same listener.
pub const SERVICE: &str = "lambda";
const SERVICES: [&str; 2] = [SERVICE, "events"];
/// How far a request's time may be from the controller's, either way.
pub const MAX_SKEW: TimeDelta = TimeDelta::minutes(5);
/// Longest validity of a presigned URL (`X-Amz-Expires`), a week.
pub const MAX_EXPIRES_SECS: i64 = 604_800;

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. \
                        Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Why a request is refused; the message is what AWS answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header and no presigned query.
    #[error("Missing Authentication Token")]
    Missing,
    /// A signature that lacks a part or cannot be parsed.
    #[error("{0}")]
    Incomplete(String),
    /// An access key the controller does not know.
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// A wrong signature, scope, clock or payload hash.
    #[error("{0}")]
    Invalid(String),
}

impl AuthError {
    /// The `x-amzn-ErrorType` AWS answers with.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => Self::CODES[0],
            AuthError::Incomplete(_) => Self::CODES[1],
            AuthError::UnknownKey => Self::CODES[2],
            AuthError::Invalid(_) => Self::CODES[3],
        }
    }

    /// Every [`AuthError::code`], for clients that tell a refused signature
    /// from other errors.
    pub const CODES: [&'static str; 4] = [
        "MissingAuthenticationTokenException",
        "IncompleteSignatureException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
    ];
}

/// What the signature covers of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// The client declared this hash (`X-Amz-Content-Sha256`): the signature
    /// can be checked first, and the body must then match it.
    Declared(String),
    /// Not covered: a presigned URL.
    Unsigned,
    /// The signature covers the body's SHA-256, to be computed first.
    Body,
}

/// The key pairs a controller accepts, and the rules it checks them by.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeyRing,
    derived: Arc<Mutex<DerivedKeys>>,
}

/// Signing keys already derived, by access key id and scope. Deriving one
/// is four HMACs, and a client signs every request of a day in one scope;
/// AWS's SDKs keep theirs for the same reason. Each entry holds the secret
/// it came from, so a key pair replaced under the same id is derived anew.
type DerivedKeys = HashMap<(String, Scope), (String, SigningKey)>;

/// Entries kept at most: scopes change daily, so a full cache is cleared.
const MAX_DERIVED: usize = 64;

/// A request's parsed signature, with the key it names; its scope and time
/// are checked already.
#[derive(Debug)]
pub struct Claim<'v> {
    verifier: &'v Verifier,
    key: &'v KeyPair,
    scope: Scope,
    amz_date: String,
    signed_headers: Vec<String>,
    signature: String,
    /// The query pairs signed (a presigned URL's without its signature).
    query: Vec<(Vec<u8>, Vec<u8>)>,
    payload: Payload,
}

/// The signature parameters, from either place they travel.
struct Params {
    credential: String,
    signed_headers: String,
    signature: String,
    amz_date: String,
    /// Presigned URLs only: their validity in seconds.
    expires: Option<i64>,
}

impl Verifier {
    pub fn new(keys: KeyRing) -> Verifier {
        Verifier { keys, derived: Arc::default() }
    }

    /// `key`'s signing key for `scope`, derived once.
    fn signing_key(&self, key: &KeyPair, scope: &Scope) -> SigningKey {
        let mut derived = self.derived.lock().expect("derived keys");
        let id = (key.access_key_id().to_owned(), scope.clone());
        if let Some((secret, signing)) = derived.get(&id) {
            if secret == key.secret() {
                return signing.clone();
            }
        }
        if derived.len() >= MAX_DERIVED {
            derived.clear();
        }
        let signing = SigningKey::derive(key.secret(), scope);
        derived.insert(id, (key.secret().to_owned(), signing.clone()));
        signing
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Everything that can be checked before the body is read.
    pub fn claim(&self, parts: &RequestParts<'_>, now: DateTime<Utc>) -> Result<Claim<'_>, AuthError> {
        let mut query = sigv4::query_pairs(parts.query);
        let presigned = query.iter().any(|(k, _)| k == b"X-Amz-Algorithm");
        let params = match (parts.headers.get("authorization"), presigned) {
            (Some(_), true) => {
                return Err(AuthError::Incomplete(
                    "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".into(),
                ))
            }
            (Some(value), false) => header_params(&String::from_utf8_lossy(value.as_bytes()), parts)?,
            (None, true) => query_params(&query)?,
            (None, false) => return Err(AuthError::Missing),
        };
        let scope = scope(&params.credential, &params.amz_date)?;
        let signed_headers: Vec<String> = params.signed_headers.split(';').map(str::to_owned).collect();
        check_signed_headers(&signed_headers, presigned)?;
        let id = params.credential.split('/').next().unwrap_or_default();
        let key = self.keys.get(id).ok_or(AuthError::UnknownKey)?;
        check_time(&params.amz_date, params.expires, now)?;
        let payload = payload(parts, presigned)?;
        if presigned {
            query.retain(|(k, _)| k != b"X-Amz-Signature");
        }
        let (amz_date, signature) = (params.amz_date, params.signature);
        Ok(Claim { verifier: self, key, scope, amz_date, signed_headers, signature, query, payload })
    }
}

impl Claim<'_> {
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The access key id the request was signed with.
    pub fn access_key_id(&self) -> &str {
        self.key.access_key_id()
    }

    /// Check the signature; `payload_hash` is the declared hash, or the
    /// body's, or `UNSIGNED-PAYLOAD` (see [`Claim::payload`]). A mismatch
    /// answers, like AWS, with the canonical request and string to sign the
    /// signature should have covered, for the client's author to compare.
    pub fn verify(&self, parts: &RequestParts<'_>, payload_hash: &str) -> Result<(), AuthError> {
        let canonical = sigv4::canonical_request(parts, &self.query, &self.signed_headers, payload_hash);
        let string_to_sign = sigv4::string_to_sign(&self.amz_date, &self.scope, &canonical);
        if self.verifier.signing_key(self.key, &self.scope).verify(&string_to_sign, &self.signature) {
            return Ok(());
        }
        Err(AuthError::Invalid(format!(
            "{MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n\
             The String-to-Sign should have been\n'{string_to_sign}'\n"
        )))
    }
}

/// `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`, and the
/// request time from `X-Amz-Date`, else `Date`.
fn header_params(value: &str, parts: &RequestParts<'_>) -> Result<Params, AuthError> {
    let (algorithm, rest) = value.trim().split_once(char::is_whitespace).unwrap_or((value.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!(
            "Unsupported Authorization Type '{algorithm}': sign requests with {ALGORITHM} (SigV4)."
        )));
    }
    let field = |name: &str| {
        rest.split(',').filter_map(|p| p.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.to_owned())
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let amz_date = match (header("x-amz-date"), header("date")) {
        (Some(d), _) => Some(d.to_owned()),
        (None, Some(d)) => Some(
            DateTime::parse_from_rfc2822(d)
                .map_err(|_| AuthError::Incomplete(format!("Date header '{d}' is not an RFC 1123 date.")))?
                .with_timezone(&Utc)
                .format(AMZ_DATE_FORMAT)
                .to_string(),
        ),
        (None, None) => None,
    };
    let (credential, signed_headers, signature) = (field("Credential"), field("SignedHeaders"), field("Signature"));
    let mut missing = Vec::new();
    for (name, value) in [("Credential", &credential), ("Signature", &signature), ("SignedHeaders", &signed_headers)] {
        if value.is_none() {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if amz_date.is_none() {
        missing.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into());
    }
    match (credential, signed_headers, signature, amz_date) {
        (Some(credential), Some(signed_headers), Some(signature), Some(amz_date)) => {
            Ok(Params { credential, signed_headers, signature, amz_date, expires: None })
        }
        _ => Err(AuthError::Incomplete(missing.join(" "))),
    }
}

/// A presigned URL's `X-Amz-*` query parameters.
fn query_params(query: &[(Vec<u8>, Vec<u8>)]) -> Result<Params, AuthError> {
    let get = |name: &str| {
        query.iter().find(|(k, _)| k == name.as_bytes()).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let names = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"];
    let mut values = Vec::new();
    for name in names.into_iter().chain(["X-Amz-Expires"]) {
        values.push(get(name).ok_or_else(|| {
            AuthError::Incomplete(format!(
                "AWS query-string parameters must include '{name}'. Re-examine the query-string parameters."
            ))
        })?);
    }
    let [algorithm, credential, signature, signed_headers, amz_date, expires] =
        <[String; 6]>::try_from(values).expect("six names");
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!("X-Amz-Algorithm only supports '{ALGORITHM}'.")));
    }
    let expires = expires.parse::<i64>().ok().filter(|s| (1..=MAX_EXPIRES_SECS).contains(s)).ok_or_else(|| {
        AuthError::Incomplete(format!("X-Amz-Expires must be a number of seconds from 1 to {MAX_EXPIRES_SECS}."))
    })?;
    Ok(Params { credential, signed_headers, signature, amz_date, expires: Some(expires) })
}

/// `ID/DATE/REGION/SERVICE/aws4_request`, its date the request's, its
/// service `lambda` (or `events`); any region.
fn scope(credential: &str, amz_date: &str) -> Result<Scope, AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [id, date, region, service, terminator] = parts[..] else {
        return Err(AuthError::Incomplete(format!(
            "Credential must have the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/{TERMINATOR}, not '{credential}'."
        )));
    };
    if id.is_empty() {
        return Err(AuthError::Incomplete("Credential must start with an access key id.".into()));
    }
    if terminator != TERMINATOR {
        return Err(AuthError::Invalid(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'. "
        )));
    }
    if !SERVICES.contains(&service) {
        return Err(AuthError::Invalid(format!("Credential should be scoped to correct service: '{SERVICE}'. ")));
    }
    if region.is_empty() {
        return Err(AuthError::Invalid("Credential should be scoped to a valid region. ".into()));
    }
    let day = amz_date.get(..8).unwrap_or(amz_date);
    if date != day {
        return Err(AuthError::Invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '{date}' != '{day}', from '{amz_date}'."
        )));
    }
    Ok(Scope { date: date.into(), region: region.into(), service: service.into() })
}

/// `host` must be signed (so a signature is good for one server only), and
/// for header signatures the header that carries the time.
fn check_signed_headers(signed: &[String], presigned: bool) -> Result<(), AuthError> {
    let has = |name: &str| signed.iter().any(|h| h.eq_ignore_ascii_case(name));
    if !has("host") {
        return Err(AuthError::Incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization.".into()));
    }
    if !presigned && !has("x-amz-date") && !has("date") {
        return Err(AuthError::Incomplete(
            "'X-Amz-Date' or 'Date' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    Ok(())
}

/// Within five minutes of `now` either way; a presigned URL also no later
/// than its date plus `X-Amz-Expires`.
fn check_time(amz_date: &str, expires: Option<i64>, now: DateTime<Utc>) -> Result<(), AuthError> {
    let at = parse_amz_date(amz_date).ok_or_else(|| {
        AuthError::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })?;
    let fmt = |t: DateTime<Utc>| t.format(AMZ_DATE_FORMAT).to_string();
    if at > now + MAX_SKEW {
        return Err(AuthError::Invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
            fmt(now + MAX_SKEW),
            fmt(now)
        )));
    }
    match expires {
        None if at < now - MAX_SKEW => Err(AuthError::Invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
            fmt(now - MAX_SKEW),
            fmt(now)
        ))),
        Some(secs) if at + TimeDelta::seconds(secs) < now => Err(AuthError::Invalid(format!(
            "Request has expired: X-Amz-Date {amz_date} plus X-Amz-Expires {secs} s is earlier than {}.",
            fmt(now)
        ))),
        _ => Ok(()),
    }
}

/// `YYYYMMDDTHHMMSSZ` ([`AMZ_DATE_FORMAT`]), read by hand: it is on every
/// request, and chrono's general format parser costs more than the rest of
/// the check.
fn parse_amz_date(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(4..6)?, num(6..8)?)?;
    Some(date.and_hms_opt(num(9..11)?, num(11..13)?, num(13..15)?)?.and_utc())
}

/// What the signature says of the body. Header signatures must cover it: a
/// header-signed `UNSIGNED-PAYLOAD` would let anyone who sees one request
/// replay it with another body, so only presigned URLs may leave it out.
fn payload(parts: &RequestParts<'_>, presigned: bool) -> Result<Payload, AuthError> {
    if presigned {
        return Ok(Payload::Unsigned);
    }
    let declared =
        parts.headers.get("x-amz-content-sha256").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match declared {
        None => Ok(Payload::Body),
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(Payload::Declared(h)),
        Some(h) => Err(AuthError::Invalid(format!(
            "x-amz-content-sha256 '{h}' is not accepted: send the hex SHA-256 of the body (UNSIGNED-PAYLOAD \
             only in presigned URLs)."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sign;
    use crate::auth::sigv4::hex_sha256;
    use axum::http::{HeaderMap, HeaderValue};
    use chrono::TimeZone;

    const SECRET: &str = "secretsecretsecretsecret";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    }

    fn verifier() -> Verifier {
        let keys = vec![KeyPair::new("AKIAGOOD", SECRET).unwrap(), KeyPair::new("AKIAOTHER", &"o".repeat(20)).unwrap()];
        Verifier::new(KeyRing::new(keys).unwrap())
    }

    /// A request as the server would see it: method, raw path and query, headers.
    struct Wire {
        method: String,
        path: String,
        query: Option<String>,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    impl Wire {
        fn parts(&self) -> RequestParts<'_> {
            RequestParts {
                method: &self.method,
                path: &self.path,
                query: self.query.as_deref(),
                headers: &self.headers,
            }
        }
    }

    /// A request signed by [`sign::sign`] at `at` with `key`, as it arrives.
    fn signed(url: &str, body: &[u8], key: &KeyPair, at: DateTime<Utc>) -> Wire {
        let client = reqwest::Client::new();
        let mut request = client.post(url).header("x-amz-log-type", "Tail").body(body.to_vec()).build().unwrap();
        sign::sign(&mut request, key, "eu-west-1", at).unwrap();
        let url = request.url();
        Wire {
            method: request.method().to_string(),
            path: url.path().to_owned(),
            query: url.query().map(str::to_owned),
            headers: request.headers().clone(),
            body: body.to_vec(),
        }
    }

    /// Both steps, hashing the body when the claim asks for it.
    fn check(v: &Verifier, wire: &Wire, at: DateTime<Utc>) -> Result<(), AuthError> {
        let claim = v.claim(&wire.parts(), at)?;
        let hash = match claim.payload() {
            Payload::Declared(h) if *h != hex_sha256(&wire.body) => {
                return Err(AuthError::Invalid("declared hash differs".into()))
            }
            Payload::Declared(h) => h.clone(),
            Payload::Unsigned => sigv4::UNSIGNED_PAYLOAD.to_owned(),
            Payload::Body => hex_sha256(&wire.body),
        };
        claim.verify(&wire.parts(), &hash)
    }

    const ARN_URL: &str =
        "http://127.0.0.1:9000/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A0%3Afunction%3Af/invocations?Qualifier=$LATEST";

    fn good() -> KeyPair {
        KeyPair::new("AKIAGOOD", SECRET).unwrap()
    }

    #[test]
    fn signed_requests_verify_and_any_change_breaks_them() {
        let v = verifier();
        let wire = signed(ARN_URL, br#"{"a":1}"#, &good(), now());
        check(&v, &wire, now()).expect("a signed request verifies");
        assert_eq!(v.claim(&wire.parts(), now()).unwrap().access_key_id(), "AKIAGOOD");

        let mut tampered = signed(ARN_URL, br#"{"a":1}"#, &good(), now());
        tampered.body = br#"{"a":2}"#.to_vec();
        assert!(check(&v, &tampered, now()).is_err(), "another body");
        let mut tampered = signed(ARN_URL, b"{}", &good(), now());
        tampered.path = tampered.path.replace("function%3Af", "function%3Ag");
        assert!(matches!(check(&v, &tampered, now()), Err(AuthError::Invalid(m)) if m.starts_with(MISMATCH)));
        let mut tampered = signed(ARN_URL, b"{}", &good(), now());
        tampered.query = Some("Qualifier=other".into());
        assert!(check(&v, &tampered, now()).is_err(), "another query");
        let mut tampered = signed(ARN_URL, b"{}", &good(), now());
        tampered.headers.insert("x-amz-log-type", HeaderValue::from_static("None"));
        assert!(check(&v, &tampered, now()).is_err(), "another signed header");
        let mut tampered = signed(ARN_URL, b"{}", &good(), now());
        tampered.headers.insert("host", HeaderValue::from_static("127.0.0.1:9001"));
        assert!(check(&v, &tampered, now()).is_err(), "another host");
    }

    #[test]
    fn body_hashes_are_computed_when_not_declared() {
        let v = verifier();
        let mut wire = signed(ARN_URL, b"{}", &good(), now());
        // As the AWS SDKs sign: no x-amz-content-sha256; the hash is the body's.
        wire.headers.remove("x-amz-content-sha256");
        let claim = v.claim(&wire.parts(), now()).unwrap();
        assert_eq!(claim.payload(), &Payload::Body);
        assert!(claim.verify(&wire.parts(), &hex_sha256(b"{}")).is_err(), "the header was signed, now missing");
    }

    #[test]
    fn unknown_keys_wrong_secrets_and_missing_signatures() {
        let v = verifier();
        let stranger = KeyPair::new("AKIASTRANGER", SECRET).unwrap();
        assert_eq!(check(&v, &signed(ARN_URL, b"{}", &stranger, now()), now()), Err(AuthError::UnknownKey));
        let wrong = KeyPair::new("AKIAGOOD", "wrongwrongwrongwrong").unwrap();
        let err = check(&v, &signed(ARN_URL, b"{}", &wrong, now()), now()).unwrap_err();
        assert_eq!(err.code(), "InvalidSignatureException");
        assert!(err.to_string().contains("\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n"), "{err}");
        let mut unsigned = signed(ARN_URL, b"{}", &good(), now());
        unsigned.headers.remove("authorization");
        assert_eq!(check(&v, &unsigned, now()), Err(AuthError::Missing));
        assert_eq!(AuthError::Missing.to_string(), "Missing Authentication Token");
        assert_eq!(AuthError::Missing.code(), "MissingAuthenticationTokenException");
    }

    #[test]
    fn clocks_may_differ_by_five_minutes() {
        let v = verifier();
        let wire = signed(ARN_URL, b"{}", &good(), now());
        check(&v, &wire, now() + TimeDelta::minutes(5)).expect("5 minutes late is fine");
        check(&v, &wire, now() - TimeDelta::minutes(5)).expect("5 minutes early is fine");
        let late = check(&v, &wire, now() + TimeDelta::minutes(6)).unwrap_err();
        assert_eq!(
            late.to_string(),
            "Signature expired: 20250301T120000Z is now earlier than 20250301T120100Z (20250301T120600Z - 5 min.)"
        );
        let early = check(&v, &wire, now() - TimeDelta::minutes(6)).unwrap_err();
        assert_eq!(
            early.to_string(),
            "Signature not yet current: 20250301T120000Z is still later than 20250301T115900Z (20250301T115400Z + 5 min.)"
        );
    }

    fn with_authorization(value: &str) -> Wire {
        let mut wire = signed(ARN_URL, b"{}", &good(), now());
        wire.headers.insert("authorization", HeaderValue::from_str(value).unwrap());
        wire
    }

    #[test]
    fn malformed_signatures_say_what_is_missing() {
        let v = verifier();
        let err = check(&v, &with_authorization("AWS4-HMAC-SHA256 Signature=ab"), now()).unwrap_err();
        assert_eq!(err.code(), "IncompleteSignatureException");
        assert_eq!(
            err.to_string(),
            "Authorization header requires 'Credential' parameter. Authorization header requires 'SignedHeaders' parameter."
        );
        let err = check(&v, &with_authorization("Bearer abc"), now()).unwrap_err();
        assert_eq!(err.code(), "IncompleteSignatureException");
        let scope = |credential: &str, signed: &str| {
            format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}, Signature=00")
        };
        let err =
            check(&v, &with_authorization(&scope("AKIAGOOD/20250301/x/s3/aws4_request", "host;x-amz-date")), now());
        assert_eq!(err.unwrap_err().to_string(), "Credential should be scoped to correct service: 'lambda'. ");
        let err =
            check(&v, &with_authorization(&scope("AKIAGOOD/20250302/x/lambda/aws4_request", "host;x-amz-date")), now());
        assert!(err.unwrap_err().to_string().starts_with("Date in Credential scope does not match"));
        let err =
            check(&v, &with_authorization(&scope("AKIAGOOD/20250301/x/lambda/aws4_request", "x-amz-date")), now());
        assert_eq!(err.unwrap_err().code(), "IncompleteSignatureException", "host must be signed");
        let err = check(&v, &with_authorization(&scope("AKIAGOOD", "host;x-amz-date")), now());
        assert_eq!(err.unwrap_err().code(), "IncompleteSignatureException");
    }

    #[test]
    fn header_signatures_must_cover_the_body() {
        let v = verifier();
        let mut wire = signed(ARN_URL, b"{}", &good(), now());
        wire.headers.insert("x-amz-content-sha256", HeaderValue::from_static("UNSIGNED-PAYLOAD"));
        let err = v.claim(&wire.parts(), now()).unwrap_err();
        assert_eq!(err.code(), "InvalidSignatureException");
    }

    fn presigned_wire(url: &str) -> Wire {
        let url = reqwest::Url::parse(url).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_str(&host_port(&url)).unwrap());
        Wire {
            method: "GET".into(),
            path: url.path().to_owned(),
            query: url.query().map(str::to_owned),
            headers,
            body: Vec::new(),
        }
    }

    fn host_port(url: &reqwest::Url) -> String {
        format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
    }

    #[test]
    fn presigned_urls_verify_until_they_expire() {
        let v = verifier();
        let path = "/lambdabox/v1/functions/f/code.zip";
        let url = sign::presign("127.0.0.1:9000", path, &good(), "us-east-1", now(), Duration::from_secs(600));
        let wire = presigned_wire(&url);
        assert_eq!(v.claim(&wire.parts(), now()).unwrap().payload(), &Payload::Unsigned);
        check(&v, &wire, now() + TimeDelta::minutes(9)).expect("valid for its 10 minutes");
        let err = check(&v, &wire, now() + TimeDelta::minutes(11)).unwrap_err();
        assert!(err.to_string().starts_with("Request has expired"), "{err}");
        let other_path = presigned_wire(&url.replace("/f/", "/g/"));
        assert!(check(&v, &other_path, now()).is_err(), "good for one path only");
        let longer = presigned_wire(&url.replace("X-Amz-Expires=600", "X-Amz-Expires=6000"));
        assert!(check(&v, &longer, now() + TimeDelta::minutes(11)).is_err(), "its expiry is signed");
        let mut both = presigned_wire(&url);
        both.headers.insert("authorization", HeaderValue::from_static("AWS4-HMAC-SHA256 x"));
        assert_eq!(check(&v, &both, now()).unwrap_err().code(), "IncompleteSignatureException");
    }

    use std::time::Duration;

    #[test]
    fn amz_dates_parse_as_chrono_reads_them() {
        for text in ["20261207T031500Z", "20240229T235959Z", "19700101T000000Z"] {
            let chrono = chrono::NaiveDateTime::parse_from_str(text, AMZ_DATE_FORMAT).unwrap().and_utc();
            assert_eq!(parse_amz_date(text), Some(chrono), "{text}");
        }
        for bad in [
            "20261307T031500Z",
            "20230229T000000Z",
            "20261207T246000Z",
            "2026120T0315000Z",
            "20261207 031500Z",
            "+0261207T031500Z",
            "",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_derived_key_is_reused_only_for_the_same_secret() {
        let v = verifier();
        let scope = Scope { date: "20261207".into(), region: "us-east-1".into(), service: "lambda".into() };
        let (one, two) = ("1".repeat(40), "2".repeat(40));
        let a = KeyPair::new("AKIAGOOD", &one).unwrap();
        let b = KeyPair::new("AKIAGOOD", &two).unwrap();
        let sign = |k: &SigningKey| k.sign("x");
        assert_eq!(sign(&v.signing_key(&a, &scope)), sign(&SigningKey::derive(&one, &scope)));
        assert_eq!(sign(&v.signing_key(&a, &scope)), sign(&SigningKey::derive(&one, &scope)));
        assert_eq!(sign(&v.signing_key(&b, &scope)), sign(&SigningKey::derive(&two, &scope)));
    }
}
