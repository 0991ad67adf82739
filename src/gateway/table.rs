//! Which route a request takes, as API Gateway (and `sam local
//! start-api`) choose: literal segments beat `{param}`, which beats a
//! greedy `{proxy+}`; an exact method beats `ANY`; an HttpApi `$default`
//! route takes what nothing else does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One route, as `up` configures it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RouteSpec {
    /// `Api` (REST API) or `HttpApi`.
    pub kind: String,
    /// Upper case, or `ANY`.
    pub method: String,
    /// `/items/{id}`, `/files/{proxy+}`, or `$default`.
    pub path: String,
    pub function: String,
    /// The alias invoked (AutoPublishAlias), if any.
    #[serde(default)]
    pub qualifier: Option<String>,
    /// `1.0` or `2.0`.
    pub payload_format_version: String,
}

impl RouteSpec {
    /// `GET /items/{id}`, as HttpApi's `routeKey`.
    pub fn route_key(&self) -> String {
        if self.path == "$default" {
            "$default".into()
        } else {
            format!("{} {}", self.method, self.path)
        }
    }
}

/// A route that matched, with its path parameters.
#[derive(Debug, PartialEq, Eq)]
pub struct Matched<'r> {
    pub route: &'r RouteSpec,
    pub parameters: BTreeMap<String, String>,
}

/// How specific a match is; larger wins.
type Rank = (bool, usize, bool, bool);

/// The best route of `routes` for `method` and (still encoded) `path`.
pub fn find<'r>(routes: &'r [RouteSpec], method: &str, path: &str) -> Option<Matched<'r>> {
    let mut best: Option<(Rank, Matched<'r>)> = None;
    for route in routes {
        let method_exact = route.method.eq_ignore_ascii_case(method);
        if !method_exact && route.method != "ANY" {
            continue;
        }
        let Some((literals, greedy, parameters)) = match_path(&route.path, path) else { continue };
        let rank = (route.path != "$default", literals, !greedy, method_exact);
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, Matched { route, parameters }));
        }
    }
    best.map(|(_, m)| m)
}

/// Literal segments matched, whether a greedy parameter took the rest,
/// and the parameters (decoded), if `pattern` matches `path`.
fn match_path(pattern: &str, path: &str) -> Option<(usize, bool, BTreeMap<String, String>)> {
    if pattern == "$default" {
        return Some((0, true, BTreeMap::new()));
    }
    let want: Vec<&str> = pattern.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let got: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let mut params = BTreeMap::new();
    let mut literals = 0;
    for (i, segment) in want.iter().enumerate() {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
            if i + 1 != want.len() || got.len() <= i {
                return None;
            }
            params.insert(name.to_owned(), decode(&got[i..].join("/")));
            return Some((literals, true, params));
        }
        let part = got.get(i)?;
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                params.insert(name.to_owned(), decode(part));
            }
            None if decode(part) == *segment => literals += 1,
            None => return None,
        }
    }
    (want.len() == got.len()).then_some((literals, false, params))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str, function: &str) -> RouteSpec {
        RouteSpec {
            kind: "HttpApi".into(),
            method: method.into(),
            path: path.into(),
            function: function.into(),
            qualifier: None,
            payload_format_version: "2.0".into(),
        }
    }

    #[test]
    fn the_most_specific_route_wins() {
        let routes = vec![
            route("GET", "/items/{id}", "one"),
            route("GET", "/items/special", "special"),
            route("ANY", "/items/{id}", "any"),
            route("ANY", "/files/{proxy+}", "files"),
            route("ANY", "$default", "fallback"),
        ];
        let hit = |m: &str, p: &str| find(&routes, m, p).map(|m| (m.route.function.clone(), m.parameters));
        let params = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(hit("GET", "/items/42"), Some(("one".into(), params(&[("id", "42")]))));
        assert_eq!(hit("GET", "/items/special"), Some(("special".into(), params(&[]))));
        assert_eq!(hit("DELETE", "/items/a%20b"), Some(("any".into(), params(&[("id", "a b")]))));
        assert_eq!(hit("PUT", "/files/a/b/c.txt"), Some(("files".into(), params(&[("proxy", "a/b/c.txt")]))));
        assert_eq!(hit("GET", "/elsewhere"), Some(("fallback".into(), params(&[]))));
        assert_eq!(find(&routes[..2], "GET", "/items/1/more"), None);
        assert_eq!(find(&routes[..2], "POST", "/items/1"), None);
        assert_eq!(find(&routes[3..4], "GET", "/files"), None, "a greedy parameter takes one segment at least");
    }
}
