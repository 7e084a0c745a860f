//! The PostgreSQL backend, on Mozilla's tokenserver-postgres schema. Many
//! connections (and processes) write at once, so the transactions that
//! SQLite keeps apart with its single writer take row locks instead (see
//! [`Session::lock_nodes`] and [`Session::lock_user`]), at READ COMMITTED:
//! a step after a lock sees what the previous holder committed. A lock
//! waited on longer than the busy timeout is a 503. `queries.rs` holds the
//! SQL (run by the shared session); this file, opening the database and
//! its sessions.

mod queries;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use sync_common::db_url::{Backend, DatabaseUrl};
use sync_common::telemetry::db::observe_pool;

use super::session::{Connector, Handle, Session};
use super::{DbError, DbResult, StoreSettings, SYNC_SERVICE};
use queries::{classify, PgSession, SERVICE_ID};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Explicit, whatever the server's default: the row locks rely on it.
const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";
/// Keeps uids from being drawn while the sequence is read and moved
/// (`setval` is not transactional); reads go on.
const LOCK_USERS: &str = "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE";
/// The identity sequence behind `users.uid` (NULL for a plain column).
const UID_SEQUENCE: &str = "SELECT pg_get_serial_sequence('users', 'uid')";
/// Moves the sequence so the next uid is above $2, if it is not already
/// (the last value is NULL until the first uid is drawn). A row: it moved.
const RAISE_SEQUENCE: &str =
    "SELECT setval(seq, $2) FROM (SELECT CAST($1 AS regclass) AS seq) AS s \
     WHERE COALESCE(pg_sequence_last_value(seq), 0) < $2";

/// The tokenserver database on a PostgreSQL server.
pub struct PgConnector {
    pool: PgPool,
    service: i32,
}

impl PgConnector {
    /// Connects to the (existing) database at `url` and migrates it.
    pub async fn open(url: &DatabaseUrl, settings: StoreSettings) -> DbResult<Self> {
        // lock_timeout = 0 would mean waiting for ever.
        let lock_timeout = Duration::from_millis(settings.busy_timeout_ms.max(1));
        let pool = sync_common::postgres::pool(url, settings.max_connections, lock_timeout)
            .await
            .map_err(|e| DbError::Unavailable(e.into()))?;
        sync_common::postgres::migrate(url, &MIGRATOR)
            .await
            .map_err(|e| DbError::Other(e.into()))?;
        let service = sqlx::query_scalar(SERVICE_ID)
            .bind(SYNC_SERVICE)
            .fetch_one(&pool)
            .await
            .map_err(classify)?;
        observe_pool(crate::db::store::POOL, &pool);
        Ok(Self { pool, service })
    }

    async fn begin(&self) -> DbResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin_with(BEGIN).await.map_err(classify)
    }
}

#[async_trait]
impl Connector for PgConnector {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn plain(&self) -> DbResult<Box<dyn Session>> {
        let conn = self.pool.acquire().await.map_err(classify)?;
        Ok(PgSession::new(Handle::Plain(conn), self.service))
    }

    async fn write(&self) -> DbResult<Box<dyn Session>> {
        let tx = self.begin().await?;
        Ok(PgSession::new(Handle::Tx(tx), self.service))
    }

    async fn reserve_uids_through(&self, uid: i64) -> DbResult<bool> {
        let mut tx = self.begin().await?;
        sqlx::query(LOCK_USERS)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        let sequence: Option<String> = sqlx::query_scalar(UID_SEQUENCE)
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
        let Some(sequence) = sequence else {
            return Err(DbError::Invalid(
                "users.uid draws from no sequence, so uids cannot be reserved".into(),
            ));
        };
        let moved = sqlx::query(RAISE_SEQUENCE)
            .bind(sequence)
            .bind(uid)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(moved.is_some())
    }
}
