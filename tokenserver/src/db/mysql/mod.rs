//! The MySQL/MariaDB backend, on Mozilla's tokenserver-mysql schema. Many
//! connections (and processes) write at once, so the transactions that
//! SQLite keeps apart with its single writer take row locks instead (see
//! [`Session::lock_nodes`] and [`Session::lock_user`]), at READ COMMITTED:
//! a step after a lock sees what the previous holder committed, and no gap
//! locks make writers of different users wait for each other. A lock
//! waited on longer than the busy timeout is a 503. `queries.rs` holds the
//! SQL (run by the shared session); this file, opening the database and
//! its sessions.

mod queries;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{MySqlDatabaseError, MySqlPool};
use sync_common::db_url::{Backend, DatabaseUrl};
use sync_common::mysql::Isolation;
use sync_common::telemetry::db::observe_pool;

use super::session::{Connector, Handle, Session};
use super::{DbError, DbResult, StoreSettings, SYNC_SERVICE};
use queries::{classify, MySqlSession, SERVICE_ID};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/mysql");

/// MySQL 8 caches information_schema's AUTO_INCREMENT for a day unless
/// told otherwise; MariaDB reads it live and has no such variable.
const FRESH_TABLE_STATS: &str = "SET SESSION information_schema_stats_expiry = 0";
/// ER_UNKNOWN_SYSTEM_VARIABLE: the server is MariaDB.
const UNKNOWN_VARIABLE: u16 = 1193;
/// The next uid InnoDB hands out (NULL without an AUTO_INCREMENT column).
const NEXT_UID: &str = "SELECT AUTO_INCREMENT FROM information_schema.TABLES \
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users'";
/// ALTER TABLE waits for every open transaction on `users` (and holds up
/// the ones after it) for this long at most, not MySQL's default year.
const DDL_LOCK_WAIT: &str = "SET SESSION lock_wait_timeout = ";
/// InnoDB never sets the counter at or below the largest uid in the table.
const MOVE_NEXT_UID: &str = "ALTER TABLE users AUTO_INCREMENT = ";

/// The tokenserver database on a MySQL or MariaDB server.
pub struct MySqlConnector {
    pool: MySqlPool,
    service: i64,
    /// Seconds a lock is waited for.
    lock_wait: u64,
}

impl MySqlConnector {
    /// Connects to the (existing) database at `url` and migrates it.
    pub async fn open(url: &DatabaseUrl, settings: StoreSettings) -> DbResult<Self> {
        let lock_timeout = Duration::from_millis(settings.busy_timeout_ms);
        let pool = sync_common::mysql::pool(
            url,
            settings.max_connections,
            lock_timeout,
            Isolation::ReadCommitted,
        )
        .await
        .map_err(|e| DbError::Unavailable(e.into()))?;
        sync_common::mysql::migrate(&pool, &MIGRATOR)
            .await
            .map_err(|e| DbError::Other(e.into()))?;
        let service = sqlx::query_scalar(SERVICE_ID)
            .bind(SYNC_SERVICE)
            .fetch_one(&pool)
            .await
            .map_err(classify)?;
        observe_pool(crate::db::store::POOL, &pool);
        Ok(Self {
            pool,
            service,
            lock_wait: lock_timeout.as_secs().max(1),
        })
    }
}

#[async_trait]
impl Connector for MySqlConnector {
    fn backend(&self) -> Backend {
        Backend::MySql
    }

    async fn plain(&self) -> DbResult<Box<dyn Session>> {
        let conn = self.pool.acquire().await.map_err(classify)?;
        Ok(MySqlSession::new(Handle::Plain(conn), self.service))
    }

    async fn write(&self) -> DbResult<Box<dyn Session>> {
        let tx = self.pool.begin().await.map_err(classify)?;
        Ok(MySqlSession::new(Handle::Tx(tx), self.service))
    }

    async fn reserve_uids_through(&self, uid: i64) -> DbResult<bool> {
        // DDL commits on its own, so this is no transaction: a uid drawn
        // meanwhile is above the counter read, and InnoDB keeps the
        // counter above it whatever this sets.
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        let fresh = sqlx::query(FRESH_TABLE_STATS).execute(&mut *conn).await;
        if let Err(e) = fresh.map(drop) {
            if !is_unknown_variable(&e) {
                return Err(classify(e));
            }
        }
        let next: Option<u64> = sqlx::query_scalar(NEXT_UID)
            .fetch_one(&mut *conn)
            .await
            .map_err(classify)?;
        let Some(next) = next else {
            return Err(DbError::Invalid(
                "users.uid is not AUTO_INCREMENT, so uids cannot be reserved".into(),
            ));
        };
        if i64::try_from(next).map_or(true, |next| next > uid) {
            return Ok(false);
        }
        let after = uid
            .checked_add(1)
            .ok_or_else(|| DbError::Invalid(format!("uid {uid} cannot be reserved")))?;
        // Neither statement takes bound parameters; both values are numbers.
        for sql in [
            format!("{DDL_LOCK_WAIT}{}", self.lock_wait),
            format!("{MOVE_NEXT_UID}{after}"),
        ] {
            sqlx::query(&sql)
                .execute(&mut *conn)
                .await
                .map_err(classify)?;
        }
        Ok(true)
    }
}

fn is_unknown_variable(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    db.try_downcast_ref::<MySqlDatabaseError>()
        .is_some_and(|e| e.number() == UNKNOWN_VARIABLE)
}
