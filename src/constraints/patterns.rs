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

/// `\d{12}`: an account id.
pub fn is_account(s: &str) -> bool {
    s.len() == 12 && all(s, |b| b.is_ascii_digit())
}

/// `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`.
pub fn is_role_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:") else { return false };
    let Some((partition, rest)) = rest.split_once(':') else { return false };
    let partition_ok = partition.is_empty()
        || partition.strip_prefix("aws").is_some_and(|p| all(p, |b| b.is_ascii_alphabetic() || b == b'-'));
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
