//! Function URL configurations in SQLite, kept in memory by URL id so the
//! URL listener finds a request's function without the database.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{params, Connection, Transaction};

use super::{Store, StoreError};
use crate::function::url::UrlConfig;

/// The table of schema 4; created by the migration in [`Store::open`].
/// `qualifier` is the alias, `''` for the function itself: one URL each.
pub(super) const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS function_urls (
        url_id TEXT PRIMARY KEY, function TEXT NOT NULL, qualifier TEXT NOT NULL, config TEXT NOT NULL,
        UNIQUE (function, qualifier)
    ) STRICT;
";

/// URL configurations by URL id.
pub(super) type Urls = HashMap<String, Arc<UrlConfig>>;

impl Store {
    /// The URL whose id is `url_id`.
    pub fn url(&self, url_id: &str) -> Option<Arc<UrlConfig>> {
        self.urls.read().expect("urls poisoned").get(url_id).cloned()
    }

    /// The URL of function `name` (`alias`: of that alias).
    pub fn url_of(&self, name: &str, alias: Option<&str>) -> Option<Arc<UrlConfig>> {
        let urls = self.urls.read().expect("urls poisoned");
        urls.values().find(|u| u.function == name && u.alias.as_deref() == alias).cloned()
    }

    /// Every URL of function `name` and its aliases: the function's first,
    /// then by alias name.
    pub fn urls_of(&self, name: &str) -> Vec<Arc<UrlConfig>> {
        let urls = self.urls.read().expect("urls poisoned");
        let mut all: Vec<_> = urls.values().filter(|u| u.function == name).cloned().collect();
        all.sort_by(|a, b| a.alias.cmp(&b.alias));
        all
    }

    /// Create or replace a URL configuration.
    pub fn put_url(&self, url: UrlConfig) -> Result<Arc<UrlConfig>, StoreError> {
        let json = serde_json::to_string(&url).expect("UrlConfig serialises");
        let db = self.db.lock().expect("db poisoned");
        db.execute(
            "INSERT INTO function_urls (url_id, function, qualifier, config) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(url_id) DO UPDATE SET config = ?4",
            params![url.url_id, url.function, url.alias.as_deref().unwrap_or(""), json],
        )?;
        let url = Arc::new(url);
        self.urls.write().expect("urls poisoned").insert(url.url_id.clone(), url.clone());
        Ok(url)
    }

    /// Remove the URL of function `name` (or of its `alias`); whether there was one.
    pub fn delete_url(&self, name: &str, alias: Option<&str>) -> Result<bool, StoreError> {
        let db = self.db.lock().expect("db poisoned");
        let sql = "DELETE FROM function_urls WHERE function = ?1 AND qualifier = ?2";
        let removed = db.execute(sql, params![name, alias.unwrap_or("")])? > 0;
        self.forget_urls(|u| u.function == name && u.alias.as_deref() == alias);
        Ok(removed)
    }

    /// Within a transaction that deletes function `name`: its URLs go too.
    pub(super) fn delete_urls_in(tx: &Transaction<'_>, name: &str) -> Result<(), StoreError> {
        tx.execute("DELETE FROM function_urls WHERE function = ?1", params![name])?;
        Ok(())
    }

    /// Drop from memory the URLs `gone` picks (after the database commit).
    pub(super) fn forget_urls(&self, gone: impl Fn(&UrlConfig) -> bool) {
        self.urls.write().expect("urls poisoned").retain(|_, u| !gone(u));
    }
}

/// Every stored URL configuration.
pub(super) fn load(db: &Connection) -> Result<Urls, StoreError> {
    let mut stmt = db.prepare("SELECT url_id, config FROM function_urls")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut urls = Urls::new();
    for row in rows {
        let (id, json) = row?;
        let url: UrlConfig =
            serde_json::from_str(&json).map_err(|source| StoreError::Corrupt { name: format!("URL {id}"), source })?;
        urls.insert(id, Arc::new(url));
    }
    Ok(urls)
}
