//! What both services' PostgreSQL backends do alike: connect the same way
//! and read what a driver error says about the request.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::db_url::DatabaseUrl;
pub use crate::failure::Failure;

/// How long a request waits for a connection before the database counts
/// as down (503): long enough for a busy pool, short enough not to hang.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a starting service waits for its database (it may be starting
/// too, as in a fresh deployment).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A pool for `url` whose row-lock waits give up after `lock_timeout`
/// (then the request gets a conflict instead of queueing without end).
pub async fn pool(
    url: &DatabaseUrl,
    max_connections: u32,
    lock_timeout: Duration,
) -> Result<PgPool, String> {
    let options = PgConnectOptions::from_str(url.expose())
        .map_err(|e| format!("invalid PostgreSQL URL {url}: {e}"))?
        .options([("lock_timeout", lock_timeout.as_millis().to_string())]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options);
    crate::failure::wait_for(&pool, STARTUP_TIMEOUT)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL at {url}: {e}"))?;
    Ok(pool)
}

/// Applies `migrator` on a connection of its own, without the pool's lock
/// timeout: a second process starting meanwhile waits for the first's
/// migration (sqlx's advisory lock) however long it takes.
pub async fn migrate(url: &DatabaseUrl, migrator: &sqlx::migrate::Migrator) -> Result<(), String> {
    use sqlx::Connection;
    let options = PgConnectOptions::from_str(url.expose())
        .map_err(|e| format!("invalid PostgreSQL URL {url}: {e}"))?;
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL at {url} to migrate: {e}"))?;
    let result = migrator.run_direct(&mut conn).await;
    let _ = conn.close().await;
    result.map_err(|e| format!("migrations failed: {e}"))
}

/// Classifies a driver error by SQLSTATE.
pub fn failure(err: &sqlx::Error) -> Failure {
    let sqlx::Error::Database(db) = err else {
        return Failure::of_connection(err);
    };
    let code = db.code().unwrap_or_default();
    match code.as_ref() {
        // serialization_failure, deadlock_detected, lock_not_available
        "40001" | "40P01" | "55P03" => Failure::Busy,
        // connection exceptions, insufficient resources (disk full, too many
        // connections), operator intervention (shutdown, cannot connect now)
        // (also: statement cancelled or timed out, a read-only standby
        // after a failover)
        c if c.starts_with("08")
            || c.starts_with("53")
            || c.starts_with("57P")
            || c == "57014"
            || c == "25006" =>
        {
            Failure::Outage
        }
        _ => Failure::Other,
    }
}
