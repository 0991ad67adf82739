//! Aliases: a name (`live`, `staging`) that points at one version of a
//! function, and may send a share of its invocations to a second one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::constraints::{self, invalid, Checks, Refused};
use crate::function::LATEST;

/// An alias as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    pub function: String,
    pub name: String,
    /// `$LATEST` or a version number: what the alias invokes.
    pub function_version: String,
    pub description: String,
    /// `RoutingConfig.AdditionalVersionWeights`: at most one other version
    /// and the share (0 to 1) of invocations it gets.
    pub weights: BTreeMap<String, f64>,
    pub revision_id: String,
}

impl Alias {
    /// The version one invocation runs, for a `draw` uniform in [0, 1):
    /// the additional version with its weight's probability, else the primary.
    pub fn route(&self, draw: f64) -> &str {
        match self.weights.iter().next() {
            Some((version, weight)) if draw < *weight => version,
            _ => &self.function_version,
        }
    }
}

/// What CreateAlias and UpdateAlias set; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct AliasPatch {
    pub function_version: Option<String>,
    pub description: Option<String>,
    pub weights: Option<BTreeMap<String, f64>>,
}

impl AliasPatch {
    /// The model's constraints, all together, then Lambda's own rules on
    /// the routing configuration (those that need no stored state).
    pub fn validate(&self) -> Result<(), Refused> {
        Checks::new()
            .text(&constraints::ALIAS_FUNCTION_VERSION, self.function_version.as_deref())
            .text(&constraints::DESCRIPTION, self.description.as_deref())
            .finish()?;
        let Some(weights) = &self.weights else { return Ok(()) };
        let shown = || {
            let pairs: Vec<String> = weights.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            format!("{{{}}}", pairs.join(", "))
        };
        if weights.values().any(|w| !(0.0..=1.0).contains(w)) {
            return Err(Refused::Validation(format!(
                "1 validation error detected: Value '{}' at 'routingConfig.additionalVersionWeights' failed to \
                 satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal \
                 to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]",
                shown()
            )));
        }
        if weights.keys().any(|k| k.is_empty() || k.len() > 1024 || !k.bytes().all(|b| b.is_ascii_digit())) {
            return Err(Refused::Validation(format!(
                "1 validation error detected: Value '{}' at 'routingConfig.additionalVersionWeights' failed to \
                 satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal \
                 to 1024, Member must have length greater than or equal to 1, Member must satisfy regular \
                 expression pattern: [0-9]+]",
                shown()
            )));
        }
        if weights.len() > 1 {
            return Err(invalid("Number of items in AdditionalVersionWeights cannot be greater than 1").into());
        }
        Ok(())
    }

    /// The rules between the alias's version and its routing, checked on
    /// the alias as it would be after the change.
    pub fn check_routing(alias: &Alias) -> Result<(), Refused> {
        let Some(extra) = alias.weights.keys().next() else { return Ok(()) };
        if alias.function_version == LATEST {
            return Err(invalid("$LATEST is not supported for an alias pointing to more than 1 version").into());
        }
        if *extra == alias.function_version {
            return Err(invalid(format!(
                "Invalid function version {extra}. Function version {extra} is already included in routing \
                 configuration."
            ))
            .into());
        }
        Ok(())
    }
}

/// An alias name as Lambda takes it: `[a-zA-Z0-9-_]{1,128}`, not all digits
/// (that would be a version).
pub fn validate_alias_name(name: &str) -> Result<(), Refused> {
    Checks::new().text(&constraints::ALIAS_NAME, Some(name)).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(version: &str, weights: &[(&str, f64)]) -> Alias {
        Alias {
            function: "f".into(),
            name: "live".into(),
            function_version: version.into(),
            description: String::new(),
            weights: weights.iter().map(|(k, w)| (k.to_string(), *w)).collect(),
            revision_id: "r".into(),
        }
    }

    #[test]
    fn routes_by_weight() {
        let a = alias("1", &[("2", 0.3)]);
        assert_eq!((a.route(0.0), a.route(0.29), a.route(0.3), a.route(0.99)), ("2", "2", "1", "1"));
        assert_eq!(alias("1", &[]).route(0.0), "1");
        assert_eq!(alias("1", &[("2", 0.0)]).route(0.0), "1", "a zero weight never routes");
    }

    #[test]
    fn names_and_routing_follow_lambda() {
        assert!(validate_alias_name("live-2024_a").is_ok());
        for bad in ["2024", "", "has space", "$LATEST", &"a".repeat(129)] {
            assert!(matches!(validate_alias_name(bad), Err(Refused::Validation(_))), "{bad:?} accepted");
        }
        let msg = validate_alias_name("2024").unwrap_err().to_string();
        assert!(msg.contains("Value '2024' at 'name'") && msg.contains("(?!^[0-9]+$)([a-zA-Z0-9-_]+)"), "{msg}");
        let patch = |w: &[(&str, f64)]| {
            AliasPatch { weights: Some(w.iter().map(|(k, v)| (k.to_string(), *v)).collect()), ..Default::default() }
                .validate()
        };
        assert!(patch(&[("2", 0.5)]).is_ok() && patch(&[]).is_ok());
        let high = patch(&[("2", 2.0)]).unwrap_err().to_string();
        assert!(high.contains("Value '{2=2.0}' at 'routingConfig.additionalVersionWeights'"), "{high}");
        assert!(matches!(patch(&[("$LATEST", 0.5)]), Err(Refused::Validation(m)) if m.contains("{$LATEST=0.5}")));
        assert!(matches!(patch(&[("1", 0.8), ("2", 0.2)]), Err(Refused::InvalidParameter(_))));
        assert!(AliasPatch::check_routing(&alias("1", &[("1", 0.5)])).is_err());
        assert!(AliasPatch::check_routing(&alias(LATEST, &[("1", 0.5)])).is_err());
        assert!(AliasPatch::check_routing(&alias("1", &[("2", 0.5)])).is_ok());
    }
}
