//! The embedded SQLite backend: WAL mode, writes in `BEGIN IMMEDIATE`
//! transactions (they hold the write lock from the start, so they never
//! fail half-way on an upgrade, and one runs at a time: no row locks are
//! needed), reads from a small pool. `queries.rs` holds the SQL
//! (run by the shared session); this file, opening the database and its
//! sessions.

mod queries;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use sync_common::db_url::{Backend, DatabaseUrl};
use sync_common::telemetry::db::observe_pool;

use super::session::{Connector, Handle, Session};
use super::{DbError, DbResult, StoreSettings, SYNC_SERVICE};
use queries::{classify, SqliteSession, SERVICE_ID};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Reads `users`' schema, to see whether uids can be reserved.
const USERS_SCHEMA: &str = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'";
/// AUTOINCREMENT draws uids above sqlite_sequence's `seq` for users (and
/// above every uid in the table); the row exists once a uid was drawn.
const ENSURE_SEQUENCE: &str = "INSERT INTO sqlite_sequence (name, seq) SELECT 'users', 0 \
     WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'users')";
const RAISE_SEQUENCE: &str =
    "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'users' AND seq < ?1";

/// The tokenserver database in an SQLite file.
pub struct SqliteConnector {
    pool: SqlitePool,
    service: i64,
}

impl SqliteConnector {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn open(url: &DatabaseUrl, settings: StoreSettings) -> DbResult<Self> {
        let busy_timeout = Duration::from_millis(settings.busy_timeout_ms);
        let (options, in_memory) = sync_common::sqlite::connect_options(url, busy_timeout)
            .map_err(|e| DbError::Other(e.into()))?;
        let pool = SqlitePoolOptions::new()
            // An in-memory database exists once per connection.
            .max_connections(if in_memory {
                1
            } else {
                settings.max_connections.max(1)
            })
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(classify)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| DbError::Other(Box::new(e)))?;
        let service = sqlx::query_scalar(SERVICE_ID)
            .bind(SYNC_SERVICE)
            .fetch_one(&pool)
            .await
            .map_err(classify)?;
        observe_pool(crate::db::store::POOL, &pool);
        Ok(Self { pool, service })
    }

    async fn begin_write(&self) -> DbResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(classify)
    }
}

#[async_trait]
impl Connector for SqliteConnector {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn plain(&self) -> DbResult<Box<dyn Session>> {
        let conn = self.pool.acquire().await.map_err(classify)?;
        Ok(SqliteSession::new(Handle::Plain(conn), self.service))
    }

    async fn write(&self) -> DbResult<Box<dyn Session>> {
        let tx = self.begin_write().await?;
        Ok(SqliteSession::new(Handle::Tx(tx), self.service))
    }

    async fn reserve_uids_through(&self, uid: i64) -> DbResult<bool> {
        // An adopted table without AUTOINCREMENT cannot keep a reservation.
        let mut tx = self.begin_write().await?;
        let schema: String = sqlx::query_scalar(USERS_SCHEMA)
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
        if !schema.to_ascii_uppercase().contains("AUTOINCREMENT") {
            return Err(DbError::Invalid(
                "the users table does not use AUTOINCREMENT, so uids cannot be reserved".into(),
            ));
        }
        sqlx::query(ENSURE_SEQUENCE)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        let raised = sqlx::query(RAISE_SEQUENCE)
            .bind(uid)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(raised.rows_affected() > 0)
    }
}
