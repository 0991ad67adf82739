//! Rules and their targets, durable in SQLite (`rules.db`: WAL,
//! `synchronous=FULL`, one JSON document per rule), and kept in memory in
//! name order so matching an event never touches the disk. A write reaches
//! the map only once committed; callers serialise writes ([`super::Bus`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use rusqlite::{params, Connection, OptionalExtension};

use super::rule::{Loaded, Rule};

/// Schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum RuleStoreError {
    #[error("rules database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("rules data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored rule {name} is unreadable: {source}")]
    Corrupt { name: String, source: serde_json::Error },
    #[error("rules database was written by a newer lambdabox (schema {0})")]
    NewerSchema(i64),
}

/// See the module documentation.
#[derive(Debug)]
pub struct RuleStore {
    db: Mutex<Connection>,
    rules: RwLock<BTreeMap<String, Arc<Loaded>>>,
}

impl RuleStore {
    /// Open (creating) `rules.db` under `data_dir` and load every rule.
    pub fn open(data_dir: &Path) -> Result<RuleStore, RuleStoreError> {
        crate::private::dir(data_dir)?;
        let (db, found) = crate::store::sqlite::open::<RuleStoreError>(&data_dir.join("rules.db"))?;
        if found > SCHEMA_VERSION {
            return Err(RuleStoreError::NewerSchema(found));
        }
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS rules (name TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )?;
        db.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        let rules = load(&db)?;
        Ok(RuleStore { db: Mutex::new(db), rules: RwLock::new(rules) })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Loaded>> {
        self.rules.read().expect("rules map poisoned").get(name).cloned()
    }

    /// Every rule, in name order.
    pub fn list(&self) -> Vec<Arc<Loaded>> {
        self.rules.read().expect("rules map poisoned").values().cloned().collect()
    }

    /// Store (create or replace) `rule`.
    pub fn put(&self, rule: Rule) -> Result<Arc<Loaded>, RuleStoreError> {
        let body = serde_json::to_string(&rule).expect("a rule serialises");
        self.db().execute(
            "INSERT INTO rules (name, body) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET body = excluded.body",
            params![rule.name, body],
        )?;
        let loaded = Arc::new(Loaded::new(rule));
        self.rules.write().expect("rules map poisoned").insert(loaded.rule.name.clone(), loaded.clone());
        Ok(loaded)
    }

    pub fn delete(&self, name: &str) -> Result<(), RuleStoreError> {
        self.db().execute("DELETE FROM rules WHERE name = ?1", params![name])?;
        self.rules.write().expect("rules map poisoned").remove(name);
        Ok(())
    }

    /// A setting, if stored.
    pub fn setting(&self, key: &str) -> Result<Option<String>, RuleStoreError> {
        let value = self.db().query_row("SELECT value FROM settings WHERE key = ?1", params![key], |r| r.get(0));
        Ok(value.optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), RuleStoreError> {
        self.db().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().expect("rules database lock poisoned")
    }
}

fn load(db: &Connection) -> Result<BTreeMap<String, Arc<Loaded>>, RuleStoreError> {
    let mut stmt = db.prepare("SELECT name, body FROM rules")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (name, body) = row?;
        let rule: Rule =
            serde_json::from_str(&body).map_err(|source| RuleStoreError::Corrupt { name: name.clone(), source })?;
        out.insert(name, Arc::new(Loaded::new(rule)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str) -> Rule {
        Rule {
            name: name.into(),
            event_pattern: None,
            schedule_expression: Some("rate(1 minute)".into()),
            state: "ENABLED".into(),
            description: None,
            role_arn: None,
            targets: vec![],
            anchor_ms: 1,
            fired_ms: 2,
        }
    }

    #[test]
    fn rules_and_settings_survive_a_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let store = RuleStore::open(tmp.path()).unwrap();
        store.put(rule("b")).unwrap();
        store.put(rule("a")).unwrap();
        store.put(Rule { fired_ms: 9, ..rule("b") }).unwrap();
        store.put(rule("c")).unwrap();
        store.delete("c").unwrap();
        store.set_setting("k", "v").unwrap();
        drop(store);
        let store = RuleStore::open(tmp.path()).unwrap();
        let names: Vec<String> = store.list().iter().map(|l| l.rule.name.clone()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(store.get("b").unwrap().rule.fired_ms, 9);
        assert!(store.get("b").unwrap().schedule.is_some());
        assert_eq!(store.setting("k").unwrap().as_deref(), Some("v"));
        assert_eq!(store.setting("none").unwrap(), None);
    }
}
