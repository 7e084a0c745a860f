//! The MySQL/MariaDB backend (InnoDB). Readers run in consistent-snapshot
//! read-only transactions; writers run in `READ COMMITTED` (no gap locks, so
//! different users never block each other) and first lock the user's
//! `user_timestamps` row, so one user's writes serialize across connections
//! and processes. A lock wait longer than the busy timeout (whole seconds)
//! gives up (409).

use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::MySqlPool;
use sync_common::db_url::{Backend, DatabaseUrl};
use sync_common::mysql::{self, Failure, Isolation};
use sync_common::telemetry::db::observe_pool;

use super::session::{Connector, Session};
use super::sql_session::sql_session;
use super::{DbError, DbResult, StoreSettings, Uid};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/mysql");

mod sql {
    use crate::db::session::Purge;

    /// Row-value comparisons do not seek in MySQL indexes; the spelled-out
    /// `key < ? OR (key = ? AND id < ?)` does.
    pub const ROW_VALUES: bool = false;
    /// Read by position: id, modified, payload, sortindex, expiry. Binary
    /// collations read as bytes in sqlx, so ids are cast to text (under
    /// another name: `ORDER BY id` must still mean the column).
    pub const SELECT_BSOS: &str =
        "SELECT CAST(id AS CHAR) AS id_text, modified, payload, sortindex, expiry FROM bsos";
    pub const SELECT_BSOS_NO_PAYLOAD: &str =
        "SELECT CAST(id AS CHAR) AS id_text, modified, '' AS payload, sortindex, expiry FROM bsos";
    /// Over a page's `payload_size`s: rows, bytes, largest (SUM is decimal).
    pub const PAGE_SUMMARY: &str =
        "SELECT COUNT(*), CAST(COALESCE(SUM(payload_size), 0) AS SIGNED), \
         COALESCE(MAX(payload_size), 0) FROM (";
    /// One statement that takes the row's exclusive lock whether or not it
    /// exists (`INSERT IGNORE` + `FOR UPDATE` would take a shared lock
    /// first, and two writers upgrading it deadlock).
    pub const LOCK_USER: &[&str] = &["INSERT INTO user_timestamps (userid, modified) \
         VALUES (?, 0) ON DUPLICATE KEY UPDATE modified = modified"];
    pub const COLLECTION_ID: &str = "SELECT id FROM collections WHERE name = ?";
    /// AUTO_INCREMENT starts at 101: custom collections follow Mozilla's ids.
    pub const CREATE_COLLECTION: &str = "INSERT IGNORE INTO collections (name) VALUES (?)";
    pub const USER_TIMESTAMP: &str = "SELECT modified FROM user_timestamps WHERE userid = ?";
    pub const COLLECTION_TIMESTAMP: &str =
        "SELECT modified FROM user_collections WHERE userid = ? AND collection = ?";
    pub const COLLECTION_TIMESTAMPS: &str =
        "SELECT CAST(c.name AS CHAR), uc.modified FROM user_collections uc \
         JOIN collections c ON c.id = uc.collection WHERE uc.userid = ?";
    pub const TOUCH_USER: &str = "INSERT INTO user_timestamps (userid, modified) VALUES (?, ?) \
         ON DUPLICATE KEY UPDATE modified = VALUES(modified)";
    pub const TOUCH_COLLECTION: &str =
        "INSERT INTO user_collections (userid, collection, modified) VALUES (?, ?, ?) \
         ON DUPLICATE KEY UPDATE modified = VALUES(modified)";
    pub const COLLECTION_COUNTS: &str = "SELECT CAST(c.name AS CHAR), COUNT(*) FROM bsos b \
         JOIN collections c ON c.id = b.collection \
         WHERE b.userid = ? AND b.expiry > ? GROUP BY c.name";
    pub const COLLECTION_BYTES: &str =
        "SELECT CAST(c.name AS CHAR), CAST(SUM(b.payload_size) AS SIGNED) FROM bsos b \
         JOIN collections c ON c.id = b.collection \
         WHERE b.userid = ? AND b.expiry > ? GROUP BY c.name";
    pub const USER_USAGE: &str = "SELECT CAST(COALESCE(SUM(payload_size), 0) AS SIGNED) \
         FROM bsos WHERE userid = ? AND expiry > ?";
    pub const STAGED_BYTES: &str = "SELECT CAST(COALESCE(SUM(bytes), 0) AS SIGNED) FROM batches \
         WHERE userid = ? AND expiry > ? AND id <> ?";
    pub const LIVE_BSO: &str =
        "SELECT CAST(id AS CHAR) AS id_text, modified, payload, sortindex, expiry FROM bsos \
         WHERE userid = ? AND collection = ? AND id = ? AND expiry > ?";
    pub const UPSERT_BSOS_SUFFIX: &str = " ON DUPLICATE KEY UPDATE \
         sortindex = VALUES(sortindex), payload = VALUES(payload), \
         payload_size = VALUES(payload_size), modified = VALUES(modified), \
         expiry = VALUES(expiry)";
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
         ON DUPLICATE KEY UPDATE fenced_until = VALUES(fenced_until)";
    pub const FENCED_UNTIL: &str = "SELECT fenced_until FROM user_fences WHERE userid = ?";
    pub const UNFENCE: &str = "DELETE FROM user_fences WHERE userid = ?";
    pub const LIFT_REVOCATION: &str = "DELETE FROM revoked_uids WHERE uid = ?";
    /// A collection's live records in id order, after an id.
    pub const RECORDS_AFTER: &str = "SELECT CAST(id AS CHAR) AS id_text, modified, payload, \
         sortindex, expiry FROM bsos WHERE userid = ? AND collection = ? AND expiry > ? \
         AND id > ? ORDER BY id LIMIT ?";
    // Revocations (ADR 0012).
    pub const REVOKE_UIDS: &str = "INSERT INTO revoked_uids (uid, expires) ";
    pub const REVOKE_UIDS_SUFFIX: &str =
        " ON DUPLICATE KEY UPDATE expires = GREATEST(expires, VALUES(expires))";
    pub const RAISE_EPOCH: &str = "INSERT INTO node_epochs (node, epoch) VALUES (?, ?) \
         ON DUPLICATE KEY UPDATE epoch = GREATEST(epoch, VALUES(epoch))";
    pub const FORGET_REVOKED: &str = "DELETE FROM revoked_uids WHERE expires <= ?";
    pub const REVOKED_UIDS: &str = "SELECT uid FROM revoked_uids WHERE expires > ?";
    pub const NODE_EPOCHS: &str = "SELECT CAST(node AS CHAR), epoch FROM node_epochs";
    pub const FORGET_USER: &[&str] = &["DELETE FROM user_timestamps WHERE userid = ?"];
    pub const INSERT_BATCH: &str =
        "INSERT INTO batches (id, userid, collection, expiry, records, bytes) \
         VALUES (?, ?, ?, ?, ?, ?)";
    /// Locked: a purge cannot take the batch away while it is used.
    pub const FIND_BATCH: &str = "SELECT records, bytes FROM batches \
         WHERE id = ? AND userid = ? AND collection = ? AND expiry > ? FOR UPDATE";
    pub const UPDATE_BATCH: &str = "UPDATE batches SET records = ?, bytes = ? WHERE id = ?";
    /// Newest first.
    pub const BATCH_IDS: &str =
        "SELECT CAST(id AS CHAR) FROM batches WHERE userid = ? ORDER BY opened DESC";
    pub const STAGED_ITEMS: &str = "SELECT item FROM batch_items WHERE batch = ? ORDER BY seq";
    /// Each binds (now, limit): expired BSOs, the staged items of expired
    /// batches, then expired batches with no items left.
    /// (MySQL allows no LIMIT in an IN subquery: a derived table instead.)
    pub const PURGE: &[(Purge, &str)] = &[
        (Purge::Records, "DELETE FROM bsos WHERE expiry <= ? LIMIT ?"),
        (
            Purge::BatchItems,
            "DELETE i FROM batch_items i JOIN (SELECT s.batch, s.seq FROM batch_items s \
         JOIN batches b ON b.id = s.batch WHERE b.expiry <= ? LIMIT ?) AS expired \
         ON i.batch = expired.batch AND i.seq = expired.seq",
        ),
        (
            Purge::Batches,
            "DELETE FROM batches WHERE expiry <= ? \
         AND NOT EXISTS (SELECT 1 FROM batch_items i WHERE i.batch = batches.id) LIMIT ?",
        ),
    ];
    pub const HIGHEST_UID: &str = "SELECT MAX(uid) FROM (\
         SELECT MAX(userid) AS uid FROM user_timestamps \
         UNION ALL SELECT MAX(userid) FROM bsos UNION ALL SELECT MAX(userid) FROM batches) AS uids";
}

sql_session!(MySqlSession, sqlx::MySql, sql, classify);

/// SyncStorage on a MySQL or MariaDB database.
pub struct MySqlDb {
    reader: MySqlPool,
    writer: MySqlPool,
}

impl MySqlDb {
    /// Connects and applies the migrations.
    pub async fn open(url: &DatabaseUrl, settings: &StoreSettings) -> DbResult<Self> {
        let lock_timeout = Duration::from_millis(settings.busy_timeout_ms);
        let connections = settings.max_connections;
        let pool = |isolation| mysql::pool(url, connections, lock_timeout, isolation);
        let writer = pool(Isolation::ReadCommitted)
            .await
            .map_err(|e| DbError::Unavailable(e.into()))?;
        mysql::migrate(&writer, &MIGRATOR)
            .await
            .map_err(|e| DbError::Other(e.into()))?;
        let reader = pool(Isolation::RepeatableRead)
            .await
            .map_err(|e| DbError::Unavailable(e.into()))?;
        observe_pool("syncstorage.read", &reader);
        observe_pool("syncstorage.write", &writer);
        Ok(Self { reader, writer })
    }
}

#[async_trait]
impl Connector for MySqlDb {
    fn backend(&self) -> Backend {
        Backend::MySql
    }

    async fn read(&self) -> DbResult<Box<dyn Session>> {
        let tx = self
            .reader
            .begin_with("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .map_err(classify)?;
        Ok(MySqlSession::new(tx))
    }

    async fn write(&self, uid: Option<Uid>) -> DbResult<Box<dyn Session>> {
        let mut tx = self.writer.begin().await.map_err(classify)?;
        if let Some(uid) = uid {
            for statement in sql::LOCK_USER {
                sqlx::query(statement)
                    .bind(uid.as_db())
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?;
            }
        }
        Ok(MySqlSession::new(tx))
    }

    fn pool(&self, write: bool) -> &'static str {
        if write {
            "syncstorage.write"
        } else {
            "syncstorage.read"
        }
    }

    async fn check(&self) -> DbResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

/// Lock wait timeouts and deadlocks are conflicts (409); a lost connection,
/// a full pool or a server shutting down is an outage (503).
fn classify(err: sqlx::Error) -> DbError {
    match mysql::failure(&err) {
        Failure::Busy => DbError::Conflict,
        Failure::Outage => DbError::Unavailable(Box::new(err)),
        Failure::Other => DbError::Other(Box::new(err)),
    }
}
