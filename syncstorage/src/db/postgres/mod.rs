//! The PostgreSQL backend. Readers run in `REPEATABLE READ READ ONLY`
//! transactions (one snapshot per request); writers run in `READ COMMITTED`
//! and first lock the user's `user_timestamps` row, so one user's writes
//! serialize across connections and processes while other users' writes
//! proceed. A lock wait longer than the busy timeout gives up (409).

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use sync_common::db_url::{Backend, DatabaseUrl};
use sync_common::postgres::{self, Failure};
use sync_common::telemetry::db::observe_pool;

use super::session::{Connector, Session};
use super::sql_session::sql_session;
use super::{DbError, DbResult, StoreSettings, Uid};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

mod sql {
    use crate::db::session::Purge;

    /// `(key, id) < ($1, $2)` seeks in the paging indexes.
    pub const ROW_VALUES: bool = true;
    /// Read by position: id, modified, payload, sortindex, expiry.
    pub const SELECT_BSOS: &str = "SELECT id, modified, payload, sortindex, expiry FROM bsos";
    pub const SELECT_BSOS_NO_PAYLOAD: &str =
        "SELECT id, modified, '' AS payload, sortindex, expiry FROM bsos";
    /// Over a page's `payload_size`s: rows, bytes, largest (SUM is numeric).
    pub const PAGE_SUMMARY: &str =
        "SELECT COUNT(*), CAST(COALESCE(SUM(payload_size), 0) AS BIGINT), \
         COALESCE(MAX(payload_size), 0) FROM (";
    /// One statement that always ends holding the row's lock, even if the
    /// row is deleted (a forgotten user) while it waits.
    pub const LOCK_USER: &[&str] = &["INSERT INTO user_timestamps (userid, modified) \
         VALUES ($1, 0) ON CONFLICT (userid) DO UPDATE SET modified = user_timestamps.modified"];
    pub const COLLECTION_ID: &str = "SELECT id FROM collections WHERE name = $1";
    /// The identity starts at 101: custom collections follow Mozilla's ids.
    pub const CREATE_COLLECTION: &str =
        "INSERT INTO collections (name) VALUES ($1) ON CONFLICT (name) DO NOTHING";
    pub const USER_TIMESTAMP: &str = "SELECT modified FROM user_timestamps WHERE userid = $1";
    pub const COLLECTION_TIMESTAMP: &str =
        "SELECT modified FROM user_collections WHERE userid = $1 AND collection = $2";
    pub const COLLECTION_TIMESTAMPS: &str = "SELECT c.name, uc.modified FROM user_collections uc \
         JOIN collections c ON c.id = uc.collection WHERE uc.userid = $1";
    pub const TOUCH_USER: &str = "INSERT INTO user_timestamps (userid, modified) VALUES ($1, $2) \
         ON CONFLICT (userid) DO UPDATE SET modified = excluded.modified";
    pub const TOUCH_COLLECTION: &str =
        "INSERT INTO user_collections (userid, collection, modified) VALUES ($1, $2, $3) \
         ON CONFLICT (userid, collection) DO UPDATE SET modified = excluded.modified";
    pub const COLLECTION_COUNTS: &str = "SELECT c.name, COUNT(*) FROM bsos b \
         JOIN collections c ON c.id = b.collection \
         WHERE b.userid = $1 AND b.expiry > $2 GROUP BY c.name";
    pub const COLLECTION_BYTES: &str =
        "SELECT c.name, CAST(SUM(b.payload_size) AS BIGINT) FROM bsos b \
         JOIN collections c ON c.id = b.collection \
         WHERE b.userid = $1 AND b.expiry > $2 GROUP BY c.name";
    pub const USER_USAGE: &str = "SELECT CAST(COALESCE(SUM(payload_size), 0) AS BIGINT) \
         FROM bsos WHERE userid = $1 AND expiry > $2";
    pub const STAGED_BYTES: &str = "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM batches \
         WHERE userid = $1 AND expiry > $2 AND id <> $3";
    pub const LIVE_BSO: &str = "SELECT id, modified, payload, sortindex, expiry FROM bsos \
         WHERE userid = $1 AND collection = $2 AND id = $3 AND expiry > $4";
    pub const UPSERT_BSOS_SUFFIX: &str = " ON CONFLICT (userid, collection, id) DO UPDATE SET \
         sortindex = excluded.sortindex, payload = excluded.payload, \
         payload_size = excluded.payload_size, modified = excluded.modified, \
         expiry = excluded.expiry";
    pub const DELETE_COLLECTION: &[&str] = &[
        "DELETE FROM bsos WHERE userid = $1 AND collection = $2",
        "DELETE FROM user_collections WHERE userid = $1 AND collection = $2",
        "DELETE FROM batches WHERE userid = $1 AND collection = $2",
    ];
    pub const DELETE_USER_DATA: &[&str] = &[
        "DELETE FROM bsos WHERE userid = $1",
        "DELETE FROM user_collections WHERE userid = $1",
        "DELETE FROM batches WHERE userid = $1",
    ];
    // Migration (ADR 0013).
    pub const FENCE: &str = "INSERT INTO user_fences (userid, fenced_until) VALUES ($1, $2) \
         ON CONFLICT (userid) DO UPDATE SET fenced_until = excluded.fenced_until";
    pub const FENCED_UNTIL: &str = "SELECT fenced_until FROM user_fences WHERE userid = $1";
    pub const UNFENCE: &str = "DELETE FROM user_fences WHERE userid = $1";
    pub const LIFT_REVOCATION: &str = "DELETE FROM revoked_uids WHERE uid = $1";
    /// A collection's live records in id order, after an id.
    pub const RECORDS_AFTER: &str = "SELECT id, modified, payload, sortindex, expiry FROM bsos \
         WHERE userid = $1 AND collection = $2 AND expiry > $3 AND id > $4 \
         ORDER BY id LIMIT $5";
    // Revocations (ADR 0012).
    pub const REVOKE_UIDS: &str = "INSERT INTO revoked_uids (uid, expires) ";
    pub const REVOKE_UIDS_SUFFIX: &str = " ON CONFLICT (uid) DO UPDATE SET \
         expires = GREATEST(revoked_uids.expires, excluded.expires)";
    pub const RAISE_EPOCH: &str = "INSERT INTO node_epochs (node, epoch) VALUES ($1, $2) \
         ON CONFLICT (node) DO UPDATE SET epoch = GREATEST(node_epochs.epoch, excluded.epoch)";
    pub const FORGET_REVOKED: &str = "DELETE FROM revoked_uids WHERE expires <= $1";
    pub const REVOKED_UIDS: &str = "SELECT uid FROM revoked_uids WHERE expires > $1";
    pub const NODE_EPOCHS: &str = "SELECT node, epoch FROM node_epochs";
    pub const FORGET_USER: &[&str] = &["DELETE FROM user_timestamps WHERE userid = $1"];
    pub const INSERT_BATCH: &str =
        "INSERT INTO batches (id, userid, collection, expiry, records, bytes) \
         VALUES ($1, $2, $3, $4, $5, $6)";
    /// Locked: a purge cannot take the batch away while it is used.
    pub const FIND_BATCH: &str = "SELECT records, bytes FROM batches \
         WHERE id = $1 AND userid = $2 AND collection = $3 AND expiry > $4 FOR UPDATE";
    pub const UPDATE_BATCH: &str = "UPDATE batches SET records = $1, bytes = $2 WHERE id = $3";
    /// Newest first.
    pub const BATCH_IDS: &str = "SELECT id FROM batches WHERE userid = $1 ORDER BY opened DESC";
    pub const STAGED_ITEMS: &str = "SELECT item FROM batch_items WHERE batch = $1 ORDER BY seq";
    /// Each binds (now, limit): expired BSOs, the staged items of expired
    /// batches, then expired batches with no items left (the expiry indexes
    /// find the rows).
    pub const PURGE: &[(Purge, &str)] = &[
        (
            Purge::Records,
            "DELETE FROM bsos WHERE ctid = ANY(ARRAY(\
         SELECT ctid FROM bsos WHERE expiry <= $1 LIMIT $2))",
        ),
        (
            Purge::BatchItems,
            "DELETE FROM batch_items WHERE ctid = ANY(ARRAY(SELECT i.ctid FROM batch_items i \
         JOIN batches b ON b.id = i.batch WHERE b.expiry <= $1 LIMIT $2))",
        ),
        (
            Purge::Batches,
            "DELETE FROM batches WHERE id IN (SELECT id FROM batches b WHERE b.expiry <= $1 \
         AND NOT EXISTS (SELECT 1 FROM batch_items i WHERE i.batch = b.id) LIMIT $2)",
        ),
    ];
    pub const HIGHEST_UID: &str = "SELECT MAX(uid) FROM (\
         SELECT MAX(userid) AS uid FROM user_timestamps \
         UNION ALL SELECT MAX(userid) FROM bsos UNION ALL SELECT MAX(userid) FROM batches) AS uids";
}

sql_session!(PgSession, sqlx::Postgres, sql, classify);

/// SyncStorage on a PostgreSQL database.
pub struct PostgresDb {
    pool: PgPool,
}

impl PostgresDb {
    /// Connects and applies the migrations.
    pub async fn open(url: &DatabaseUrl, settings: &StoreSettings) -> DbResult<Self> {
        // 0 would mean "wait for ever" to PostgreSQL.
        let lock_timeout = Duration::from_millis(settings.busy_timeout_ms.max(1));
        let pool = postgres::pool(url, settings.max_connections, lock_timeout)
            .await
            .map_err(|e| DbError::Unavailable(e.into()))?;
        postgres::migrate(url, &MIGRATOR)
            .await
            .map_err(|e| DbError::Other(e.into()))?;
        observe_pool("syncstorage", &pool);
        Ok(Self { pool })
    }
}

#[async_trait]
impl Connector for PostgresDb {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn read(&self) -> DbResult<Box<dyn Session>> {
        let tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(classify)?;
        Ok(PgSession::new(tx))
    }

    async fn write(&self, uid: Option<Uid>) -> DbResult<Box<dyn Session>> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        if let Some(uid) = uid {
            for statement in sql::LOCK_USER {
                sqlx::query(statement)
                    .bind(uid.as_db())
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?;
            }
        }
        Ok(PgSession::new(tx))
    }

    fn pool(&self, _write: bool) -> &'static str {
        "syncstorage"
    }

    async fn check(&self) -> DbResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

/// Lock timeouts, deadlocks and serialization failures are conflicts (409);
/// a lost connection, a full pool or a server shutting down is an outage (503).
fn classify(err: sqlx::Error) -> DbError {
    match postgres::failure(&err) {
        Failure::Busy => DbError::Conflict,
        Failure::Outage => DbError::Unavailable(Box::new(err)),
        Failure::Other => DbError::Other(Box::new(err)),
    }
}
