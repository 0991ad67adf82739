//! Provisioned concurrency configurations in SQLite, kept in memory.
//!
//! On Lambda a configuration belongs to a qualifier — a version number or
//! an alias — not to a version's snapshot: one on an alias follows the
//! alias when it moves. So they live in a table of their own, keyed by
//! function and qualifier, and the engine works out from them how many
//! containers each version keeps ready.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// The table of schema 5; created by the migration in [`Store::open`],
/// which also moves the counts schema 4 kept in version records here.
pub(super) const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS provisioned (
        function TEXT NOT NULL, qualifier TEXT NOT NULL, requested INTEGER NOT NULL, last_modified TEXT NOT NULL,
        PRIMARY KEY (function, qualifier)
    ) STRICT;
    INSERT OR IGNORE INTO provisioned (function, qualifier, requested, last_modified)
        SELECT function, CAST(version AS TEXT), json_extract(config, '$.provisioned_concurrency'),
               json_extract(config, '$.last_modified')
        FROM versions WHERE json_extract(config, '$.provisioned_concurrency') > 0;
";

/// One PutProvisionedConcurrencyConfig, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionedConfig {
    /// `RequestedProvisionedConcurrentExecutions`.
    pub requested: u32,
    /// When it was last put, as Lambda formats it.
    pub last_modified: String,
}

/// Configurations by function, then qualifier.
pub(super) type Provisioned = HashMap<String, BTreeMap<String, ProvisionedConfig>>;

impl Store {
    /// The configuration on `qualifier` of function `name`.
    pub fn provisioned(&self, name: &str, qualifier: &str) -> Option<ProvisionedConfig> {
        self.provisioned.read().expect("provisioned poisoned").get(name)?.get(qualifier).cloned()
    }

    /// Every configuration of function `name`, by qualifier.
    pub fn provisioned_of(&self, name: &str) -> BTreeMap<String, ProvisionedConfig> {
        self.provisioned.read().expect("provisioned poisoned").get(name).cloned().unwrap_or_default()
    }

    /// The names of the functions that have any configuration.
    pub fn provisioned_functions(&self) -> Vec<String> {
        self.provisioned.read().expect("provisioned poisoned").keys().cloned().collect()
    }

    /// Create or replace the configuration on `qualifier`.
    pub fn put_provisioned(&self, name: &str, qualifier: &str, config: ProvisionedConfig) -> Result<(), StoreError> {
        let db = self.db.lock().expect("db poisoned");
        db.execute(
            "INSERT INTO provisioned (function, qualifier, requested, last_modified) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(function, qualifier) DO UPDATE SET requested = ?3, last_modified = ?4",
            params![name, qualifier, config.requested, config.last_modified],
        )?;
        let mut all = self.provisioned.write().expect("provisioned poisoned");
        all.entry(name.to_owned()).or_default().insert(qualifier.to_owned(), config);
        Ok(())
    }

    /// Remove the configuration on `qualifier`; whether there was one.
    pub fn delete_provisioned(&self, name: &str, qualifier: &str) -> Result<bool, StoreError> {
        let db = self.db.lock().expect("db poisoned");
        db.execute("DELETE FROM provisioned WHERE function = ?1 AND qualifier = ?2", params![name, qualifier])?;
        Ok(self.forget_provisioned(name, Some(qualifier)))
    }

    /// Drop from memory what a committed delete removed: one qualifier's
    /// configuration, or (`None`) all of the function's.
    pub(super) fn forget_provisioned(&self, name: &str, qualifier: Option<&str>) -> bool {
        let mut all = self.provisioned.write().expect("provisioned poisoned");
        let removed = match (all.get_mut(name), qualifier) {
            (Some(configs), Some(q)) => configs.remove(q).is_some(),
            (Some(configs), None) => !std::mem::take(configs).is_empty(),
            (None, _) => false,
        };
        if all.get(name).is_some_and(BTreeMap::is_empty) {
            all.remove(name);
        }
        removed
    }
}

/// Every stored configuration.
pub(super) fn load(db: &Connection) -> Result<Provisioned, StoreError> {
    let mut out = Provisioned::new();
    let mut stmt = db.prepare("SELECT function, qualifier, requested, last_modified FROM provisioned")?;
    let rows = stmt.query_map([], |r| {
        let config = ProvisionedConfig { requested: r.get(2)?, last_modified: r.get(3)? };
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, config))
    })?;
    for row in rows {
        let (function, qualifier, config) = row?;
        out.entry(function).or_default().insert(qualifier, config);
    }
    Ok(out)
}
