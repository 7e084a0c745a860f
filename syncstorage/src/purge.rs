//! Removes expired BSOs and abandoned batches in the background, in small
//! chunks so a purge never holds the database for long.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::StorageConfig;
use crate::db::SyncStore;

/// Purges everything expired now, `chunk` rows at a time; returns the count.
pub async fn purge_all(store: &dyn SyncStore, chunk: u64) -> crate::db::DbResult<u64> {
    let mut total = 0;
    loop {
        let removed = store.purge_expired(chunk).await?;
        total += removed;
        if removed < chunk {
            return Ok(total);
        }
        // Let user requests in between chunks.
        tokio::task::yield_now().await;
    }
}

/// Starts the periodic purge (a no-op task when the interval is 0).
pub fn spawn(store: Arc<dyn SyncStore>, config: &StorageConfig) -> JoinHandle<()> {
    let interval = config.purge_interval_seconds;
    let chunk = config.purge_chunk_rows.max(1);
    tokio::spawn(async move {
        if interval == 0 {
            return;
        }
        let mut ticker = tokio::time::interval(Duration::from_secs(interval));
        loop {
            ticker.tick().await;
            match purge_all(store.as_ref(), chunk).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "purged expired data"),
                Err(e) => tracing::warn!(error = %e, "purge failed; will retry"),
            }
        }
    })
}
