//! EventInvokeConfig: what a function (or one of its versions or aliases)
//! asks of its asynchronous invocations — how often to retry, how old an
//! event may get, and where records of successes and failures go.
//!
//! Configs live beside the events they govern, in the queue's database
//! (table `invoke_configs`, keyed by function and qualifier), and in memory,
//! so the dispatcher reads a map per attempt. Deleting a function purges
//! them with its events.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::{DEFAULT_MAX_EVENT_AGE_S, DEFAULT_MAX_RETRIES};

/// One stored config. Unset members take Lambda's defaults when events run
/// and are left out when the config is shown, as AWS does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInvokeConfig {
    pub max_retries: Option<u32>,
    pub max_age_s: Option<u32>,
    /// Destination ARNs; a Lambda function's, as lambdabox serves no other.
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
    /// Unix ms of the last Put or Update.
    pub last_modified_ms: i64,
}

impl EventInvokeConfig {
    /// Retries after a function error.
    pub fn retries(&self) -> u32 {
        self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES)
    }

    /// Most age an event may reach, in ms.
    pub fn max_age_ms(&self) -> i64 {
        i64::from(self.max_age_s.unwrap_or(DEFAULT_MAX_EVENT_AGE_S)) * 1000
    }
}

/// A config with what it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub function: String,
    /// `$LATEST`, a version or an alias.
    pub qualifier: String,
    pub config: EventInvokeConfig,
}

pub(super) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS invoke_configs (
    function TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
);";

/// Store (`Some`) or remove (`None`) one config.
pub(super) fn set(
    tx: &Connection,
    function: &str,
    qualifier: &str,
    config: Option<&EventInvokeConfig>,
) -> rusqlite::Result<()> {
    match config {
        Some(c) => {
            let json = serde_json::to_string(c).expect("a config serialises");
            tx.execute(
                "INSERT INTO invoke_configs (function, qualifier, config) VALUES (?1, ?2, ?3)
                 ON CONFLICT (function, qualifier) DO UPDATE SET config = excluded.config",
                params![function, qualifier, json],
            )?;
        }
        None => {
            tx.execute(
                "DELETE FROM invoke_configs WHERE function = ?1 AND qualifier = ?2",
                params![function, qualifier],
            )?;
        }
    }
    Ok(())
}

/// Every stored config, at start-up. One that no longer parses (written by
/// a newer lambdabox) is skipped with a warning rather than failing start.
pub(super) fn load(db: &Connection) -> rusqlite::Result<Vec<ConfigEntry>> {
    let mut stmt = db.prepare("SELECT function, qualifier, config FROM invoke_configs")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (function, qualifier, json) = row?;
        match serde_json::from_str(&json) {
            Ok(config) => out.push(ConfigEntry { function, qualifier, config }),
            Err(e) => tracing::warn!(%function, %qualifier, error = %e, "unreadable EventInvokeConfig ignored"),
        }
    }
    Ok(out)
}
