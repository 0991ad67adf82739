//! Label values Kubernetes accepts. Ours may not be (a function named
//! `_x`, version `$LATEST`, a 64-character name); the backend stores those
//! as a digest, the same way whenever it writes or selects by one, and the
//! value as given in an annotation.

use sha2::{Digest, Sha256};

/// `value` if Kubernetes takes it as a label value, else `h-` and a digest of it.
pub fn label_value(value: &str) -> String {
    if is_valid(value) {
        return value.to_owned();
    }
    let digest = hex::encode(Sha256::digest(value.as_bytes()));
    format!("h-{}", &digest[..40])
}

/// At most 63 characters: letters, digits, `-`, `_`, `.`, beginning and
/// ending with a letter or digit (or empty).
fn is_valid(v: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    v.is_empty()
        || (v.len() <= 63
            && edge(v.chars().next())
            && edge(v.chars().last())
            && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_values_stay_and_others_become_stable_digests() {
        assert_eq!(label_value("my-func_1"), "my-func_1");
        assert_eq!(label_value(""), "");
        for odd in ["$LATEST", "_x", "x-", &"a".repeat(64)] {
            let v = label_value(odd);
            assert!(is_valid(&v), "{v}");
            assert_eq!(v, label_value(odd));
        }
        assert_ne!(label_value("$LATEST"), label_value("_x"));
    }
}
