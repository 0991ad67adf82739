//! Provisioned concurrency: Put/Get/Delete/ListProvisionedConcurrencyConfigs
//! and the containers they keep ready.
//!
//! A configuration names a version or an alias ([`crate::store::provisioned`]).
//! Containers belong to versions, so every change that can move them — a
//! configuration put or deleted, an alias moved or reweighted, a version
//! deleted — recomputes how many each version keeps ([`distribute`]) and
//! tells the pool about the versions whose count changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{now_lambda_format, Engine, EngineError};
use crate::constraints::{self, Checks, InvalidParameter};
use crate::function::alias::Alias;
use crate::function::{Function, FunctionRef, LATEST};
use crate::store::provisioned::ProvisionedConfig;

/// What AWS answers when provisioned concurrency is read or removed on `$LATEST`.
const NOT_PUBLISHED: &str = "The function resource provided must be an alias or a published version.";
/// What AWS answers when it is put on `$LATEST` (or an alias of it).
pub(super) const UNPUBLISHED: &str =
    "Provisioned Concurrency Configs cannot be applied to unpublished function versions.";

/// The state of one qualifier's provisioned concurrency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedStatus {
    /// The version or alias it is configured on.
    pub qualifier: String,
    pub requested: u32,
    /// Containers initialised and waiting for traffic.
    pub ready: u32,
    pub last_modified: String,
}

/// How many containers each version keeps ready: its own configuration
/// plus those of the aliases that route to it. A weighted alias's count is
/// split by its weights, as Lambda does.
pub(super) fn distribute(configs: &BTreeMap<String, ProvisionedConfig>, aliases: &[Arc<Alias>]) -> BTreeMap<u32, u32> {
    let mut out = BTreeMap::new();
    let mut add = |version: &str, n: u32| {
        if let (Ok(v), true) = (version.parse::<u32>(), n > 0) {
            *out.entry(v).or_insert(0) += n;
        }
    };
    for (qualifier, config) in configs {
        match aliases.iter().find(|a| a.name == *qualifier) {
            Some(alias) => {
                let (extra, weight) = alias.weights.iter().next().map_or(("", 0.0), |(v, w)| (v.as_str(), *w));
                let to_extra = (f64::from(config.requested) * weight).round() as u32;
                add(extra, to_extra);
                add(&alias.function_version, config.requested - to_extra);
            }
            None => add(qualifier, config.requested),
        }
    }
    out
}

/// Provisioned concurrency belongs to a published version or an alias, as
/// on Lambda: `$LATEST` changes under it.
fn published_only(r: &FunctionRef, message: &str) -> Result<String, EngineError> {
    match r.qualifier.as_deref() {
        None | Some(LATEST) => Err(InvalidParameter(message.into()).into()),
        Some(q) => Ok(q.to_owned()),
    }
}

impl Engine {
    /// How many containers each version of function `name` keeps ready.
    pub(super) fn provisioned_counts(&self, name: &str) -> BTreeMap<u32, u32> {
        distribute(&self.store.provisioned_of(name), &self.store.aliases(name))
    }

    /// Tell the pool about every version whose count differs from `before`
    /// (what [`Engine::provisioned_counts`] said before a change).
    pub(super) async fn reprovision(&self, name: &str, before: &BTreeMap<u32, u32>) {
        let after = self.provisioned_counts(name);
        let versions: std::collections::BTreeSet<u32> = before.keys().chain(after.keys()).copied().collect();
        for v in versions {
            let count = after.get(&v).copied().unwrap_or(0);
            if before.get(&v) == Some(&count) {
                continue;
            }
            let Some(f) = self.store.version(name, v) else { continue };
            match self.launch(&f).await {
                Ok(launch) => self.pool.set_provisioned(launch, count),
                Err(e) => tracing::warn!(function = %f.slot(), error = %e, "cannot provision containers"),
            }
        }
    }

    /// At start-up: provision every version that asks for it.
    pub async fn restore_provisioned(&self) {
        for name in self.store.provisioned_functions() {
            self.reprovision(&name, &BTreeMap::new()).await;
        }
    }

    /// PutProvisionedConcurrencyConfig, on a version or an alias.
    pub async fn put_provisioned(&self, r: &FunctionRef, n: u32) -> Result<ProvisionedStatus, EngineError> {
        Checks::new().number(&constraints::PROVISIONED_CONCURRENT_EXECUTIONS, Some(n)).finish()?;
        let _guard = self.writes.lock().await;
        let (target, qualifier) = self.provisioned_target(r, UNPUBLISHED)?;
        let latest = self.resolve(&r.unqualified())?;
        if target.version.is_none() {
            // An alias of `$LATEST`.
            return Err(InvalidParameter(UNPUBLISHED.into()).into());
        }
        self.check_provisioned_conflicts(&latest.name, &qualifier)?;
        let configs = self.store.provisioned_of(&latest.name);
        let others: u32 = configs.iter().filter(|(q, _)| **q != qualifier).map(|(_, c)| c.requested).sum();
        if latest.reserved_concurrency.is_some_and(|reserved| others + n > reserved) {
            return Err(InvalidParameter(
                "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for \
                 function"
                    .into(),
            )
            .into());
        }
        let before = self.provisioned_counts(&latest.name);
        let config = ProvisionedConfig { requested: n, last_modified: now_lambda_format() };
        let (name, q) = (latest.name.clone(), qualifier.clone());
        self.with_store(move |store| store.put_provisioned(&name, &q, config)).await?;
        self.reprovision(&latest.name, &before).await;
        self.provisioned_status(&latest.name, &qualifier).ok_or(EngineError::ProvisionedNotFound)
    }

    /// Lambda keeps one configuration per version: none on a version an
    /// alias with one routes to, none on an alias of a version with one.
    fn check_provisioned_conflicts(&self, name: &str, qualifier: &str) -> Result<(), EngineError> {
        let aliases = self.store.aliases(name);
        let configs = self.store.provisioned_of(name);
        let conflict = |message: &str| Err(EngineError::Conflict(message.into()));
        match aliases.iter().find(|a| a.name == qualifier) {
            Some(alias) if configs.contains_key(&alias.function_version) => conflict(
                "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version",
            ),
            None if aliases.iter().any(|a| a.function_version == qualifier && configs.contains_key(&a.name)) => {
                conflict("Version is pointed by a Provisioned Concurrency alias")
            }
            _ => Ok(()),
        }
    }

    /// A qualifier's configuration with the containers ready for it.
    fn provisioned_status(&self, name: &str, qualifier: &str) -> Option<ProvisionedStatus> {
        let config = self.store.provisioned(name, qualifier)?;
        let versions: Vec<String> = match self.store.alias(name, qualifier) {
            Some(alias) => {
                std::iter::once(alias.function_version.clone()).chain(alias.weights.keys().cloned()).collect()
            }
            None => vec![qualifier.to_owned()],
        };
        let ready: u32 = versions.iter().map(|v| self.pool.provisioned_ready(&format!("{name}:{v}"))).sum();
        Some(ProvisionedStatus {
            qualifier: qualifier.to_owned(),
            requested: config.requested,
            ready: ready.min(config.requested),
            last_modified: config.last_modified,
        })
    }

    /// The version or alias a provisioned concurrency operation names, and
    /// its qualifier. A missing alias (of a function that may not exist
    /// either) is named as Lambda names it there.
    fn provisioned_target(&self, r: &FunctionRef, latest: &str) -> Result<(Arc<Function>, String), EngineError> {
        let qualifier = match r.qualifier.as_deref() {
            Some(q) if q != LATEST && !q.bytes().all(|b| b.is_ascii_digit()) => q,
            _ => return Ok((self.resolve(r)?, published_only(r, latest)?)),
        };
        match self.resolve(r) {
            Err(EngineError::NotFound(_)) => {
                Err(EngineError::NotFound(format!("Cannot find alias arn: {}", self.alias_arn(&r.name, qualifier))))
            }
            other => Ok((other?, qualifier.to_owned())),
        }
    }

    /// GetProvisionedConcurrencyConfig.
    pub fn get_provisioned(&self, r: &FunctionRef) -> Result<ProvisionedStatus, EngineError> {
        let (f, qualifier) = self.provisioned_target(r, NOT_PUBLISHED)?;
        self.provisioned_status(&f.name, &qualifier).ok_or(EngineError::ProvisionedNotFound)
    }

    /// ListProvisionedConcurrencyConfigs: every configuration of the function, by qualifier.
    pub fn list_provisioned(&self, r: &FunctionRef) -> Result<Vec<ProvisionedStatus>, EngineError> {
        let f = self.resolve(&r.unqualified())?;
        let configs = self.store.provisioned_of(&f.name);
        Ok(configs.keys().filter_map(|q| self.provisioned_status(&f.name, q)).collect())
    }

    /// DeleteProvisionedConcurrencyConfig: succeeds on a version or alias
    /// that has none, as on Lambda.
    pub async fn delete_provisioned(&self, r: &FunctionRef) -> Result<(), EngineError> {
        let _guard = self.writes.lock().await;
        let (f, qualifier) = self.provisioned_target(r, NOT_PUBLISHED)?;
        let before = self.provisioned_counts(&f.name);
        let name = f.name.clone();
        self.with_store(move |store| store.delete_provisioned(&name, &qualifier)).await?;
        self.reprovision(&f.name, &before).await;
        Ok(())
    }

    /// The function's provisioned concurrency over all its qualifiers: what
    /// its reserved concurrency must leave room for.
    pub(super) fn provisioned_total(&self, name: &str) -> u32 {
        self.store.provisioned_of(name).values().map(|c| c.requested).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(name: &str, version: &str, weights: &[(&str, f64)]) -> Arc<Alias> {
        Arc::new(Alias {
            function: "f".into(),
            name: name.into(),
            function_version: version.into(),
            description: String::new(),
            weights: weights.iter().map(|(k, w)| (k.to_string(), *w)).collect(),
            revision_id: "r".into(),
        })
    }

    fn configs(pairs: &[(&str, u32)]) -> BTreeMap<String, ProvisionedConfig> {
        let config = |n| ProvisionedConfig { requested: n, last_modified: String::new() };
        pairs.iter().map(|(q, n)| (q.to_string(), config(*n))).collect()
    }

    #[test]
    fn versions_keep_their_own_and_their_aliases_counts() {
        let aliases = [alias("live", "2", &[]), alias("beta", "3", &[])];
        let got = distribute(&configs(&[("1", 2), ("live", 3), ("beta", 1)]), &aliases);
        assert_eq!(got, BTreeMap::from([(1, 2), (2, 3), (3, 1)]));
    }

    #[test]
    fn a_weighted_alias_splits_its_count() {
        let aliases = [alias("live", "1", &[("2", 0.25)])];
        assert_eq!(distribute(&configs(&[("live", 8)]), &aliases), BTreeMap::from([(1, 6), (2, 2)]));
        let aliases = [alias("live", "1", &[("2", 0.0)])];
        assert_eq!(distribute(&configs(&[("live", 3)]), &aliases), BTreeMap::from([(1, 3)]));
    }

    #[test]
    fn an_alias_moved_takes_its_count_along() {
        let before = distribute(&configs(&[("live", 2)]), &[alias("live", "1", &[])]);
        let after = distribute(&configs(&[("live", 2)]), &[alias("live", "2", &[])]);
        assert_eq!((before, after), (BTreeMap::from([(1, 2)]), BTreeMap::from([(2, 2)])));
    }

    #[test]
    fn latest_and_missing_aliases_keep_nothing() {
        let aliases = [alias("dev", LATEST, &[])];
        assert!(distribute(&configs(&[("dev", 2)]), &aliases).is_empty());
    }
}
