//! The embedded SQLite backend: WAL mode, one writer connection (SQLite has
//! one writer anyway; queuing in the pool beats spinning on SQLITE_BUSY) and
//! a pool of readers that each see a consistent snapshot. Writers need no
//! per-user lock: `BEGIN IMMEDIATE` already holds the only write lock.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use sync_common::db_url::{Backend, DatabaseUrl};
use sync_common::sqlite::{self, Failure};
use sync_common::telemetry::db::observe_pool;

use super::session::{Connector, Session};
use super::sql_session::sql_session;
use super::{DbError, DbResult, StoreSettings, Uid};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

mod sql {
    use crate::db::session::Purge;

    /// `(key, id) < (?, ?)` seeks in the paging indexes.
    pub const ROW_VALUES: bool = true;
    /// Read by position: id, modified, payload, sortindex, expiry.
    pub const SELECT_BSOS: &str = "SELECT id, modified, payload, sortindex, expiry FROM bsos";
    pub const SELECT_BSOS_NO_PAYLOAD: &str =
        "SELECT id, modified, '' AS payload, sortindex, expiry FROM bsos";
    /// Over a page's `payload_size`s: rows, bytes, largest.
    pub const PAGE_SUMMARY: &str = "SELECT COUNT(*), COALESCE(SUM(payload_size), 0), \
         COALESCE(MAX(payload_size), 0) FROM (";
    pub const COLLECTION_ID: &str = "SELECT id FROM collections WHERE name = ?";
    /// Custom collections get ids from 101 (Mozilla's numbering).
    pub const CREATE_COLLECTION: &str = "INSERT OR IGNORE INTO collections (id, name) \
         SELECT MAX(100, COALESCE(MAX(id), 0)) + 1, ? FROM collections";
    pub const USER_TIMESTAMP: &str = "SELECT modified FROM user_timestamps WHERE userid = ?";
    pub const COLLECTION_TIMESTAMP: &str =
        "SELECT modified FROM user_collections WHERE userid = ? AND collection = ?";
    pub const COLLECTION_TIMESTAMPS: &str = "SELECT c.name, uc.modified FROM user_collections uc \
         JOIN collections c ON c.id = uc.collection WHERE uc.userid = ?";
    pub const TOUCH_USER: &str = "INSERT INTO user_timestamps (userid, modified) VALUES (?, ?) \
         ON CONFLICT (userid) DO UPDATE SET modified = excluded.modified";
    pub const TOUCH_COLLECTION: &str =
        "INSERT INTO user_collections (userid, collection, modified) VALUES (?, ?, ?) \
         ON CONFLICT (userid, collection) DO UPDATE SET modified = excluded.modified";
    pub const COLLECTION_COUNTS: &str = "SELECT c.name, COUNT(*) FROM bsos b \
         JOIN collections c ON c.id = b.collection \
         WHERE b.userid = ? AND b.expiry > ? GROUP BY c.name";
    pub const COLLECTION_BYTES: &str = "SELECT c.name, SUM(b.payload_size) FROM bsos b \
         JOIN collections c ON c.id = b.collection \
         WHERE b.userid = ? AND b.expiry > ? GROUP BY c.name";
    pub const USER_USAGE: &str =
        "SELECT COALESCE(SUM(payload_size), 0) FROM bsos WHERE userid = ? AND expiry > ?";
    pub const STAGED_BYTES: &str = "SELECT COALESCE(SUM(bytes), 0) FROM batches \
         WHERE userid = ? AND expiry > ? AND id <> ?";
    pub const LIVE_BSO: &str = "SELECT id, modified, payload, sortindex, expiry FROM bsos \
         WHERE userid = ? AND collection = ? AND id = ? AND expiry > ?";
    pub const UPSERT_BSOS_SUFFIX: &str = " ON CONFLICT (userid, collection, id) DO UPDATE SET \
         sortindex = excluded.sortindex, payload = excluded.payload, \
         payload_size = excluded.payload_size, modified = excluded.modified, \
         expiry = excluded.expiry";
    pub const DELETE_COLLECTION: &[&str] = &[
        "DELETE FROM bsos WHERE userid = ? AND collection = ?",
        "DELETE FROM user_collections WHERE userid = ? AND collection = ?",
        "DELETE FROM batches WHERE userid = ? AND collection = ?",
    ];
    pub const DELETE_USER_DATA: &[&str] = &[
        "DELETE FROM bsos WHERE userid = ?",
        "DELETE FROM user_collections WHERE userid = ?",
        "DELETE FROM batches WHERE userid = ?",
    ];
    // Migration (ADR 0013).
    pub const FENCE: &str = "INSERT INTO user_fences (userid, fenced_until) VALUES (?, ?) \
         ON CONFLICT (userid) DO UPDATE SET fenced_until = excluded.fenced_until";
    pub const FENCED_UNTIL: &str = "SELECT fenced_until FROM user_fences WHERE userid = ?";
    pub const UNFENCE: &str = "DELETE FROM user_fences WHERE userid = ?";
    pub const LIFT_REVOCATION: &str = "DELETE FROM revoked_uids WHERE uid = ?";
    /// A collection's live records in id order, after an id.
    pub const RECORDS_AFTER: &str = "SELECT id, modified, payload, sortindex, expiry FROM bsos \
         WHERE userid = ? AND collection = ? AND expiry > ? AND id > ? \
         ORDER BY id LIMIT ?";
    // Revocations (ADR 0012).
    pub const REVOKE_UIDS: &str = "INSERT INTO revoked_uids (uid, expires) ";
    pub const REVOKE_UIDS_SUFFIX: &str =
        " ON CONFLICT (uid) DO UPDATE SET expires = MAX(expires, excluded.expires)";
    pub const RAISE_EPOCH: &str = "INSERT INTO node_epochs (node, epoch) VALUES (?, ?) \
         ON CONFLICT (node) DO UPDATE SET epoch = MAX(epoch, excluded.epoch)";
    pub const FORGET_REVOKED: &str = "DELETE FROM revoked_uids WHERE expires <= ?";
    pub const REVOKED_UIDS: &str = "SELECT uid FROM revoked_uids WHERE expires > ?";
    pub const NODE_EPOCHS: &str = "SELECT node, epoch FROM node_epochs";
    pub const FORGET_USER: &[&str] = &["DELETE FROM user_timestamps WHERE userid = ?"];
    pub const INSERT_BATCH: &str =
        "INSERT INTO batches (id, userid, collection, expiry, records, bytes) \
         VALUES (?, ?, ?, ?, ?, ?)";
    pub const FIND_BATCH: &str = "SELECT records, bytes FROM batches \
         WHERE id = ? AND userid = ? AND collection = ? AND expiry > ?";
    pub const UPDATE_BATCH: &str = "UPDATE batches SET records = ?, bytes = ? WHERE id = ?";
    /// Newest first.
    pub const BATCH_IDS: &str = "SELECT id FROM batches WHERE userid = ? ORDER BY rowid DESC";
    pub const STAGED_ITEMS: &str = "SELECT item FROM batch_items WHERE batch = ? ORDER BY seq";
    /// Each binds (now, limit): expired BSOs, the staged items of expired
    /// batches, then expired batches with no items left.
    pub const PURGE: &[(Purge, &str)] = &[
        (
            Purge::Records,
            "DELETE FROM bsos WHERE rowid IN (SELECT rowid FROM bsos WHERE expiry <= ? LIMIT ?)",
        ),
        (
            Purge::BatchItems,
            "DELETE FROM batch_items WHERE rowid IN (SELECT i.rowid FROM batch_items i \
         JOIN batches b ON b.id = i.batch WHERE b.expiry <= ? LIMIT ?)",
        ),
        (
            Purge::Batches,
            "DELETE FROM batches WHERE id IN (SELECT id FROM batches b WHERE b.expiry <= ? \
         AND NOT EXISTS (SELECT 1 FROM batch_items i WHERE i.batch = b.id) LIMIT ?)",
        ),
    ];
    pub const HIGHEST_UID: &str = "SELECT MAX(uid) FROM (\
         SELECT MAX(userid) AS uid FROM user_timestamps \
         UNION ALL SELECT MAX(userid) FROM bsos UNION ALL SELECT MAX(userid) FROM batches) AS uids";
}

sql_session!(SqliteSession, sqlx::Sqlite, sql, classify);

/// SyncStorage on an SQLite file.
pub struct SqliteDb {
    writer: SqlitePool,
    reader: SqlitePool,
    /// The reader is the writer (an in-memory database exists once).
    in_memory: bool,
}

impl SqliteDb {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn open(url: &DatabaseUrl, settings: &StoreSettings) -> DbResult<Self> {
        let busy_timeout = Duration::from_millis(settings.busy_timeout_ms);
        let (options, in_memory) =
            sqlite::connect_options(url, busy_timeout).map_err(|e| DbError::Other(e.into()))?;
        let options = options.foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(classify)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| DbError::Other(Box::new(e)))?;
        // An in-memory database exists once per connection: share the writer.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(settings.max_connections.max(1))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await
                .map_err(classify)?
        };
        if in_memory {
            observe_pool("syncstorage", &writer);
        } else {
            observe_pool("syncstorage.read", &reader);
            observe_pool("syncstorage.write", &writer);
        }
        Ok(Self {
            writer,
            reader,
            in_memory,
        })
    }
}

#[async_trait]
impl Connector for SqliteDb {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn read(&self) -> DbResult<Box<dyn Session>> {
        let tx = self.reader.begin().await.map_err(classify)?;
        Ok(SqliteSession::new(tx))
    }

    /// Takes SQLite's write lock from the start, so a transaction never has
    /// to upgrade (and fail) half-way.
    async fn write(&self, _uid: Option<Uid>) -> DbResult<Box<dyn Session>> {
        let tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(classify)?;
        Ok(SqliteSession::new(tx))
    }

    async fn check(&self) -> DbResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    fn streams(&self) -> bool {
        !self.in_memory
    }

    fn pool(&self, write: bool) -> &'static str {
        match (self.in_memory, write) {
            (true, _) => "syncstorage",
            (false, true) => "syncstorage.write",
            (false, false) => "syncstorage.read",
        }
    }
}

/// Maps driver errors to storage outcomes: a busy or locked database is a
/// write conflict (409); a pool timeout, I/O failure or full disk is an
/// outage (503).
fn classify(err: sqlx::Error) -> DbError {
    match sqlite::failure(&err) {
        Failure::Busy => DbError::Conflict,
        Failure::Outage => DbError::Unavailable(Box::new(err)),
        Failure::Other => DbError::Other(Box::new(err)),
    }
}
