//! Lambda's list paging: `Marker` and `MaxItems` in, a page of items and
//! `NextMarker` out. Every List operation over keyed items pages here, so
//! they all refuse a bad `MaxItems` or a foreign marker the same way.

use serde::Deserialize;
use serde_json::Value;

use super::ApiError;
use crate::constraints::{self, Checks, Member};

/// How many items a page holds when the request does not say.
pub(super) const DEFAULT_MAX_ITEMS: usize = 50;

/// The query parameters of Lambda's List operations (each uses those it
/// has; the rest stay `None`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListQuery {
    pub marker: Option<String>,
    pub max_items: Option<String>,
    pub function_version: Option<String>,
    pub master_region: Option<String>,
}

/// A `MaxItems` query parameter checked as `member`; `default` without one.
pub(super) fn max_items(
    raw: Option<&str>,
    member: &Member<constraints::Number>,
    default: usize,
) -> Result<usize, ApiError> {
    let Some(raw) = raw else { return Ok(default) };
    let n: u32 =
        raw.parse().map_err(|_| ApiError::invalid_parameter(format!("MaxItems must be an integer, not '{raw}'")))?;
    Checks::new().number(member, Some(n)).finish()?;
    Ok(n as usize)
}

/// One page of `all` (sorted by `key`): at most `max` items after the one
/// whose key the marker names, and the marker of the next page if any. A
/// marker is the base64 of the last key given out, so a page boundary
/// survives items added or deleted meanwhile.
pub(super) fn page<'a, T>(
    all: &'a [T],
    marker: Option<&str>,
    max: usize,
    key: impl Fn(&T) -> String,
) -> Result<(&'a [T], Option<String>), ApiError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let start = match marker.filter(|m| !m.is_empty()) {
        None => 0,
        Some(marker) => {
            let after = b64
                .decode(marker)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::invalid_parameter("Marker is not one this server issued"))?;
            all.partition_point(|item| key(item) <= after)
        }
    };
    let end = all.len().min(start + max);
    let next = (end < all.len()).then(|| b64.encode(key(&all[end - 1])));
    Ok((&all[start..end], next))
}

/// A List operation's answer: the page of `all` the query asks for, each
/// item rendered, under `field`, with `NextMarker` when more follow.
pub(super) fn listing<T, R: serde::Serialize>(
    field: &str,
    all: &[T],
    q: &ListQuery,
    limit: &Member<constraints::Number>,
    key: impl Fn(&T) -> String,
    render: impl Fn(&T) -> R,
) -> Result<Value, ApiError> {
    let max = max_items(q.max_items.as_deref(), limit, DEFAULT_MAX_ITEMS)?;
    let (items, next) = page(all, q.marker.as_deref(), max, key)?;
    let mut out = serde_json::json!({ field: items.iter().map(render).collect::<Vec<_>>() });
    if let Some(marker) = next {
        out["NextMarker"] = marker.into();
    }
    Ok(out)
}
