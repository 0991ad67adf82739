//! Matchers for the regular expressions of AWS's Lambda API model (and
//! Docker's image reference grammar), written out by hand: each is small,
//! and a hand-written matcher is anchored at both ends by construction,
//! as AWS applies its patterns.

fn all(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
    s.bytes().all(allowed)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `[a-zA-Z0-9-_]+`: function names, layer names.
pub fn is_name(s: &str) -> bool {
    !s.is_empty() && all(s, is_name_byte)
}

/// `[\.\-_A-Za-z0-9]+`: EventBridge rule names and target ids.
pub fn is_rule_name(s: &str) -> bool {
    !s.is_empty() && all(s, |b| is_name_byte(b) || b == b'.')
}

/// `(arn:aws[\w-]*:events:[a-z]+-[a-z]+-[\w-]+:[0-9]{12}:event-bus\/)?[/\.\-_A-Za-z0-9]+`:
/// an event bus by name or ARN (the region's shape is checked loosely).
pub fn is_event_bus_ref(s: &str) -> bool {
    let name = |n: &str| !n.is_empty() && all(n, |b| is_name_byte(b) || b == b'.' || b == b'/');
    let Some(rest) = s.strip_prefix("arn:aws") else { return name(s) };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    match parts[..] {
        [partition, "events", region, account, resource] => {
            all(partition, |b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                && !region.is_empty()
                && is_account(account)
                && resource.strip_prefix("event-bus/").is_some_and(name)
        }
        _ => name(s),
    }
}

/// `[A-Za-z0-9\_\-]+`: the keys of an InputTransformer's InputPathsMap.
pub fn is_transformer_key(s: &str) -> bool {
    is_name(s)
}

/// `\d{12}`: an account id.
pub fn is_account(s: &str) -> bool {
    s.len() == 12 && all(s, |b| b.is_ascii_digit())
}

/// `(aws[a-zA-Z-]*)?`: an ARN's partition.
pub fn is_partition(s: &str) -> bool {
    s.is_empty() || s.strip_prefix("aws").is_some_and(|p| all(p, |b| b.is_ascii_alphabetic() || b == b'-'))
}

/// `(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}`: a region.
pub fn is_region(s: &str) -> bool {
    let s = s.strip_prefix("eusc-").unwrap_or(s);
    let lower = |p: &str| !p.is_empty() && all(p, |b| b.is_ascii_lowercase());
    let parts: Vec<&str> = s.split('-').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    let middle = match parts.as_slice() {
        [_, m @ .., _] => m,
        _ => return false,
    };
    // The middle is `[a-z]+`, optionally after `gov` or `iso[a-z]?`.
    let middle_ok = match middle {
        [m] => lower(m),
        [tag, m] => (*tag == "gov" || (tag.starts_with("iso") && tag.len() <= 4 && lower(tag))) && lower(m),
        _ => false,
    };
    first.len() == 2 && lower(first) && middle_ok && last.len() == 1 && all(last, |b| b.is_ascii_digit())
}

/// A function name inside a FunctionName parameter: `[a-zA-Z0-9-_]+`,
/// and `.` too in the namespaced form of the read operations.
pub fn is_function_name_part(s: &str, dots: bool) -> bool {
    !s.is_empty() && all(s, |b| is_name_byte(b) || (dots && b == b'.'))
}

/// The qualifier inside a FunctionName parameter:
/// `\$LATEST|[a-zA-Z0-9-_]+` (the namespaced form adds `$LATEST.PUBLISHED`).
pub fn is_function_name_qualifier(s: &str, dots: bool) -> bool {
    s == "$LATEST" || (dots && s == "$LATEST.PUBLISHED") || (!s.is_empty() && all(s, is_name_byte))
}

/// What a FunctionName parameter names, in its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionRefParts<'a> {
    pub region: Option<&'a str>,
    pub account: Option<&'a str>,
    pub name: &'a str,
    pub qualifier: Option<&'a str>,
}

/// Match a FunctionName parameter against the model's pattern, trying its
/// optional groups as a regular expression would (present first), and
/// return its parts. `namespaced`: the read operations' form, where `arn:`
/// comes with both a region and an account, and names may hold `.`.
pub fn split_function_ref(s: &str, namespaced: bool) -> Option<FunctionRefParts<'_>> {
    let tokens: Vec<&str> = s.split(':').collect();
    let arn = match tokens.as_slice() {
        ["arn", partition, "lambda", rest @ ..] if is_partition(partition) => Some(rest),
        _ => None,
    };
    arn.and_then(|rest| split_after_prefix(rest, namespaced, namespaced))
        .or_else(|| split_after_prefix(&tokens, false, namespaced))
}

fn split_after_prefix<'a>(t: &[&'a str], need_region_account: bool, dots: bool) -> Option<FunctionRefParts<'a>> {
    for with_region in [true, false] {
        for with_account in [true, false] {
            if need_region_account && !(with_region && with_account) {
                continue;
            }
            for with_function in [true, false] {
                let mut rest = t;
                let region = with_region.then(|| rest.first().copied().filter(|r| is_region(r))).flatten();
                if with_region {
                    rest = if region.is_some() { &rest[1..] } else { continue };
                }
                let account = with_account.then(|| rest.first().copied().filter(|a| is_account(a))).flatten();
                if with_account {
                    rest = if account.is_some() { &rest[1..] } else { continue };
                }
                if with_function {
                    rest = match rest {
                        ["function", tail @ ..] => tail,
                        _ => continue,
                    };
                }
                let (name, qualifier) = match rest {
                    [name] => (*name, None),
                    [name, q] if is_function_name_qualifier(q, dots) => (*name, Some(*q)),
                    _ => continue,
                };
                if is_function_name_part(name, dots) {
                    return Some(FunctionRefParts { region, account, name, qualifier });
                }
            }
        }
    }
    None
}

/// The pattern of [`crate::constraints::FUNCTION_NAME_ARG`].
pub fn is_function_ref(s: &str) -> bool {
    split_function_ref(s, false).is_some()
}

/// The pattern of [`crate::constraints::NAMESPACED_FUNCTION_NAME`].
pub fn is_namespaced_function_ref(s: &str) -> bool {
    split_function_ref(s, true).is_some()
}

/// `ALL|<region>`.
pub fn is_master_region(s: &str) -> bool {
    s == "ALL" || is_region(s)
}

/// `\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+`: the `Qualifier` parameter
/// of the operations on a function or version.
pub fn is_qualifier(s: &str) -> bool {
    s == "$LATEST.PUBLISHED" || (!s.is_empty() && all(s, |b| is_name_byte(b) || b == b'$'))
}

/// `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`: an alias name.
pub fn is_alias_name(s: &str) -> bool {
    is_name(s) && !all(s, |b| b.is_ascii_digit())
}

/// `(\$LATEST(\.PUBLISHED)?|[0-9]+)`: a version.
pub fn is_version(s: &str) -> bool {
    s == "$LATEST" || s == "$LATEST.PUBLISHED" || (!s.is_empty() && all(s, |b| b.is_ascii_digit()))
}

/// `(|[a-zA-Z0-9$_-]+)`: the `Qualifier` of the provisioned concurrency operations.
pub fn is_alias_or_version(s: &str) -> bool {
    all(s, |b| is_name_byte(b) || b == b'$')
}

/// `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`.
pub fn is_role_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:") else { return false };
    let Some((partition, rest)) = rest.split_once(':') else { return false };
    let partition_ok = is_partition(partition);
    let Some(rest) = rest.strip_prefix("iam::") else { return false };
    let Some((account, rest)) = rest.split_once(':') else { return false };
    // `role/?` then one or more of a class that holds `/` itself: any
    // non-empty run of that class after `role` matches.
    let Some(path) = rest.strip_prefix("role") else { return false };
    partition_ok && is_account(account) && !path.is_empty() && all(path, |b| is_name_byte(b) || b"+=,.@/".contains(&b))
}

/// `[^\s]+` as the model has it, and no control characters either:
/// lambdabox hands the handler to the runtime in `_HANDLER` and argv,
/// where a NUL or an escape sequence has no business.
pub fn is_handler(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// `[a-zA-Z]([a-zA-Z0-9_])+`: environment variable names.
/// `[\.\-_/#A-Za-z0-9]+`: a CloudWatch log group name.
pub fn is_log_group(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_/#".contains(&b))
}

pub fn is_env_key(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() >= 2
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+`.
pub fn is_layer_version_arn(s: &str) -> bool {
    let alnum_dash = |p: &str| !p.is_empty() && all(p, |b| b.is_ascii_alphanumeric() || b == b'-');
    match s.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", partition, "lambda", region, account, "layer", name, version] => {
            alnum_dash(partition)
                && alnum_dash(region)
                && is_account(account)
                && is_name(name)
                && !version.is_empty()
                && all(version, |b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// `.*` as AWS's (Java) patterns read it: anything but a line break.
fn is_line(s: &str) -> bool {
    !s.contains(['\n', '\r'])
}

/// `$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:(<region>)?:(\d{12})?:(.*)`:
/// an EventInvokeConfig destination (empty, a Kafka topic or an ARN).
pub fn is_destination_arn(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    if let Some(topic) = s.strip_prefix("kafka://") {
        let mut chars = topic.chars();
        let first_ok = chars.next().is_some_and(|c| c != '.');
        let rest = chars.as_str();
        return first_ok && rest.len() <= 248 && all(rest, |b| is_name_byte(b) || b == b'.');
    }
    let alnum_dash = |p: &str| all(p, |b| b.is_ascii_alphanumeric() || b == b'-');
    match s.splitn(6, ':').collect::<Vec<_>>().as_slice() {
        ["arn", partition, service, region, account, rest] => {
            partition.strip_prefix("aws").is_some_and(alnum_dash)
                && !service.is_empty()
                && alnum_dash(service)
                && (region.is_empty() || is_region(region))
                && (account.is_empty() || is_account(account))
                && is_line(rest)
        }
        _ => false,
    }
}

/// `(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()`: a resource ARN (a
/// DeadLetterConfig's target), or nothing.
pub fn is_resource_arn(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    match s.splitn(4, ':').collect::<Vec<_>>().as_slice() {
        ["arn", partition, service, rest] => {
            is_partition(partition)
                && !service.is_empty()
                && all(service, |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
                && is_line(rest)
        }
        _ => false,
    }
}

/// An absolute path: `ImageConfig.WorkingDirectory` is where the bootstrap starts.
pub fn is_absolute_path(s: &str) -> bool {
    s.starts_with('/')
}

/// Docker's longest repository name (registry included).
const MAX_IMAGE_NAME: usize = 255;

/// A Docker image reference, `[host[:port]/]path[:tag][@sha256:HEX]`, as
/// Docker's reference grammar has it: path components of lowercase
/// letters and digits joined by `.`, `_`, `__` or dashes; a tag of
/// `[\w][\w.-]{0,127}`; a sha256 digest. Nothing else reaches the Docker
/// API's URLs, where `?`, `#`, `%` or `..` would change what is asked.
pub fn is_image_reference(s: &str) -> bool {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    // A tag follows a `:` after the last `/`; one before it is a port.
    let last = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last..].find(':') {
        Some(i) => (&rest[..last + i], Some(&rest[last + i + 1..])),
        None => (rest, None),
    };
    digest.is_none_or(is_sha256_digest) && tag.is_none_or(is_tag) && name.len() <= MAX_IMAGE_NAME && is_repository(name)
}

fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && all(hex, |b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fn is_tag(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    (1..=128).contains(&s.len()) && word(s.as_bytes()[0]) && all(s, |b| word(b) || b == b'.' || b == b'-')
}

/// `[host[:port]/]component[/component...]`. The first part is a registry
/// when it looks like one (a `.` or `:` in it, or `localhost`), as Docker
/// decides.
fn is_repository(name: &str) -> bool {
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        if !is_registry(parts[0]) {
            return false;
        }
        parts.remove(0);
    }
    parts.iter().all(|p| is_path_component(p))
}

/// `host[:port]`: dot-separated labels of letters, digits and inner dashes.
fn is_registry(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && all(l, |b| b.is_ascii_alphanumeric() || b == b'-')
    };
    port.is_none_or(|p| (1..=5).contains(&p.len()) && all(p, |b| b.is_ascii_digit())) && host.split('.').all(label_ok)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_path_component(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    s.split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, "." | "_" | "__") || all(sep, |b| b == b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_and_resource_arns() {
        for ok in [
            "",
            "arn:aws:lambda:us-east-1:123456789012:function:f",
            "arn:aws:sqs:us-east-1:123456789012:q",
            "arn:aws:s3:::bucket",
            "arn:aws-cn:sns:cn-north-1:123456789012:t",
            "kafka://my-topic_1.x",
        ] {
            assert!(is_destination_arn(ok), "{ok}");
        }
        for bad in [
            "arn:aws:_-/!lambda:us-east-1:123456789012:function:f",
            "arn::lambda:us-east-1:123456789012:function:f",
            "arn:aws:lambda:nowhere:123456789012:function:f",
            "arn:aws:lambda:us-east-1:123:function:f",
            "arn:aws:lambda:us-east-1:123456789012",
            "kafka://.topic",
            "kafka://",
            "lambda",
        ] {
            assert!(!is_destination_arn(bad), "{bad:?}");
        }
        assert!(is_resource_arn("") && is_resource_arn("arn:aws:sqs:us-east-1:123456789012:dlq"));
        assert!(!is_resource_arn("sqs-queue") && !is_resource_arn("arn:aws:SQS:x"));
    }

    #[test]
    fn role_arns() {
        for ok in [
            "arn:aws:iam::123456789012:role/r",
            "arn:aws-cn:iam::123456789012:role/service-role/My+Role=,.@-_",
            "arn::iam::123456789012:role/x",
            "arn:aws:iam::123456789012:rolex",
            "arn:aws:iam::123456789012:role/",
        ] {
            assert!(is_role_arn(ok), "{ok}");
        }
        for bad in [
            "r",
            "",
            "arn:aws:iam::123:role/x",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::123456789012:role",
            "arn:aws:iam::123456789012:role/a b",
            "arn:aws:iam::123456789012:role/\0",
            "arn:gcp:iam::123456789012:role/x",
            "arn:aws:s3::123456789012:role/x",
            "arn:aws:iam:us-east-1:123456789012:role/x",
        ] {
            assert!(!is_role_arn(bad), "{bad:?}");
        }
    }

    #[test]
    fn image_references() {
        let digest = format!("sha256:{}", "a1".repeat(32));
        for ok in [
            "lambdabox/python3.11:latest".to_owned(),
            "lambdabox-test/py-image:0123abc".to_owned(),
            "ubuntu".to_owned(),
            "localhost:5000/team/app:v1.2_3".to_owned(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/my__repo/a.b-c---d:Tag_1".to_owned(),
            format!("repo@{digest}"),
            format!("registry.example:443/repo:tag@{digest}"),
            format!("{}:{}", "a".repeat(255), "t".repeat(128)),
        ] {
            assert!(is_image_reference(&ok), "{ok}");
        }
        for bad in [
            "",
            "IMG/json?",
            "lambdabox/python3.11:latest/json?",
            "..%2F..%2Finfo",
            "../../info",
            "Upper/case",
            "repo:",
            "repo:-tag",
            "repo:bad tag",
            "repo@sha256:1234",
            "repo@md5:0123",
            "a..b",
            "a/-b",
            "a_",
            "a///b",
            "localhost:5000x/repo",
            "-host.io/repo",
            "repo\0:1",
            "repo#frag",
        ] {
            assert!(!is_image_reference(bad), "{bad:?}");
        }
        assert!(!is_image_reference(&"a".repeat(256)));
        assert!(!is_image_reference(&format!("a:{}", "t".repeat(129))));
    }

    #[test]
    fn function_refs_split_as_the_model_matches() {
        let parts = |s, ns| split_function_ref(s, ns).map(|p| (p.region, p.account, p.name, p.qualifier));
        assert_eq!(parts("f", false), Some((None, None, "f", None)));
        assert_eq!(parts("function:f:$LATEST", false), Some((None, None, "f", Some("$LATEST"))));
        assert_eq!(parts("123456789012:function:f", false), Some((None, Some("123456789012"), "f", None)));
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:f:live";
        assert_eq!(parts(arn, true), Some((Some("eu-west-1"), Some("123456789012"), "f", Some("live"))));
        let incomplete = "arn:aws:lambda:us-east-1:123456789012:function";
        assert_eq!(parts(incomplete, true), Some((Some("us-east-1"), Some("123456789012"), "function", None)));
        assert_eq!(parts("a.b", true).map(|p| p.2), Some("a.b"));
        for bad in [
            "*",
            "my-function!",
            "a.b",
            "invalid-account:function:f",
            "arn:aws:lambda:invalid-region:123456789012:function:f",
            "arn:aws:ec2:us-east-1:123456789012:instance:i-1",
            "arn:aws:lambda:us-east-1:123456789012:function:f:1:2",
            "function:f:$LATEST:extra",
            "arn:aws:lambda::123456789012:function:f",
            "arn:aws:lambda:us-east-1::function:f",
            "arn:aws:lambda:us-east-1:123456789012:function:f:$LATES",
            "f:$latest",
        ] {
            assert_eq!(parts(bad, false), None, "{bad}");
            assert_eq!(parts(bad, true).filter(|_| bad != "a.b"), None, "{bad}");
        }
    }

    #[test]
    fn regions() {
        for ok in ["us-east-1", "ap-southeast-1", "us-gov-west-1", "us-isob-east-1", "eusc-de-east-1", "cn-north-1"] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in ["", "invalid-region", "us-east", "us-east-12", "US-east-1", "u-east-1", "us-gov-", "us--1"] {
            assert!(!is_region(bad), "{bad:?}");
        }
    }

    #[test]
    fn other_patterns() {
        assert!(is_handler("app.handler") && is_handler("index.handler$1"));
        for bad in ["", "a b", "a\0", "a\u{1b}[31m", "a\u{85}"] {
            assert!(!is_handler(bad), "{bad:?}");
        }
        assert!(is_env_key("A1") && is_env_key("a_b") && !is_env_key("A") && !is_env_key("1A") && !is_env_key("A-B"));
        assert!(is_layer_version_arn("arn:aws:lambda:us-east-1:000000000000:layer:deps:3"));
        for bad in ["deps:3", "arn:aws:lambda:us-east-1:000000000000:layer:deps", "arn:aws:lambda:r:1:layer:d:1"] {
            assert!(!is_layer_version_arn(bad), "{bad}");
        }
    }
}
