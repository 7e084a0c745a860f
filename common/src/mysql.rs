//! What both services' MySQL/MariaDB backends do alike: connect the same way
//! and read what a driver error says about the request.

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPool, MySqlPoolOptions};
use sqlx::Executor;

use crate::db_url::DatabaseUrl;
pub use crate::failure::Failure;

/// How long a request waits for a connection before the database counts
/// as down (503): long enough for a busy pool, short enough not to hang.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a starting service waits for its database (it may be starting
/// too, as in a fresh deployment).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The isolation level of a pool's sessions.
#[derive(Debug, Clone, Copy)]
pub enum Isolation {
    /// Consistent snapshots for reads.
    RepeatableRead,
    /// No gap locks for writers that lock their own rows explicitly, so
    /// writers of different users never block each other.
    ReadCommitted,
}

/// How long MySQL may wait to send us a row (its default is 60 s).
const NET_WRITE_TIMEOUT_SECONDS: u64 = 3600;

/// A pool for `url`: utf8mb4, the given isolation, and row-lock waits that
/// give up after `lock_timeout` (whole seconds, at least one: InnoDB's unit).
pub async fn pool(
    url: &DatabaseUrl,
    max_connections: u32,
    lock_timeout: Duration,
    isolation: Isolation,
) -> Result<MySqlPool, String> {
    let options = MySqlConnectOptions::from_str(url.expose())
        .map_err(|e| format!("invalid MySQL URL {url}: {e}"))?
        .charset("utf8mb4");
    let wait = lock_timeout.as_secs().max(1);
    let level = match isolation {
        Isolation::RepeatableRead => "REPEATABLE READ",
        Isolation::ReadCommitted => "READ COMMITTED",
    };
    let setup = [
        format!("SET SESSION innodb_lock_wait_timeout = {wait}"),
        format!("SET SESSION TRANSACTION ISOLATION LEVEL {level}"),
        // A streamed read waits on its HTTP client between rows; the
        // server's own deadlines bound that wait, MySQL's 60 s must not.
        format!("SET SESSION net_write_timeout = {NET_WRITE_TIMEOUT_SECONDS}"),
    ];
    let pool = MySqlPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |conn, _| {
            let setup = setup.clone();
            Box::pin(async move {
                for statement in &setup {
                    conn.execute(statement.as_str()).await?;
                }
                Ok(())
            })
        })
        .connect_lazy_with(options);
    crate::failure::wait_for(&pool, STARTUP_TIMEOUT)
        .await
        .map_err(|e| format!("cannot connect to MySQL at {url}: {e}"))?;
    Ok(pool)
}

/// Classifies a driver error by MySQL error number.
pub fn failure(err: &sqlx::Error) -> Failure {
    let sqlx::Error::Database(db) = err else {
        return Failure::of_connection(err);
    };
    let Some(number) = db
        .try_downcast_ref::<MySqlDatabaseError>()
        .map(|e| e.number())
    else {
        return Failure::Other;
    };
    match number {
        // lock wait timeout, deadlock
        1205 | 1213 => Failure::Busy,
        // query timed out (max_execution_time): like a lock wait
        3024 => Failure::Busy,
        // disk full, too many connections, shutdown, table full, read-only,
        // connection killed, out of resources, interrupted, network read or
        // write timeouts, idle connection closed by the server
        1021 | 1040 | 1041 | 1053 | 1114 | 1159 | 1161 | 1290 | 1317 | 1836 | 1927 | 4031 => {
            Failure::Outage
        }
        _ => Failure::Other,
    }
}

/// Applies `migrator` with a server-side lock held, so services starting
/// together on one database migrate one after another (sqlx's own lock uses
/// `GET_LOCK(…, -1)`, which MariaDB takes as "do not wait").
pub async fn migrate(pool: &MySqlPool, migrator: &sqlx::migrate::Migrator) -> Result<(), String> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(|e| format!("cannot connect to migrate: {e}"))?;
    let locked: Option<i64> =
        sqlx::query_scalar("SELECT GET_LOCK(CONCAT('sync-migrations-', DATABASE()), 60)")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| format!("cannot lock the database to migrate it: {e}"))?;
    if locked != Some(1) {
        return Err("another process held the migration lock for a minute".into());
    }
    let result = migrator.run_direct(&mut *conn).await;
    let _ = sqlx::query("SELECT RELEASE_LOCK(CONCAT('sync-migrations-', DATABASE()))")
        .execute(&mut *conn)
        .await;
    result.map_err(|e| format!("migrations failed: {e}"))
}
