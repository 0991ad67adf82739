//! Durable state: functions, their published versions and aliases
//! ([`versions`]), their provisioned concurrency ([`provisioned`]), their URLs
//! ([`urls`]) and layer versions ([`layers`]) in SQLite, code blobs on disk
//! ([`code`]).
//!
//! Every function is also kept in memory, so the invoke path reads a map and
//! never touches SQLite; writes go to SQLite first and reach the map only once
//! committed. Callers serialise writes (the engine holds one lock for all
//! management operations), which keeps the map and the database in step.

pub mod code;
mod layers;
pub mod provisioned;
pub(crate) mod sqlite;
pub mod unpack;
mod urls;
mod versions;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rusqlite::{params, Connection, OptionalExtension};

use crate::function::Function;
use code::CodeStore;

/// Schema version this build writes (`PRAGMA user_version`). 3 added the
/// `versions` and `aliases` tables, 4 `function_urls`, 5 `provisioned`; records of older
/// schemas read as they are (new fields of [`Function`] have serde defaults).
const SCHEMA_VERSION: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Function not found: {0}")]
    NotFound(String),
    #[error("Function already exist: {0}")]
    Conflict(String),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored function {name} is unreadable: {source}")]
    Corrupt { name: String, source: serde_json::Error },
    #[error("database at {path} was written by a newer lambdabox (schema {found}, this build knows {SCHEMA_VERSION})")]
    NewerSchema { path: PathBuf, found: i64 },
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Functions and their code, under one data directory.
#[derive(Debug)]
pub struct Store {
    db: Mutex<Connection>,
    functions: RwLock<HashMap<String, Arc<Function>>>,
    versions: RwLock<versions::Versions>,
    aliases: RwLock<versions::Aliases>,
    urls: RwLock<urls::Urls>,
    provisioned: RwLock<provisioned::Provisioned>,
    code: CodeStore,
}

/// What deleting a function removed: `$LATEST` and every published version.
#[derive(Debug)]
pub struct Removed {
    pub latest: Arc<Function>,
    pub versions: Vec<Arc<Function>>,
}

impl Store {
    /// Open (creating) the store under `data_dir` and load every function.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        crate::private::dir(data_dir)?;
        let path = data_dir.join("lambdabox.db");
        let (db, found) = sqlite::open::<StoreError>(&path)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema { path, found });
        }
        migrate(&db, found)?;
        let functions = load_functions(&db)?;
        let (versions, aliases) = versions::load(&db)?;
        let urls = urls::load(&db)?;
        let provisioned = provisioned::load(&db)?;
        let code = CodeStore::open(data_dir.join("code"))?;
        Ok(Store {
            db: Mutex::new(db),
            functions: RwLock::new(functions),
            versions: RwLock::new(versions),
            aliases: RwLock::new(aliases),
            urls: RwLock::new(urls),
            provisioned: RwLock::new(provisioned),
            code,
        })
    }

    pub fn code(&self) -> &CodeStore {
        &self.code
    }

    /// The function called `name`, from memory.
    pub fn get(&self, name: &str) -> Option<Arc<Function>> {
        self.functions.read().expect("store map poisoned").get(name).cloned()
    }

    /// Every function, ordered by name (ListFunctions pages over this order).
    pub fn list(&self) -> Vec<Arc<Function>> {
        let mut all: Vec<_> = self.functions.read().expect("store map poisoned").values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Add a new function; fails if the name is taken.
    pub fn insert(&self, f: Function) -> Result<Arc<Function>, StoreError> {
        let json = serde_json::to_string(&f).expect("Function serialises");
        let db = self.db.lock().expect("db poisoned");
        let existing: Option<i64> =
            db.query_row("SELECT 1 FROM functions WHERE name = ?1", params![f.name], |r| r.get(0)).optional()?;
        if existing.is_some() {
            return Err(StoreError::Conflict(f.name));
        }
        db.execute("INSERT INTO functions (name, config) VALUES (?1, ?2)", params![f.name, json])?;
        Ok(self.remember(f))
    }

    /// Replace an existing function's record.
    pub fn update(&self, f: Function) -> Result<Arc<Function>, StoreError> {
        let json = serde_json::to_string(&f).expect("Function serialises");
        let db = self.db.lock().expect("db poisoned");
        if db.execute("UPDATE functions SET config = ?2 WHERE name = ?1", params![f.name, json])? == 0 {
            return Err(StoreError::NotFound(f.name));
        }
        Ok(self.remember(f))
    }

    /// Remove a function with its versions, aliases and URLs, returning what it was.
    pub fn delete(&self, name: &str) -> Result<Removed, StoreError> {
        let mut db = self.db.lock().expect("db poisoned");
        let tx = db.transaction()?;
        if tx.execute("DELETE FROM functions WHERE name = ?1", params![name])? == 0 {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        tx.execute("DELETE FROM versions WHERE function = ?1", params![name])?;
        tx.execute("DELETE FROM aliases WHERE function = ?1", params![name])?;
        tx.execute("DELETE FROM provisioned WHERE function = ?1", params![name])?;
        Store::delete_urls_in(&tx, name)?;
        tx.commit()?;
        self.forget_urls(|u| u.function == name);
        self.forget_provisioned(name, None);
        self.aliases.write().expect("aliases poisoned").remove(name);
        let versions = self.versions.write().expect("versions poisoned").remove(name).unwrap_or_default();
        let latest = self.functions.write().expect("store map poisoned").remove(name);
        let latest = latest.ok_or_else(|| StoreError::NotFound(name.to_owned()))?;
        Ok(Removed { latest, versions: versions.into_values().collect() })
    }

    /// Every function's `$LATEST` and published versions.
    pub fn every_version(&self) -> Vec<Arc<Function>> {
        let mut all = self.list();
        all.extend(self.versions.read().expect("versions poisoned").values().flat_map(|v| v.values().cloned()));
        all
    }

    /// Whether any function or published version still runs the code blob
    /// `sha256_hex`, as its code or as one of its layers.
    pub fn code_in_use(&self, sha256_hex: &str) -> bool {
        self.every_version()
            .iter()
            .any(|f| f.code_sha256 == sha256_hex || f.layers.iter().any(|l| l.code_sha256 == sha256_hex))
    }

    fn remember(&self, f: Function) -> Arc<Function> {
        let f = Arc::new(f);
        self.functions.write().expect("store map poisoned").insert(f.name.clone(), f.clone());
        f
    }
}

/// Bring a database written at schema `found` up to [`SCHEMA_VERSION`].
/// Every step only adds tables, so older data directories open unchanged.
fn migrate(db: &Connection, found: i64) -> Result<(), StoreError> {
    // Schemas 1 and 2: functions, then layers (both created idempotently).
    db.execute_batch("CREATE TABLE IF NOT EXISTS functions (name TEXT PRIMARY KEY, config TEXT NOT NULL) STRICT;")?;
    db.execute_batch(layers::SCHEMA)?;
    if found < 3 {
        db.execute_batch(versions::SCHEMA)?;
    }
    if found < 4 {
        db.execute_batch(urls::SCHEMA)?;
    }
    if found < 5 {
        db.execute_batch(provisioned::SCHEMA)?;
    }
    db.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

fn load_functions(db: &Connection) -> Result<HashMap<String, Arc<Function>>, StoreError> {
    let mut stmt = db.prepare("SELECT name, config FROM functions")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (name, json) = row?;
        let f: Function =
            serde_json::from_str(&json).map_err(|source| StoreError::Corrupt { name: name.clone(), source })?;
        out.insert(name, Arc::new(f));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Function {
        Function {
            name: name.into(),
            runtime: "python3.11".into(),
            handler: "app.handler".into(),
            role: "arn:aws:iam::000000000000:role/r".into(),
            description: String::new(),
            memory_mb: 128,
            timeout_s: 3,
            ephemeral_storage_mb: 512,
            environment: [("K".to_string(), "V".to_string())].into(),
            code_sha256: "ab".repeat(32),
            code_size: 10,
            last_modified: "2026-01-01T00:00:00.000+0000".into(),
            revision_id: "r1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn functions_survive_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = Store::open(tmp.path()).unwrap();
            store.insert(sample("b")).unwrap();
            store.insert(sample("a")).unwrap();
            assert!(matches!(store.insert(sample("a")), Err(StoreError::Conflict(_))));
            let mut changed = sample("a");
            changed.memory_mb = 256;
            store.update(changed).unwrap();
        }
        let store = Store::open(tmp.path()).unwrap();
        let names: Vec<_> = store.list().iter().map(|f| f.name.clone()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(store.get("a").unwrap().memory_mb, 256);
        assert!(store.code_in_use(&"ab".repeat(32)));
        store.delete("a").unwrap();
        assert!(matches!(store.delete("a"), Err(StoreError::NotFound(_))));
        assert!(matches!(store.update(sample("zz")), Err(StoreError::NotFound(_))));
        assert!(Store::open(tmp.path()).unwrap().get("a").is_none(), "a delete is durable");
    }

    #[test]
    fn urls_survive_reopen_and_go_with_their_function_or_alias() {
        use crate::function::url::{AuthType, UrlConfig};
        let url = |id: &str, function: &str, alias: Option<&str>| UrlConfig {
            url_id: id.into(),
            function: function.into(),
            alias: alias.map(str::to_owned),
            auth_type: AuthType::None,
            cors: None,
            invoke_mode: None,
            creation_time: "t".into(),
            last_modified_time: "t".into(),
        };
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = Store::open(tmp.path()).unwrap();
            store.insert(sample("f")).unwrap();
            store.insert(sample("g")).unwrap();
            store.put_url(url("f0", "f", None)).unwrap();
            store.put_url(url("f1", "f", Some("live"))).unwrap();
            store.put_url(url("g0", "g", None)).unwrap();
            assert!(store.put_url(url("other", "f", None)).is_err(), "one URL per function and alias");
        }
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(store.url("f1").unwrap().alias.as_deref(), Some("live"));
        let ids: Vec<_> = store.urls_of("f").iter().map(|u| u.url_id.clone()).collect();
        assert_eq!(ids, ["f0", "f1"], "the function's own first");
        store.delete_alias("f", "live").unwrap();
        assert!(store.url("f1").is_none() && store.url_of("f", Some("live")).is_none());
        store.delete("f").unwrap();
        let store = Store::open(tmp.path()).unwrap();
        assert!(store.url("f0").is_none() && store.url("f1").is_none(), "gone with the function, durably");
        assert_eq!(store.url_of("g", None).unwrap().url_id, "g0");
    }

    #[test]
    fn versions_and_aliases_survive_reopen_and_go_with_their_function() {
        let tmp = tempfile::tempdir().unwrap();
        {
            // A data directory of schema 2, before versions existed.
            let store = Store::open(tmp.path()).unwrap();
            store.insert(sample("f")).unwrap();
            store
                .db
                .lock()
                .unwrap()
                .execute_batch("DROP TABLE versions; DROP TABLE aliases; PRAGMA user_version = 2;")
                .unwrap();
        }
        {
            let store = Store::open(tmp.path()).unwrap();
            let latest = Function { last_version: 1, published: Some(1), ..sample("f") };
            let v1 = Function { version: Some(1), code_sha256: "cd".repeat(32), ..sample("f") };
            store.publish(latest, v1).unwrap();
            let alias = crate::function::alias::Alias {
                function: "f".into(),
                name: "live".into(),
                function_version: "1".into(),
                description: String::new(),
                weights: Default::default(),
                revision_id: "a1".into(),
            };
            store.put_alias(alias).unwrap();
            // Schema 4 kept provisioned concurrency in the version's record.
            let sql = "DROP TABLE provisioned; PRAGMA user_version = 4; \
                       UPDATE versions SET config = json_set(config, '$.provisioned_concurrency', 2);";
            store.db.lock().unwrap().execute_batch(sql).unwrap();
        }
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(store.get("f").unwrap().last_version, 1);
        assert_eq!(store.provisioned("f", "1").map(|c| c.requested), Some(2), "moved to its own table");
        assert_eq!(store.alias("f", "live").unwrap().function_version, "1");
        assert!(store.code_in_use(&"cd".repeat(32)), "a version's code is in use");
        let removed = store.delete("f").unwrap();
        assert_eq!(removed.versions.len(), 1);
        let store = Store::open(tmp.path()).unwrap();
        assert!(store.versions("f").is_empty() && store.aliases("f").is_empty(), "gone with the function");
        assert!(store.provisioned_of("f").is_empty(), "and its provisioned concurrency");
    }
}
