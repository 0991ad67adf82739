//! How every lambdabox database is opened: the function store, the event
//! bus's rules and the asynchronous queue each keep their own SQLite file,
//! and all three must be private and durable in the same way.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// How long a statement waits for another connection's lock (a second
/// process reading the file, a checkpoint) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Open (creating) the database at `path`: mode 0600 before SQLite first
/// writes to it (functions' environments, rules' inputs and callers'
/// payloads are secrets), write-ahead logging, and `synchronous=FULL` so a
/// commit has reached the disk when it returns. Answers the connection and
/// the schema version it was left at (`user_version`), for the caller to
/// refuse a newer one and migrate an older one.
pub(crate) fn open<E>(path: &Path) -> Result<(Connection, i64), E>
where
    E: From<std::io::Error> + From<rusqlite::Error>,
{
    crate::private::touch(path)?;
    let db = Connection::open(path)?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.busy_timeout(BUSY_TIMEOUT)?;
    let version: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0))?;
    Ok((db, version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn databases_are_private_durable_and_report_their_schema() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let (db, version) = open::<StoreError>(&path).unwrap();
        assert_eq!(version, 0);
        let mode: String = db.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        let sync: i64 = db.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap();
        assert_eq!((mode.as_str(), sync), ("wal", 2));
        db.pragma_update(None, "user_version", 7).unwrap();
        drop(db);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(open::<StoreError>(&path).unwrap().1, 7);
    }
}
