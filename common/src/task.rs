//! Work that runs to its end once started, whatever becomes of the request
//! that asked for it.

use std::future::Future;

/// Runs `work` on a task of its own and waits for its result. Dropping the
/// caller (a client that disconnects, a request deadline) does not cancel
/// the work: a database transaction begun inside always reaches its commit
/// or rollback, so no connection goes back to its pool inside one (sqlx's
/// `begin` and `commit` are not cancellation-safe). Fails only if the work
/// panicked.
pub async fn to_completion<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::spawn(work).await
}

/// A background task that stops when its owner drops this (a server's
/// loops end with the server, not with the process).
pub struct Background(tokio::task::JoinHandle<()>);

impl Background {
    pub fn spawn(work: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(work))
    }

    /// Runs `round` at once and then every `every` (a slow round delays
    /// the next one rather than piling them up).
    pub fn every<F, Fut>(every: std::time::Duration, mut round: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        Self::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                round().await;
            }
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}
