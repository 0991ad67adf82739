//! What a layer is: a versioned zip of code or data unpacked under `/opt` of
//! the functions that name it, as Lambda's layers are. Names, ARNs and
//! limits here; storage in [`crate::store`], behaviour in [`crate::engine`].

use serde::{Deserialize, Serialize};

use crate::constraints::{self, Checks, InvalidParameter};

/// One published version of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerVersion {
    pub name: String,
    pub version: u64,
    pub description: String,
    pub compatible_runtimes: Vec<String>,
    pub compatible_architectures: Vec<String>,
    pub license_info: Option<String>,
    /// Hex SHA-256 of the zip: its key in the code store.
    pub code_sha256: String,
    pub code_size: u64,
    /// `2020-04-10T19:06:32.563+0000`, as Lambda formats it.
    pub created: String,
}

/// A layer version as a function holds it: enough to run it even after
/// the version is deleted (Lambda keeps a deleted layer working for the
/// functions that already use it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub arn: String,
    pub code_sha256: String,
    pub code_size: u64,
}

/// The model's limit on `LayerName`, a name or an ARN.
const MAX_LAYER_NAME: usize = 140;

/// A layer name as Lambda accepts it (`[a-zA-Z0-9-_]{1,140}`), or the
/// layer's ARN, which names it too. Returns the bare name.
pub fn parse_layer_name(input: &str) -> Result<String, InvalidParameter> {
    if input.len() > MAX_LAYER_NAME {
        return Err(bad_name(input));
    }
    let name = match input.split(':').collect::<Vec<_>>().as_slice() {
        [name] => *name,
        ["arn", partition, "lambda", region, account, "layer", name]
            if partition.starts_with("aws") && !region.is_empty() && !account.is_empty() =>
        {
            name
        }
        _ => return Err(bad_name(input)),
    };
    // `name` is part of `input`, already within MAX_LAYER_NAME.
    if crate::constraints::patterns::is_name(name) {
        Ok(name.to_owned())
    } else {
        Err(bad_name(input))
    }
}

fn bad_name(input: &str) -> InvalidParameter {
    InvalidParameter(format!(
        "1 validation error detected: Value '{input}' at 'layerName' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{{12}}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+"
    ))
}

/// The name and version a layer version ARN names, as functions' `Layers`
/// list them.
pub fn parse_version_arn(arn: &str) -> Result<(String, u64), InvalidParameter> {
    let bad = || {
        InvalidParameter(format!(
            "Layer version arn {arn} is not valid: expected arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION"
        ))
    };
    let (layer, version) = arn.rsplit_once(':').ok_or_else(bad)?;
    let version: u64 = version.parse().map_err(|_| bad())?;
    if !layer.starts_with("arn:") {
        return Err(bad());
    }
    let name = parse_layer_name(layer).map_err(|_| bad())?;
    Ok((name, version))
}

/// A function's `Layers`: at most five ([`constraints::LAYERS`]), each a
/// layer version ARN, each layer named once.
pub fn validate_layer_list(arns: &[String]) -> Result<(), InvalidParameter> {
    if arns.len() > constraints::LAYERS.rule.max {
        return Err(InvalidParameter(format!("Cannot reference more than {} layers.", constraints::LAYERS.rule.max)));
    }
    Checks::new().each(&constraints::LAYER_VERSION_ARN, arns).finish_invalid_parameter()?;
    for (i, arn) in arns.iter().enumerate() {
        let (name, _) = parse_version_arn(arn)?;
        if let Some(other) = arns[..i].iter().find(|other| parse_version_arn(other).is_ok_and(|(n, _)| n == name)) {
            return Err(InvalidParameter(format!(
                "Two different versions of the same layer are not allowed to be referenced in the same function. \
                 {other} and {arn} are versions of the same layer."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arn::Realm;

    #[test]
    fn names_and_arns_parse() {
        let realm = Realm::default();
        assert_eq!(parse_layer_name("my-layer_1").unwrap(), "my-layer_1");
        assert_eq!(parse_layer_name(&realm.layer_arn("deps")).unwrap(), "deps");
        for bad in ["", "has space", "a.b", &"x".repeat(141), "arn:aws:lambda:r:1:function:f"] {
            assert!(parse_layer_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_version_arn(&realm.layer_version_arn("deps", 3)).unwrap(), ("deps".to_owned(), 3));
        for bad in ["deps:3", "arn:aws:lambda:us-east-1:000000000000:layer:deps", "arn:aws:lambda:r:1:layer:deps:x"] {
            assert!(parse_version_arn(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn function_layer_lists_are_bounded_and_distinct() {
        let realm = Realm::default();
        let arns: Vec<String> = (1..=5).map(|i| realm.layer_version_arn(&format!("l{i}"), 1)).collect();
        assert!(validate_layer_list(&arns).is_ok());
        let six: Vec<String> = (1..=6).map(|i| realm.layer_version_arn(&format!("l{i}"), 1)).collect();
        assert_eq!(validate_layer_list(&six).unwrap_err().0, "Cannot reference more than 5 layers.");
        let twice = vec![realm.layer_version_arn("a", 1), realm.layer_version_arn("a", 2)];
        assert!(validate_layer_list(&twice).is_err());
    }
}
