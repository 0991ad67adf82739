//! Published versions and aliases in SQLite, kept in memory beside
//! `$LATEST` so the invoke path resolves a qualifier without the database.
//!
//! A version's record is a whole [`Function`]: a frozen copy of `$LATEST`
//! as it was published, with its own number and revision. Its code blob
//! stays in the code store for as long as some version or `$LATEST` runs it
//! ([`Store::code_in_use`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rusqlite::{params, Connection};

use super::{Store, StoreError};
use crate::function::alias::Alias;
use crate::function::Function;

/// Tables of schema 3; created by the migration in [`Store::open`].
pub(super) const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS versions (
        function TEXT NOT NULL, version INTEGER NOT NULL, config TEXT NOT NULL, PRIMARY KEY (function, version)
    ) STRICT;
    CREATE TABLE IF NOT EXISTS aliases (
        function TEXT NOT NULL, name TEXT NOT NULL, config TEXT NOT NULL, PRIMARY KEY (function, name)
    ) STRICT;
";

/// Published versions by function, then number.
pub(super) type Versions = HashMap<String, BTreeMap<u32, Arc<Function>>>;
/// Aliases by function, then name.
pub(super) type Aliases = HashMap<String, BTreeMap<String, Arc<Alias>>>;

impl Store {
    /// Version `n` of function `name`.
    pub fn version(&self, name: &str, n: u32) -> Option<Arc<Function>> {
        self.versions.read().expect("versions poisoned").get(name)?.get(&n).cloned()
    }

    /// Function `name`'s published versions, in ascending order.
    pub fn versions(&self, name: &str) -> Vec<Arc<Function>> {
        let all = self.versions.read().expect("versions poisoned");
        all.get(name).map(|v| v.values().cloned().collect()).unwrap_or_default()
    }

    /// Store a new version and `$LATEST` as publishing it left it (its
    /// counter and revision moved), in one transaction.
    pub fn publish(&self, latest: Function, version: Function) -> Result<Arc<Function>, StoreError> {
        let n = version.version.expect("a published version has a number");
        let mut db = self.db.lock().expect("db poisoned");
        let tx = db.transaction()?;
        let json = serde_json::to_string(&latest).expect("Function serialises");
        if tx.execute("UPDATE functions SET config = ?2 WHERE name = ?1", params![latest.name, json])? == 0 {
            return Err(StoreError::NotFound(latest.name));
        }
        let json = serde_json::to_string(&version).expect("Function serialises");
        tx.execute(
            "INSERT INTO versions (function, version, config) VALUES (?1, ?2, ?3)",
            params![version.name, n, json],
        )?;
        tx.commit()?;
        self.remember(latest);
        let version = Arc::new(version);
        let mut versions = self.versions.write().expect("versions poisoned");
        versions.entry(version.name.clone()).or_default().insert(n, version.clone());
        Ok(version)
    }

    /// Remove one version and its provisioned concurrency, returning it;
    /// `None` when there was none.
    pub fn delete_version(&self, name: &str, n: u32) -> Result<Option<Arc<Function>>, StoreError> {
        let mut db = self.db.lock().expect("db poisoned");
        let tx = db.transaction()?;
        tx.execute("DELETE FROM versions WHERE function = ?1 AND version = ?2", params![name, n])?;
        tx.execute("DELETE FROM provisioned WHERE function = ?1 AND qualifier = ?2", params![name, n.to_string()])?;
        tx.commit()?;
        self.forget_provisioned(name, Some(&n.to_string()));
        let mut versions = self.versions.write().expect("versions poisoned");
        Ok(versions.get_mut(name).and_then(|v| v.remove(&n)))
    }

    /// Alias `alias` of function `name`.
    pub fn alias(&self, name: &str, alias: &str) -> Option<Arc<Alias>> {
        self.aliases.read().expect("aliases poisoned").get(name)?.get(alias).cloned()
    }

    /// Function `name`'s aliases, by name.
    pub fn aliases(&self, name: &str) -> Vec<Arc<Alias>> {
        let all = self.aliases.read().expect("aliases poisoned");
        all.get(name).map(|a| a.values().cloned().collect()).unwrap_or_default()
    }

    /// Create or replace an alias.
    pub fn put_alias(&self, alias: Alias) -> Result<Arc<Alias>, StoreError> {
        let json = serde_json::to_string(&alias).expect("Alias serialises");
        let db = self.db.lock().expect("db poisoned");
        db.execute(
            "INSERT INTO aliases (function, name, config) VALUES (?1, ?2, ?3) \
             ON CONFLICT(function, name) DO UPDATE SET config = ?3",
            params![alias.function, alias.name, json],
        )?;
        let alias = Arc::new(alias);
        let mut aliases = self.aliases.write().expect("aliases poisoned");
        aliases.entry(alias.function.clone()).or_default().insert(alias.name.clone(), alias.clone());
        Ok(alias)
    }

    /// Remove an alias with its URL and provisioned concurrency, returning
    /// the alias; `None` when there was none.
    pub fn delete_alias(&self, name: &str, alias: &str) -> Result<Option<Arc<Alias>>, StoreError> {
        let mut db = self.db.lock().expect("db poisoned");
        let tx = db.transaction()?;
        tx.execute("DELETE FROM aliases WHERE function = ?1 AND name = ?2", params![name, alias])?;
        tx.execute("DELETE FROM function_urls WHERE function = ?1 AND qualifier = ?2", params![name, alias])?;
        tx.execute("DELETE FROM provisioned WHERE function = ?1 AND qualifier = ?2", params![name, alias])?;
        tx.commit()?;
        self.forget_urls(|u| u.function == name && u.alias.as_deref() == Some(alias));
        self.forget_provisioned(name, Some(alias));
        let mut aliases = self.aliases.write().expect("aliases poisoned");
        Ok(aliases.get_mut(name).and_then(|a| a.remove(alias)))
    }
}

/// Every stored version and alias.
pub(super) fn load(db: &Connection) -> Result<(Versions, Aliases), StoreError> {
    let mut versions = Versions::new();
    let mut stmt = db.prepare("SELECT function, version, config FROM versions")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?, r.get::<_, String>(2)?)))?;
    for row in rows {
        let (name, n, json) = row?;
        let f: Function = serde_json::from_str(&json)
            .map_err(|source| StoreError::Corrupt { name: format!("{name}:{n}"), source })?;
        versions.entry(name).or_default().insert(n, Arc::new(f));
    }
    let mut aliases = Aliases::new();
    let mut stmt = db.prepare("SELECT function, name, config FROM aliases")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
    for row in rows {
        let (function, name, json) = row?;
        let a: Alias = serde_json::from_str(&json)
            .map_err(|source| StoreError::Corrupt { name: format!("{function} alias {name}"), source })?;
        aliases.entry(function).or_default().insert(name, Arc::new(a));
    }
    Ok((versions, aliases))
}
