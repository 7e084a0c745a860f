//! What a failed database call means for the request, whatever the backend:
//! each backend's `failure` function reads its driver's codes into this.

/// The three outcomes a storage layer maps to protocol errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Another transaction holds what this one needs (busy, lock timeout,
    /// deadlock, serialization failure): the request may be retried.
    Busy,
    /// The database, its disk or the pool is unavailable, not the request.
    Outage,
    /// Anything else: a bug or corruption.
    Other,
}

impl Failure {
    /// Errors that are not from the database server itself: a dropped or
    /// refused connection, an exhausted or closed pool.
    pub fn of_connection(err: &sqlx::Error) -> Failure {
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => Failure::Outage,
            _ => Failure::Other,
        }
    }
}

/// Waits until `pool` hands out a connection, retrying while the database
/// is unreachable, for at most `timeout`: the start of a service.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) async fn wait_for<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    timeout: std::time::Duration,
) -> Result<(), sqlx::Error> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match pool.acquire().await {
            Ok(_) => return Ok(()),
            // The server answered (bad credentials, no such database): final.
            Err(e @ sqlx::Error::Database(_)) => return Err(e),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "waiting for the database");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}
