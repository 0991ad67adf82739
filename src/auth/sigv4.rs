//! AWS Signature Version 4 arithmetic: canonical request, string to sign,
//! signing key and signature. The signer ([`super::sign`]) and the verifier
//! ([`super::verify`]) both build their strings here, so the two sides cannot
//! drift apart: a request lambdabox signs is one lambdabox verifies, and both
//! agree with the AWS SDKs (checked against AWS's published test vectors).

use std::fmt;

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{percent_decode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash of presigned URLs: the body is not covered.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// `X-Amz-Date`'s format (ISO 8601 basic, UTC).
pub const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// The last part of every credential scope.
pub const TERMINATOR: &str = "aws4_request";

/// RFC 3986 unreserved characters are the only ones left as they are.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// Paths keep their `/` separators.
const ENCODE_PATH: &AsciiSet = &ENCODE.remove(b'/');

type HmacSha256 = Hmac<Sha256>;

/// A credential scope: `DATE/REGION/SERVICE/aws4_request`. The signing key
/// is derived from it, so a signature is only good for that day, region and
/// service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// `YYYYMMDD`, the first eight characters of the request's `X-Amz-Date`.
    pub date: String,
    pub region: String,
    pub service: String,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}/{TERMINATOR}", self.date, self.region, self.service)
    }
}

/// The parts of a request a signature covers, as they travel on the wire.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The path exactly as sent, still percent-encoded.
    pub path: &'a str,
    /// The raw query string (without `?`), if any.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

/// Hex SHA-256, as SigV4 writes every hash.
pub fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Strict RFC 3986 percent-encoding (uppercase hex), for query keys and values.
pub fn encode(data: &[u8]) -> String {
    percent_encoding::percent_encode(data, ENCODE).to_string()
}

/// The canonical URI of a raw path: dot and empty segments removed (a
/// trailing `/` kept), then percent-encoded *again*. Services other than S3
/// sign the path twice-encoded: a path sent as `/f/arn%3Aaws` is signed as
/// `/f/arn%253Aaws`.
pub fn canonical_uri(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut path = format!("/{}", segments.join("/"));
    if raw_path.ends_with('/') && !segments.is_empty() {
        path.push('/');
    }
    percent_encoding::utf8_percent_encode(&path, ENCODE_PATH).to_string()
}

/// The query string's `(key, value)` pairs, percent-decoded (`+` is a
/// plus, not a space: SigV4 clients encode spaces as `%20`).
pub fn query_pairs(raw: Option<&str>) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k.as_bytes()).collect(), percent_decode(v.as_bytes()).collect())
        })
        .collect()
}

/// The canonical query string: every pair re-encoded strictly, sorted by
/// key, then value; `k=` for a key without a value.
pub fn canonical_query<'a>(pairs: impl IntoIterator<Item = &'a (Vec<u8>, Vec<u8>)>) -> String {
    let mut encoded: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort();
    encoded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// One header's canonical value: every occurrence trimmed, runs of spaces
/// collapsed, joined with `,`.
fn canonical_value(headers: &HeaderMap, name: &str) -> String {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    values.join(",")
}

/// The canonical request: `METHOD\nURI\nQUERY\nHEADERS\n\nSIGNED\nHASH`.
/// `signed` are the lowercase header names, in the order the client listed
/// them; `query` the pairs to sign (a presigned URL's without its
/// `X-Amz-Signature`).
pub fn canonical_request(
    parts: &RequestParts<'_>,
    query: &[(Vec<u8>, Vec<u8>)],
    signed: &[String],
    payload_hash: &str,
) -> String {
    let headers: String =
        signed.iter().map(|name| format!("{name}:{}\n", canonical_value(parts.headers, name))).collect();
    format!(
        "{}\n{}\n{}\n{headers}\n{}\n{payload_hash}",
        parts.method,
        canonical_uri(parts.path),
        canonical_query(query),
        signed.join(";"),
    )
}

/// `AWS4-HMAC-SHA256\nDATE\nSCOPE\nHEX(SHA256(CANONICAL))`.
pub fn string_to_sign(amz_date: &str, scope: &Scope, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex_sha256(canonical_request.as_bytes()))
}

fn hmac(key: &[u8], data: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac
}

/// A key derived for one scope: `"AWS4"+secret` → date → region → service
/// → `aws4_request`. It is what signs; the secret itself never does.
#[derive(Clone)]
pub struct SigningKey([u8; 32]);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    pub fn derive(secret: &str, scope: &Scope) -> SigningKey {
        let mut key = hmac(format!("AWS4{secret}").as_bytes(), scope.date.as_bytes()).finalize().into_bytes();
        for part in [scope.region.as_str(), scope.service.as_str(), TERMINATOR] {
            key = hmac(&key, part.as_bytes()).finalize().into_bytes();
        }
        SigningKey(key.into())
    }

    /// The hex signature of a string to sign.
    pub fn sign(&self, string_to_sign: &str) -> String {
        hex::encode(hmac(&self.0, string_to_sign.as_bytes()).finalize().into_bytes())
    }

    /// Whether `signature` (hex) signs `string_to_sign`, compared in constant
    /// time so response timing says nothing about the expected bytes.
    pub fn verify(&self, string_to_sign: &str, signature: &str) -> bool {
        match hex::decode(signature) {
            Ok(bytes) => hmac(&self.0, string_to_sign.as_bytes()).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn scope(service: &str) -> Scope {
        Scope { date: "20150830".into(), region: "us-east-1".into(), service: service.into() }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// Sign a request of AWS's test suite (AKIDEXAMPLE, 20150830T123600Z,
    /// us-east-1, service `service`).
    fn suite_signature(method: &str, path: &str, query: Option<&str>, extra: &[(&'static str, &str)]) -> String {
        let mut all = vec![("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")];
        all.extend_from_slice(extra);
        let h = headers(&all);
        let mut signed: Vec<String> = all.iter().map(|(k, _)| k.to_string()).collect();
        signed.sort();
        signed.dedup();
        let parts = RequestParts { method, path, query, headers: &h };
        let cr = canonical_request(&parts, &query_pairs(query), &signed, &hex_sha256(b""));
        let sts = string_to_sign("20150830T123600Z", &scope("service"), &cr);
        SigningKey::derive(SECRET, &scope("service")).sign(&sts)
    }

    #[test]
    fn aws_test_suite_get_vanilla() {
        let h = headers(&[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")]);
        let parts = RequestParts { method: "GET", path: "/", query: None, headers: &h };
        let signed = vec!["host".to_string(), "x-amz-date".to_string()];
        let cr = canonical_request(&parts, &[], &signed, &hex_sha256(b""));
        assert_eq!(
            cr,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sts = string_to_sign("20150830T123600Z", &scope("service"), &cr);
        assert_eq!(
            sts,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        let key = SigningKey::derive(SECRET, &scope("service"));
        let signature = key.sign(&sts);
        assert_eq!(signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
        assert!(key.verify(&sts, &signature));
        assert!(!key.verify(&sts, &signature.replace('5', "6")));
        assert!(!key.verify(&sts, "not hex"));
    }

    #[test]
    fn aws_test_suite_queries_and_paths() {
        // get-vanilla-query-order-key-case, get-vanilla-query-unreserved,
        // post-vanilla-empty-query-value, get-space, get-slashes, get-utf8:
        // the suite's paths are decoded, so they are encoded once here.
        assert_eq!(
            suite_signature("GET", "/", Some("Param2=value2&Param1=value1"), &[]),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
        let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        assert_eq!(
            suite_signature("GET", "/", Some(&format!("{unreserved}={unreserved}")), &[]),
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"
        );
        assert_eq!(
            suite_signature("POST", "/", Some("Param1=value1"), &[]),
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"
        );
        assert_eq!(
            suite_signature("GET", "/example space/", None, &[]),
            "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"
        );
        assert_eq!(
            suite_signature("GET", "//example//", None, &[]),
            "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"
        );
        assert_eq!(
            suite_signature("GET", "/\u{1234}", None, &[]),
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
        );
        assert_eq!(canonical_uri("/./"), "/");
        assert_eq!(canonical_uri("/example1/example2/../.."), "/");
    }

    #[test]
    fn aws_test_suite_double_url_encode_lambda_arn() {
        // double-url-encode: Invoke with a function ARN, as the AWS SDK signs it.
        let h = headers(&[("host", "lambda.us-east-2.amazonaws.com"), ("x-amz-date", "20210511T154045Z")]);
        let path =
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations";
        let parts = RequestParts { method: "POST", path, query: None, headers: &h };
        let signed = vec!["host".to_string(), "x-amz-date".to_string()];
        let cr = canonical_request(&parts, &[], &signed, &hex_sha256(b""));
        assert!(cr.contains("\n/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-west-2%253A892717189312%253Afunction%253Amy-rusty-fun/invocations\n"), "{cr}");
        let scope = Scope { date: "20210511".into(), region: "us-east-2".into(), service: "lambda".into() };
        let sts = string_to_sign("20210511T154045Z", &scope, &cr);
        assert!(sts.ends_with("\n684dbb3c92a8b6b1e452e23e523c1ea941c713a4c13500bb9f3bdad1e19afaf7"), "{sts}");
        assert_eq!(
            SigningKey::derive(SECRET, &scope).sign(&sts),
            "4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804"
        );
    }

    #[test]
    fn aws_test_suite_header_values() {
        // get-header-value-trim: leading/trailing spaces dropped, inner runs collapsed.
        let sig = suite_signature("GET", "/", None, &[("my-header1", " value1"), ("my-header2", " \"a   b   c\"")]);
        assert_eq!(sig, "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
        // get-header-key-duplicate: repeated headers joined with commas.
        let h = headers(&[("my-header1", "value2"), ("my-header1", "value2"), ("my-header1", "value1")]);
        assert_eq!(canonical_value(&h, "my-header1"), "value2,value2,value1");
    }

    #[test]
    fn paths_are_encoded_twice_and_queries_once() {
        assert_eq!(
            canonical_uri("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A0%3Afunction%3Af/configuration"),
            "/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-east-1%253A0%253Afunction%253Af/configuration"
        );
        assert_eq!(canonical_uri("/f/a:b$LATEST"), "/f/a%3Ab%24LATEST");
        assert_eq!(canonical_uri("/example%20space/"), "/example%2520space/");
        assert_eq!(canonical_uri(""), "/");
        let pairs = query_pairs(Some("Qualifier=$LATEST&b=a%20b&b=+&a"));
        assert_eq!(canonical_query(&pairs), "Qualifier=%24LATEST&a=&b=%2B&b=a%20b");
    }
}
