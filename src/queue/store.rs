//! The durable half of the asynchronous queue: every accepted event is a
//! row in SQLite (its own database, WAL, `synchronous=FULL`) before its
//! caller hears 202, and leaves only once it has run or been dead-lettered.
//!
//! One thread owns the connection and works through a channel of requests:
//! it takes everything waiting, runs it in one transaction and commits once,
//! so many callers share one fsync (group commit) and nobody waits for a
//! lock. Events that ran are deleted with the next commit somebody needs
//! anyway rather than with one of their own, and a second thread copies
//! the write-ahead log into the database as it grows, so that the commit
//! that crosses SQLite's checkpoint threshold finds little left to copy.
//! Reads that scan (depths, dead letters, the queue at start-up) and
//! payload reads run on a connection of their own, so that a caller
//! watching a backlog of 100,000 events never holds up the commits that
//! answer 202s. Payloads stay on disk; the dispatcher keeps only their ids.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::invoke_config::{self, ConfigEntry, EventInvokeConfig};

/// Schema version this build writes (`PRAGMA user_version`): 2 added
/// `invoke_configs`, 3 the events' `qualifier`, 4 dropped the unique index
/// on `request_id` and put `enqueued_ms` in the function index.
const SCHEMA_VERSION: i64 = 4;
/// Most requests one commit carries; more wait for the next.
const BATCH: usize = 512;
/// Longest an event that ran waits for a commit that other requests need
/// anyway before its delete is committed alone: under load deletes then
/// cost no fsync of their own, and a crash in between only runs a few
/// events again (at least once).
const FORGET_DELAY: Duration = Duration::from_millis(50);
/// Commits between two checkpoints on the checkpoint thread: a few dozen
/// to a few hundred pages of log, well under SQLite's 1,000-page threshold.
const CHECKPOINT_EVERY: u32 = 16;

#[derive(Debug, thiserror::Error)]
pub enum QueueStoreError {
    #[error("event queue database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("event queue data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("event queue database was written by a newer lambdabox (schema {0})")]
    NewerSchema(i64),
    /// The writer thread is gone (the controller is stopping).
    #[error("the event queue is closed")]
    Closed,
}

/// An event as it is kept, without its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    pub id: i64,
    pub request_id: String,
    pub function: String,
    /// The version or alias it was sent to; `None` is `$LATEST`.
    pub qualifier: Option<String>,
    /// When it was accepted (Unix ms): its age counts from here.
    pub enqueued_ms: i64,
    /// Attempts that ran the function and failed.
    pub attempts: u32,
    /// Not before this (Unix ms).
    pub due_ms: i64,
}

/// A new event, as the API accepted it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub request_id: String,
    pub function: String,
    /// The version or alias it was sent to; `None` is `$LATEST`.
    pub qualifier: Option<String>,
    pub payload: Bytes,
    pub client_context: Option<String>,
    pub enqueued_ms: i64,
}

/// What the function is run with.
#[derive(Debug, Clone)]
pub struct Body {
    pub payload: Bytes,
    pub client_context: Option<String>,
    /// The function's error document from the last failed attempt, for a
    /// record made after a later attempt never ran.
    pub last_error: Option<String>,
}

/// An event that ran out of attempts or time, kept until redriven.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetter {
    pub request_id: String,
    pub function: String,
    /// `RetriesExhausted`, `EventAgeExceeded`, …
    pub condition: String,
    /// The last error: the function's error document or lambdabox's reason.
    pub error: String,
    pub attempts: u32,
    pub enqueued_ms: i64,
    pub failed_ms: i64,
}

/// Per function: what waits and what failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Depth {
    pub function: String,
    pub queued: u64,
    pub oldest_enqueued_ms: Option<i64>,
    pub dead_letters: u64,
}

/// One request to the writer thread.
enum Op {
    Insert(NewEvent, Reply<i64>),
    Delete(i64, Reply<()>),
    /// Commit the forgotten deletes now, for a read that must not count
    /// events that ran.
    Settle(Reply<()>),
    /// Events were forgotten ([`QueueStore::forget`]): commit their
    /// deletes within [`FORGET_DELAY`]. Sent by the first of them only.
    Forgotten,
    Retry {
        id: i64,
        attempts: u32,
        due_ms: i64,
        error: String,
        reply: Reply<()>,
    },
    Forward {
        id: i64,
        event: NewEvent,
        reply: Reply<i64>,
    },
    SetConfig {
        function: String,
        qualifier: String,
        config: Option<EventInvokeConfig>,
        reply: Reply<()>,
    },
    Fail {
        id: i64,
        attempts: u32,
        condition: String,
        error: String,
        at_ms: i64,
        reply: Reply<()>,
    },
    Redrive {
        function: String,
        request_id: Option<String>,
        at_ms: i64,
        reply: Reply<Vec<EventMeta>>,
    },
    Purge(String, Reply<u64>),
}

type Reply<T> = oneshot::Sender<Result<T, QueueStoreError>>;

/// Handle to the queue's database; cheap to clone.
#[derive(Debug, Clone)]
pub struct QueueStore {
    ops: mpsc::Sender<Op>,
    /// Events that ran, to delete with the next commit: only the first
    /// wakes the writer, so events that end one after another under load
    /// cost it no wake-up each.
    forgotten: Forgotten,
    /// Every EventInvokeConfig by (function, qualifier), as committed:
    /// written only after the database has it.
    configs: Arc<RwLock<BTreeMap<(String, String), EventInvokeConfig>>>,
    /// The read connection ([`QueueStore::read`]).
    reader: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Op")
    }
}

impl QueueStore {
    /// Open (creating) `events.db` under `data_dir` and start its writer.
    pub fn open(data_dir: &Path) -> Result<QueueStore, QueueStoreError> {
        QueueStore::open_tuned(data_dir, |_| Ok(()))
    }

    /// [`QueueStore::open`] with a database that cannot grow past `pages`
    /// pages: a full disk, as far as SQLite can tell, for tests.
    #[cfg(test)]
    pub(crate) fn open_full_at(data_dir: &Path, pages: u32) -> Result<QueueStore, QueueStoreError> {
        QueueStore::open_tuned(data_dir, |db| db.pragma_update(None, "max_page_count", pages))
    }

    fn open_tuned(
        data_dir: &Path,
        tune: impl FnOnce(&Connection) -> rusqlite::Result<()>,
    ) -> Result<QueueStore, QueueStoreError> {
        let (db, found) = crate::store::sqlite::open::<QueueStoreError>(&db_path(data_dir))?;
        migrate(&db, found)?;
        tune(&db)?;
        let configs = invoke_config::load(&db)?.into_iter().map(|e| ((e.function, e.qualifier), e.config)).collect();
        let (reader, _) = crate::store::sqlite::open::<QueueStoreError>(&db_path(data_dir))?;
        reader.pragma_update(None, "query_only", true)?;
        let checkpoints = Checkpoints::start(data_dir)?;
        let (ops, rx) = mpsc::channel();
        let forgotten = Forgotten::default();
        let writer = Writer { rx, forgotten: forgotten.clone(), checkpoints };
        std::thread::Builder::new().name("event-queue".into()).spawn(move || writer.run(db))?;
        Ok(QueueStore { ops, forgotten, configs: Arc::new(RwLock::new(configs)), reader: Arc::new(Mutex::new(reader)) })
    }

    /// Run `query` on the read connection, off the async workers. WAL lets
    /// it read the last commit while the writer goes on committing.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, QueueStoreError> {
        let reader = self.reader.clone();
        let read = move || query(&reader.lock().expect("queue reader poisoned")).map_err(QueueStoreError::from);
        tokio::task::spawn_blocking(read).await.map_err(|_| QueueStoreError::Closed)?
    }

    /// [`QueueStore::read`] once the forgotten deletes are committed, so
    /// that what it counts as queued has not already run.
    async fn read_settled<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, QueueStoreError> {
        self.ask(Op::Settle).await?;
        self.read(query).await
    }

    async fn ask<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<T, QueueStoreError> {
        let (tx, rx) = oneshot::channel();
        self.ops.send(op(tx)).map_err(|_| QueueStoreError::Closed)?;
        rx.await.map_err(|_| QueueStoreError::Closed)?
    }

    /// Commit a new event; returns its id once it is on disk.
    pub async fn insert(&self, event: NewEvent) -> Result<i64, QueueStoreError> {
        self.ask(|r| Op::Insert(event, r)).await
    }

    /// An event's payload, if it is still queued.
    pub async fn body(&self, id: i64) -> Result<Option<Body>, QueueStoreError> {
        self.read(move |db| body(db, id)).await
    }

    /// It ran: forget it.
    pub async fn delete(&self, id: i64) -> Result<(), QueueStoreError> {
        self.ask(|r| Op::Delete(id, r)).await
    }

    /// It ran: forget it with the next commit, without waiting for that
    /// commit. The dispatcher uses this so an event's slot is free as soon
    /// as the function answered, not a disk flush later; a crash before
    /// the commit runs the event again, which at-least-once delivery
    /// allows. A failed commit is logged by the writer.
    pub fn forget(&self, id: i64) {
        let mut forgotten = self.forgotten.lock().expect("forgotten list poisoned");
        forgotten.push(id);
        if forgotten.len() == 1 {
            let _ = self.ops.send(Op::Forgotten);
        }
    }

    /// Try again at `due_ms`, with `attempts` counted so far and the last
    /// attempt's `error`.
    pub async fn retry(&self, id: i64, attempts: u32, due_ms: i64, error: String) -> Result<(), QueueStoreError> {
        self.ask(|reply| Op::Retry { id, attempts, due_ms, error, reply }).await
    }

    /// Replace event `id` by `event` (a record for a destination) in one
    /// commit: the record is never lost, nor sent twice by a crash between
    /// the two. Returns the new event's id.
    pub async fn forward(&self, id: i64, event: NewEvent) -> Result<i64, QueueStoreError> {
        self.ask(|reply| Op::Forward { id, event, reply }).await
    }

    /// The EventInvokeConfig of `function` at `qualifier`, if it has one.
    pub fn config(&self, function: &str, qualifier: &str) -> Option<EventInvokeConfig> {
        let configs = self.configs.read().expect("config map poisoned");
        configs.get(&(function.to_owned(), qualifier.to_owned())).cloned()
    }

    /// Every config of `function`, by qualifier.
    pub fn configs(&self, function: &str) -> Vec<ConfigEntry> {
        let configs = self.configs.read().expect("config map poisoned");
        configs
            .iter()
            .filter(|((f, _), _)| f == function)
            .map(|((f, q), c)| ConfigEntry { function: f.clone(), qualifier: q.clone(), config: c.clone() })
            .collect()
    }

    /// Store (`Some`) or remove (`None`) a config; callers serialise these.
    pub async fn set_config(
        &self,
        function: &str,
        qualifier: &str,
        config: Option<EventInvokeConfig>,
    ) -> Result<(), QueueStoreError> {
        let (f, q, c) = (function.to_owned(), qualifier.to_owned(), config.clone());
        self.ask(|reply| Op::SetConfig { function: f, qualifier: q, config: c, reply }).await?;
        let mut configs = self.configs.write().expect("config map poisoned");
        let key = (function.to_owned(), qualifier.to_owned());
        match config {
            Some(c) => configs.insert(key, c),
            None => configs.remove(&key),
        };
        Ok(())
    }

    /// Out of attempts or time: keep it as a dead letter.
    pub async fn fail(&self, id: i64, attempts: u32, condition: &str, error: String) -> Result<(), QueueStoreError> {
        let (condition, at_ms) = (condition.to_owned(), now_ms());
        self.ask(|reply| Op::Fail { id, attempts, condition, error, at_ms, reply }).await
    }

    /// Every queued event (at start-up: those in flight when the last run
    /// stopped are among them, and run again).
    pub async fn queued(&self) -> Result<Vec<EventMeta>, QueueStoreError> {
        self.read_settled(|db| select_meta(db, "failed_ms IS NULL ORDER BY id", params![])).await
    }

    pub async fn dead_letters(&self, function: &str) -> Result<Vec<DeadLetter>, QueueStoreError> {
        let function = function.to_owned();
        self.read(move |db| dead_letters(db, &function)).await
    }

    /// Queue a function's dead letters (or one of them) again, with their
    /// attempts and age reset; returns them as queued.
    pub async fn redrive(&self, function: &str, request_id: Option<String>) -> Result<Vec<EventMeta>, QueueStoreError> {
        let (function, at_ms) = (function.to_owned(), now_ms());
        self.ask(|reply| Op::Redrive { function, request_id, at_ms, reply }).await
    }

    pub async fn depths(&self) -> Result<Vec<Depth>, QueueStoreError> {
        self.read_settled(depths).await
    }

    /// Remove everything of a function (it was deleted), its configs too;
    /// returns how many events.
    pub async fn purge(&self, function: &str) -> Result<u64, QueueStoreError> {
        let n = self.ask(|r| Op::Purge(function.to_owned(), r)).await?;
        self.configs.write().expect("config map poisoned").retain(|(f, _), _| f != function);
        Ok(n)
    }
}

fn db_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("events.db")
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The events table as this build writes it, under `name`. No index on
/// `request_id`: request ids are random and lambdabox makes every one, so
/// a unique index only cost each commit a random page per event; the
/// function index (in insertion order within a function) also answers
/// depths and the oldest event without reading the rows.
fn events_table(name: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {name} (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             request_id TEXT NOT NULL,
             function TEXT NOT NULL,
             payload BLOB NOT NULL,
             client_context TEXT,
             enqueued_ms INTEGER NOT NULL,
             attempts INTEGER NOT NULL DEFAULT 0,
             due_ms INTEGER NOT NULL,
             failed_ms INTEGER,
             condition TEXT,
             error TEXT,
             qualifier TEXT
         )"
    )
}

const EVENTS_INDEX: &str = "CREATE INDEX IF NOT EXISTS events_by_function ON events (function, failed_ms, enqueued_ms)";

fn migrate(db: &Connection, found: i64) -> Result<(), QueueStoreError> {
    if found > SCHEMA_VERSION {
        return Err(QueueStoreError::NewerSchema(found));
    }
    let tx = db.unchecked_transaction()?;
    if found == 0 {
        tx.execute_batch(&events_table("events"))?;
    }
    if (1..3).contains(&found) {
        // Events written before 3 went to `$LATEST`: NULL says so.
        tx.execute_batch("ALTER TABLE events ADD COLUMN qualifier TEXT")?;
    }
    if (1..4).contains(&found) {
        rebuild_events(&tx)?;
    }
    tx.execute_batch(EVENTS_INDEX)?;
    tx.execute_batch(invoke_config::SCHEMA)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Copy the events into a table without the unique index (SQLite cannot
/// drop a constraint's index), keeping their ids and the id sequence (an
/// id is never used twice).
fn rebuild_events(tx: &Connection) -> rusqlite::Result<()> {
    const COLUMNS: &str = "id, request_id, function, payload, client_context, enqueued_ms, attempts, due_ms,
                           failed_ms, condition, error, qualifier";
    let seq: i64 = tx
        .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'events'", [], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    tx.execute_batch(&format!(
        "{};
         INSERT INTO events_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM events;
         DROP TABLE events;
         ALTER TABLE events_rebuilt RENAME TO events;
         DELETE FROM sqlite_sequence WHERE name IN ('events', 'events_rebuilt');",
        events_table("events_rebuilt")
    ))?;
    tx.execute(
        "INSERT INTO sqlite_sequence (name, seq) VALUES ('events', MAX(?1, (SELECT IFNULL(MAX(id), 0) FROM events)))",
        params![seq],
    )?;
    Ok(())
}

type Forgotten = Arc<Mutex<Vec<i64>>>;

/// The writer thread's end of things.
struct Writer {
    rx: mpsc::Receiver<Op>,
    forgotten: Forgotten,
    checkpoints: Checkpoints,
}

impl Writer {
    /// Take what waits (at most [`BATCH`]), apply it in one transaction,
    /// commit, then answer everyone. A failed commit fails the whole batch,
    /// so nobody is told "stored" for what is not.
    fn run(self, mut db: Connection) {
        while let Some(batch) = self.gather() {
            let forgotten = std::mem::take(&mut *self.forgotten.lock().expect("forgotten list poisoned"));
            if batch.is_empty() && forgotten.is_empty() {
                continue;
            }
            commit(&mut db, &forgotten, batch);
            self.checkpoints.committed();
        }
    }

    /// The next batch: the requests that wait (at most [`BATCH`]); empty
    /// when only forgotten events are due ([`FORGET_DELAY`]); `None` once
    /// every handle is gone and nothing is left to commit.
    fn gather(&self) -> Option<Vec<Op>> {
        let mut batch = Vec::new();
        let mut due: Option<Instant> = None;
        while batch.is_empty() {
            let op = match due {
                None => self.rx.recv().ok()?,
                Some(due) => match self.rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(op) => op,
                    Err(_) => break,
                },
            };
            match op {
                Op::Forgotten => due = due.or_else(|| Some(Instant::now() + FORGET_DELAY)),
                op => batch.push(op),
            }
        }
        while batch.len() < BATCH {
            match self.rx.try_recv() {
                Ok(Op::Forgotten) => {}
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        Some(batch)
    }
}

/// One transaction: the forgotten deletes first (so that what the batch
/// reads does not count events that ran), then the batch; answers go out
/// once it is committed.
fn commit(db: &mut Connection, forgotten: &[i64], batch: Vec<Op>) {
    let tx = match db.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "event queue transaction failed");
            let e = e.to_string();
            batch.into_iter().for_each(|op| fail_op(op, &e));
            return;
        }
    };
    for &id in forgotten {
        if let Err(e) = delete(&tx, id) {
            tracing::error!(error = %e, id, "could not delete an event that ran; it runs again after a restart");
        }
    }
    let answers: Vec<Answer> = batch.into_iter().map(|op| apply(&tx, op)).collect();
    match tx.commit() {
        Ok(()) => answers.into_iter().for_each(Answer::send),
        Err(e) => {
            tracing::error!(error = %e, "event queue commit failed");
            let e = e.to_string();
            answers.into_iter().for_each(|a| a.fail(&e));
        }
    }
}

/// Checkpoints of the write-ahead log, on a thread and a connection of
/// their own: without them the commit that crosses SQLite's 1,000-page
/// threshold copies all those pages while its batch's callers wait. A
/// PASSIVE checkpoint never blocks the writer, but while commits keep
/// coming it never finishes either, and only the writer can start the log
/// over: so the writer keeps SQLite's own checkpoint, which then finds the
/// pages copied already, and the log stays about 4 MB however long the load.
struct Checkpoints {
    nudge: mpsc::SyncSender<()>,
    commits: std::cell::Cell<u32>,
}

impl Checkpoints {
    fn start(data_dir: &Path) -> Result<Checkpoints, QueueStoreError> {
        let (db, _) = crate::store::sqlite::open::<QueueStoreError>(&db_path(data_dir))?;
        let (nudge, nudged) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new().name("event-checkpoint".into()).spawn(move || {
            while nudged.recv().is_ok() {
                if let Err(e) = db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "event queue checkpoint failed; the next one tries again");
                }
            }
        })?;
        Ok(Checkpoints { nudge, commits: std::cell::Cell::new(0) })
    }

    /// Count a commit; every [`CHECKPOINT_EVERY`]th asks for a checkpoint
    /// (unless one is still asked for).
    fn committed(&self) {
        let n = self.commits.get() + 1;
        self.commits.set(n % CHECKPOINT_EVERY);
        if n == CHECKPOINT_EVERY {
            let _ = self.nudge.try_send(());
        }
    }
}

/// Sends a reply: the result as computed, or the commit's failure.
type Deliver = Box<dyn FnOnce(Option<&str>) + Send>;

/// A result computed inside the transaction, sent once it is committed.
struct Answer(Deliver);

impl Answer {
    fn new<T: Send + 'static>(reply: Reply<T>, result: Result<T, rusqlite::Error>) -> Answer {
        Answer(Box::new(move |commit_failed: Option<&str>| {
            let result = match commit_failed {
                Some(e) => Err(QueueStoreError::Io(std::io::Error::other(e.to_owned()))),
                None => result.map_err(QueueStoreError::from),
            };
            let _ = reply.send(result);
        }))
    }

    /// For a request nobody waits on.
    fn none() -> Answer {
        Answer(Box::new(|_| {}))
    }

    fn send(self) {
        (self.0)(None);
    }

    fn fail(self, why: &str) {
        (self.0)(Some(why));
    }
}

fn fail_op(op: Op, why: &str) {
    let answer = apply_failed(op);
    answer.fail(why);
}

/// An answer for `op` that only its failure will fill.
fn apply_failed(op: Op) -> Answer {
    fn never<T>() -> Result<T, rusqlite::Error> {
        Err(rusqlite::Error::InvalidQuery)
    }
    match op {
        Op::Insert(_, r) | Op::Forward { reply: r, .. } => Answer::new(r, never()),
        Op::Forgotten => Answer::none(),
        Op::Delete(_, r)
        | Op::Settle(r)
        | Op::Retry { reply: r, .. }
        | Op::Fail { reply: r, .. }
        | Op::SetConfig { reply: r, .. } => Answer::new(r, never()),
        Op::Redrive { reply: r, .. } => Answer::new(r, never()),
        Op::Purge(_, r) => Answer::new(r, never()),
    }
}

const META: &str = "id, request_id, function, enqueued_ms, attempts, due_ms, qualifier";

fn meta(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventMeta> {
    Ok(EventMeta {
        id: row.get(0)?,
        request_id: row.get(1)?,
        function: row.get(2)?,
        enqueued_ms: row.get(3)?,
        attempts: row.get(4)?,
        due_ms: row.get(5)?,
        qualifier: row.get(6)?,
    })
}

fn apply(tx: &rusqlite::Transaction<'_>, op: Op) -> Answer {
    match op {
        Op::Insert(e, r) => Answer::new(r, insert(tx, &e)),
        Op::Forward { id, event, reply } => {
            let done = delete(tx, id).and_then(|()| insert(tx, &event));
            Answer::new(reply, done)
        }
        Op::SetConfig { function, qualifier, config, reply } => {
            Answer::new(reply, invoke_config::set(tx, &function, &qualifier, config.as_ref()))
        }
        Op::Delete(id, r) => Answer::new(r, delete(tx, id)),
        Op::Settle(r) => Answer::new(r, Ok(())),
        Op::Forgotten => Answer::none(),
        Op::Retry { id, attempts, due_ms, error, reply } => {
            let done = tx
                .prepare_cached("UPDATE events SET attempts = ?2, due_ms = ?3, error = ?4 WHERE id = ?1")
                .and_then(|mut update| update.execute(params![id, attempts, due_ms, error]));
            Answer::new(reply, done.map(drop))
        }
        Op::Fail { id, attempts, condition, error, at_ms, reply } => {
            let done = tx.execute(
                "UPDATE events SET attempts = ?2, failed_ms = ?3, condition = ?4, error = ?5 WHERE id = ?1",
                params![id, attempts, at_ms, condition, error],
            );
            Answer::new(reply, done.map(drop))
        }
        Op::Redrive { function, request_id, at_ms, reply } => {
            let done = tx
                .execute(
                    "UPDATE events SET failed_ms = NULL, condition = NULL, error = NULL, attempts = 0,
                            enqueued_ms = ?2, due_ms = ?2
                     WHERE function = ?1 AND failed_ms IS NOT NULL AND (?3 IS NULL OR request_id = ?3)",
                    params![function, at_ms, request_id],
                )
                .and_then(|_| {
                    select_meta(
                        tx,
                        "function = ?1 AND failed_ms IS NULL AND due_ms = ?2 AND attempts = 0 AND enqueued_ms = ?2",
                        params![function, at_ms],
                    )
                });
            Answer::new(reply, done)
        }
        Op::Purge(function, r) => {
            let done = tx
                .execute("DELETE FROM invoke_configs WHERE function = ?1", params![function])
                .and_then(|_| tx.execute("DELETE FROM events WHERE function = ?1", params![function]));
            Answer::new(r, done.map(|n| n as u64))
        }
    }
}

fn body(db: &Connection, id: i64) -> rusqlite::Result<Option<Body>> {
    let mut select =
        db.prepare_cached("SELECT payload, client_context, error FROM events WHERE id = ?1 AND failed_ms IS NULL")?;
    select
        .query_row(params![id], |row| {
            Ok(Body {
                payload: Bytes::from(row.get::<_, Vec<u8>>(0)?),
                client_context: row.get(1)?,
                last_error: row.get(2)?,
            })
        })
        .optional()
}

fn delete(tx: &Connection, id: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM events WHERE id = ?1")?.execute(params![id]).map(drop)
}

/// Statements are prepared once per connection ([`Connection::prepare_cached`]):
/// parsing one costs about as much as running it.
fn insert(tx: &Connection, e: &NewEvent) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO events (request_id, function, payload, client_context, enqueued_ms, due_ms, qualifier)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
    )?
    .execute(params![e.request_id, e.function, &e.payload[..], e.client_context, e.enqueued_ms, e.qualifier])?;
    Ok(tx.last_insert_rowid())
}

fn select_meta(tx: &Connection, filter: &str, args: impl rusqlite::Params) -> rusqlite::Result<Vec<EventMeta>> {
    let mut stmt = tx.prepare(&format!("SELECT {META} FROM events WHERE {filter}"))?;
    let rows = stmt.query_map(args, meta)?;
    rows.collect()
}

fn dead_letters(tx: &Connection, function: &str) -> rusqlite::Result<Vec<DeadLetter>> {
    let mut stmt = tx.prepare(
        "SELECT request_id, function, condition, error, attempts, enqueued_ms, failed_ms FROM events
         WHERE function = ?1 AND failed_ms IS NOT NULL ORDER BY failed_ms, id",
    )?;
    let rows = stmt.query_map(params![function], |row| {
        Ok(DeadLetter {
            request_id: row.get(0)?,
            function: row.get(1)?,
            condition: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
            error: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
            attempts: row.get(4)?,
            enqueued_ms: row.get(5)?,
            failed_ms: row.get(6)?,
        })
    })?;
    rows.collect()
}

fn depths(tx: &Connection) -> rusqlite::Result<Vec<Depth>> {
    let mut stmt = tx.prepare(
        "SELECT function,
                SUM(failed_ms IS NULL),
                MIN(CASE WHEN failed_ms IS NULL THEN enqueued_ms END),
                SUM(failed_ms IS NOT NULL)
         FROM events GROUP BY function ORDER BY function",
    )?;
    let rows = stmt.query_map(params![], |row| {
        Ok(Depth {
            function: row.get(0)?,
            queued: row.get::<_, i64>(1)? as u64,
            oldest_enqueued_ms: row.get(2)?,
            dead_letters: row.get::<_, i64>(3)? as u64,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32, function: &str) -> NewEvent {
        NewEvent {
            request_id: format!("req-{n}"),
            function: function.into(),
            qualifier: n.is_multiple_of(3).then(|| "live".to_owned()),
            payload: Bytes::from(format!("{{\"n\":{n}}}")),
            client_context: None,
            enqueued_ms: 1_000 + i64::from(n),
        }
    }

    #[tokio::test]
    async fn events_survive_a_reopen_and_move_through_their_states() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::open(dir.path()).unwrap();
        let inserts = (0..50).map(|n| store.insert(event(n, if n % 2 == 0 { "even" } else { "odd" })));
        let ids: Vec<i64> = futures_util::future::try_join_all(inserts).await.unwrap();
        assert_eq!(ids.len(), 50);
        store.delete(ids[0]).await.unwrap();
        store.retry(ids[2], 1, 99_999, "{\"errorType\":\"E\"}".into()).await.unwrap();
        store.fail(ids[4], 3, "RetriesExhausted", "{\"errorType\":\"X\"}".into()).await.unwrap();
        drop(store);

        let store = QueueStore::open(dir.path()).unwrap();
        let queued = store.queued().await.unwrap();
        assert_eq!(queued.len(), 48, "one ran, one failed");
        let retried = queued.iter().find(|e| e.id == ids[2]).unwrap();
        assert_eq!((retried.attempts, retried.due_ms), (1, 99_999));
        let body = store.body(ids[6]).await.unwrap().unwrap();
        assert_eq!(&body.payload[..], b"{\"n\":6}");
        assert!(store.body(ids[4]).await.unwrap().is_none(), "a dead letter is not run");

        let dead = store.dead_letters("even").await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].request_id.as_str(), dead[0].condition.as_str(), dead[0].attempts),
            ("req-4", "RetriesExhausted", 3)
        );
        let depths = store.depths().await.unwrap();
        let even = depths.iter().find(|d| d.function == "even").unwrap();
        assert_eq!((even.queued, even.dead_letters, even.oldest_enqueued_ms), (23, 1, Some(1_002)));

        let again = store.redrive("even", None).await.unwrap();
        assert_eq!(again.iter().map(|e| e.request_id.as_str()).collect::<Vec<_>>(), ["req-4"]);
        assert_eq!(again[0].attempts, 0);
        assert!(store.dead_letters("even").await.unwrap().is_empty());
        assert_eq!(store.purge("odd").await.unwrap(), 25);
        assert_eq!(store.queued().await.unwrap().len(), 24);
    }

    #[tokio::test]
    async fn a_forward_swaps_events_in_one_commit_and_configs_persist_until_purged() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::open(dir.path()).unwrap();
        let id = store.insert(event(1, "src")).await.unwrap();
        let forwarded = store.forward(id, event(2, "dst")).await.unwrap();
        assert_ne!(forwarded, id);
        let config = EventInvokeConfig { max_retries: Some(0), last_modified_ms: 5, ..Default::default() };
        store.set_config("src", "$LATEST", Some(config.clone())).await.unwrap();
        store.set_config("src", "1", Some(config.clone())).await.unwrap();
        drop(store);

        let store = QueueStore::open(dir.path()).unwrap();
        let queued = store.queued().await.unwrap();
        assert_eq!(queued.iter().map(|e| e.function.as_str()).collect::<Vec<_>>(), ["dst"]);
        assert_eq!(store.config("src", "$LATEST"), Some(config));
        assert_eq!(store.configs("src").iter().map(|e| e.qualifier.as_str()).collect::<Vec<_>>(), ["$LATEST", "1"]);
        store.set_config("src", "1", None).await.unwrap();
        assert_eq!(store.configs("src").len(), 1);
        store.purge("src").await.unwrap();
        drop(store);
        assert!(QueueStore::open(dir.path()).unwrap().configs("src").is_empty(), "a purge is durable");
    }

    #[tokio::test]
    async fn forgotten_events_leave_with_the_next_commit_before_it_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::open(dir.path()).unwrap();
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(store.insert(event(n, "f")).await.unwrap());
        }
        store.forget(ids[0]);
        store.forget(ids[1]);
        let queued = store.queued().await.unwrap();
        assert_eq!(queued.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[2]]);
        assert_eq!(store.depths().await.unwrap()[0].queued, 1);
        drop(store);
        let store = QueueStore::open(dir.path()).unwrap();
        assert_eq!(store.queued().await.unwrap().len(), 1, "the deletes were committed");
    }

    #[tokio::test]
    async fn a_refused_insert_does_not_harm_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let refuse = "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.events WHEN NEW.request_id = 'req-1'
                      BEGIN SELECT RAISE(ABORT, 'refused'); END";
        let store = QueueStore::open_tuned(dir.path(), |db| db.execute_batch(refuse)).unwrap();
        let (refused, ok) = tokio::join!(store.insert(event(1, "f")), store.insert(event(2, "f")));
        assert!(matches!(refused, Err(QueueStoreError::Sqlite(_))), "{refused:?}");
        ok.unwrap();
        store.insert(event(3, "f")).await.unwrap();
        assert_eq!(store.queued().await.unwrap().len(), 2);
    }

    #[tokio::test]
    #[allow(clippy::await_holding_lock, reason = "a read in progress is what the test holds")]
    async fn the_writer_does_not_wait_for_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::open(dir.path()).unwrap();
        let id = store.insert(event(1, "f")).await.unwrap();
        // A slow read: it cannot finish while the reader is held.
        let stall = store.reader.lock().unwrap();
        let reader_side = store.clone();
        let reading = tokio::spawn(async move { reader_side.depths().await.unwrap() });
        store.insert(event(2, "f")).await.unwrap();
        assert!(!reading.is_finished(), "the read waited while the writer committed");
        drop(stall);
        assert!(reading.await.unwrap()[0].queued >= 1);
        assert!(store.body(id).await.unwrap().is_some());
        assert_eq!(store.depths().await.unwrap()[0].queued, 2);
    }

    /// An events database as an older lambdabox left it: the table as it
    /// was before schema 4 (unique request ids), with `more_columns`, then
    /// `then`.
    fn old_database(dir: &Path, more_columns: &str, then: &str) {
        let db = Connection::open(dir.join("events.db")).unwrap();
        db.execute_batch(&format!(
            "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL UNIQUE,
             function TEXT NOT NULL, payload BLOB NOT NULL, client_context TEXT, enqueued_ms INTEGER NOT NULL,
             attempts INTEGER NOT NULL DEFAULT 0, due_ms INTEGER NOT NULL, failed_ms INTEGER, condition TEXT,
             error TEXT{more_columns});
             {then}"
        ))
        .unwrap();
    }

    #[tokio::test]
    async fn events_stored_before_qualifiers_run_latest() {
        let dir = tempfile::tempdir().unwrap();
        old_database(
            dir.path(),
            "",
            "INSERT INTO events (request_id, function, payload, enqueued_ms, due_ms) VALUES ('old', 'f', x'7b7d', 1, 1);
             PRAGMA user_version = 2;",
        );
        let store = QueueStore::open(dir.path()).unwrap();
        let queued = store.queued().await.unwrap();
        assert_eq!((queued[0].request_id.as_str(), queued[0].qualifier.as_deref()), ("old", None));
        store.insert(event(3, "f")).await.unwrap();
        let queued = store.queued().await.unwrap();
        assert_eq!(queued[1].qualifier.as_deref(), Some("live"));
    }

    #[tokio::test]
    async fn the_rebuild_to_schema_4_keeps_events_ids_and_the_id_sequence() {
        let dir = tempfile::tempdir().unwrap();
        old_database(
            dir.path(),
            ", qualifier TEXT",
            "CREATE INDEX events_by_function ON events (function, failed_ms);
             INSERT INTO events (request_id, function, payload, enqueued_ms, due_ms, attempts, failed_ms, condition)
                 VALUES ('a', 'f', x'7b7d', 5, 5, 3, 9, 'RetriesExhausted');
             INSERT INTO events (request_id, function, payload, enqueued_ms, due_ms, qualifier)
                 VALUES ('b', 'f', x'5b5d', 6, 7, 'live');
             INSERT INTO events (request_id, function, payload, enqueued_ms, due_ms) VALUES ('c', 'f', x'00', 8, 8);
             DELETE FROM events WHERE request_id = 'c';
             PRAGMA user_version = 3;",
        );
        let store = QueueStore::open(dir.path()).unwrap();
        let queued = store.queued().await.unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!((queued[0].id, queued[0].request_id.as_str(), queued[0].due_ms), (2, "b", 7));
        assert_eq!(queued[0].qualifier.as_deref(), Some("live"));
        assert_eq!(&store.body(2).await.unwrap().unwrap().payload[..], b"[]");
        assert_eq!(store.dead_letters("f").await.unwrap()[0].attempts, 3);
        assert_eq!(store.insert(event(1, "f")).await.unwrap(), 4, "id 3 was used once: never again");
        drop(store);
        let db = Connection::open(dir.path().join("events.db")).unwrap();
        let indexes: Vec<String> = db
            .prepare("SELECT name FROM pragma_index_list('events')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(indexes, ["events_by_function"]);
        let version: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
