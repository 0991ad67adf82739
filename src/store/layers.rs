//! Layer versions in SQLite. Version numbers only grow: a layer's counter
//! outlives its deleted versions, as on Lambda, so an ARN never names two
//! different zips.

use rusqlite::{params, Connection, OptionalExtension};

use super::{Store, StoreError};
use crate::layer::LayerVersion;

/// Tables for layers; created by [`Store::open`].
pub(super) const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS layer_versions (
        name TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (name, version)
    ) STRICT;
    CREATE TABLE IF NOT EXISTS layer_counters (name TEXT PRIMARY KEY, last INTEGER NOT NULL) STRICT;
";

impl Store {
    /// Store a new version of layer `v.name`; its number is assigned here.
    pub fn publish_layer(&self, mut v: LayerVersion) -> Result<LayerVersion, StoreError> {
        let mut db = self.db.lock().expect("db poisoned");
        let tx = db.transaction()?;
        let last: Option<i64> = tx
            .query_row("SELECT last FROM layer_counters WHERE name = ?1", params![v.name], |r| r.get(0))
            .optional()?;
        let next = last.unwrap_or(0) + 1;
        v.version = next as u64;
        tx.execute(
            "INSERT INTO layer_counters (name, last) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET last = ?2",
            params![v.name, next],
        )?;
        let doc = serde_json::to_string(&v).expect("LayerVersion serialises");
        tx.execute("INSERT INTO layer_versions (name, version, doc) VALUES (?1, ?2, ?3)", params![v.name, next, doc])?;
        tx.commit()?;
        Ok(v)
    }

    /// One version of a layer, if it exists.
    pub fn layer_version(&self, name: &str, version: u64) -> Result<Option<LayerVersion>, StoreError> {
        let db = self.db.lock().expect("db poisoned");
        let doc: Option<String> = db
            .query_row(
                "SELECT doc FROM layer_versions WHERE name = ?1 AND version = ?2",
                params![name, version as i64],
                |r| r.get(0),
            )
            .optional()?;
        doc.map(|d| parse(name, &d)).transpose()
    }

    /// Every version of one layer, newest first.
    pub fn layer_versions(&self, name: &str) -> Result<Vec<LayerVersion>, StoreError> {
        let db = self.db.lock().expect("db poisoned");
        query(&db, "SELECT name, doc FROM layer_versions WHERE name = ?1 ORDER BY version DESC", params![name])
    }

    /// The newest version of every layer, by name.
    pub fn latest_layer_versions(&self) -> Result<Vec<LayerVersion>, StoreError> {
        let db = self.db.lock().expect("db poisoned");
        query(
            &db,
            "SELECT name, doc FROM layer_versions v WHERE version = \
             (SELECT MAX(version) FROM layer_versions WHERE name = v.name) ORDER BY name",
            params![],
        )
    }

    /// Delete one version; `None` if there was no such version.
    pub fn delete_layer_version(&self, name: &str, version: u64) -> Result<Option<LayerVersion>, StoreError> {
        let found = self.layer_version(name, version)?;
        if found.is_some() {
            let db = self.db.lock().expect("db poisoned");
            db.execute("DELETE FROM layer_versions WHERE name = ?1 AND version = ?2", params![name, version as i64])?;
        }
        Ok(found)
    }

    /// Whether any layer version stores the blob `sha256_hex`.
    pub fn layer_blob_in_use(&self, sha256_hex: &str) -> Result<bool, StoreError> {
        let db = self.db.lock().expect("db poisoned");
        let mut stmt = db.prepare("SELECT name, doc FROM layer_versions")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (name, doc) = row?;
            if parse(&name, &doc)?.code_sha256 == sha256_hex {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn query(db: &Connection, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<LayerVersion>, StoreError> {
    let mut stmt = db.prepare(sql)?;
    let rows = stmt.query_map(params, |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    rows.map(|row| {
        let (name, doc) = row?;
        parse(&name, &doc)
    })
    .collect()
}

fn parse(name: &str, doc: &str) -> Result<LayerVersion, StoreError> {
    serde_json::from_str(doc).map_err(|source| StoreError::Corrupt { name: format!("layer {name}"), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(name: &str, sha: &str) -> LayerVersion {
        LayerVersion {
            name: name.into(),
            version: 0,
            description: String::new(),
            compatible_runtimes: vec!["python3.11".into()],
            compatible_architectures: vec![],
            license_info: None,
            code_sha256: sha.into(),
            code_size: 1,
            created: "2026-01-01T00:00:00.000+0000".into(),
        }
    }

    #[test]
    fn versions_number_up_and_never_reuse() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(store.publish_layer(version("a", "01")).unwrap().version, 1);
        assert_eq!(store.publish_layer(version("a", "02")).unwrap().version, 2);
        assert_eq!(store.publish_layer(version("b", "03")).unwrap().version, 1);
        assert_eq!(store.delete_layer_version("a", 2).unwrap().unwrap().code_sha256, "02");
        assert!(store.delete_layer_version("a", 2).unwrap().is_none());
        assert!(!store.layer_blob_in_use("02").unwrap() && store.layer_blob_in_use("01").unwrap());
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(store.publish_layer(version("a", "04")).unwrap().version, 3, "numbers survive deletes and reopen");
        let versions: Vec<u64> = store.layer_versions("a").unwrap().iter().map(|v| v.version).collect();
        assert_eq!(versions, [3, 1]);
        let latest: Vec<(String, u64)> =
            store.latest_layer_versions().unwrap().into_iter().map(|v| (v.name, v.version)).collect();
        assert_eq!(latest, [("a".to_owned(), 3), ("b".to_owned(), 1)]);
        assert_eq!(store.layer_version("b", 1).unwrap().unwrap().code_sha256, "03");
    }
}
