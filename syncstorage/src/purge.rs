//! Removes expired BSOs and abandoned batches in the background, in small
//! chunks so a purge never holds the database for long.

use std::sync::Arc;
use std::time::Duration;

use sync_common::task::Background;

use crate::config::StorageConfig;
use crate::db::{DbResult, Purged, SyncStore};
use crate::metrics;

/// Purges everything expired now, `chunk` rows at a time; returns what
/// it removed (and counts the run in the metrics).
pub async fn purge_all(store: &dyn SyncStore, chunk: u64) -> DbResult<Purged> {
    let mut total = Purged::default();
    let failed = purge_chunks(store, chunk, &mut total).await.err();
    // What earlier chunks committed counts even when a later one fails.
    metrics::purged(&total, failed.is_none());
    failed.map_or(Ok(total), Err)
}

async fn purge_chunks(store: &dyn SyncStore, chunk: u64, total: &mut Purged) -> DbResult<()> {
    loop {
        let removed = store.purge_expired(chunk).await?;
        *total += removed;
        if removed.rows() < chunk {
            return Ok(());
        }
        // Let user requests in between chunks.
        tokio::task::yield_now().await;
    }
}

/// Starts the periodic purge, unless its interval is 0.
pub fn spawn(store: Arc<dyn SyncStore>, config: &StorageConfig) -> Option<Background> {
    let interval = config.purge_interval_seconds;
    let chunk = config.purge_chunk_rows.max(1);
    if interval == 0 {
        return None;
    }
    Some(Background::every(
        Duration::from_secs(interval),
        move || {
            let store = store.clone();
            async move {
                match purge_all(store.as_ref(), chunk).await {
                    Ok(purged) if purged.rows() == 0 => {}
                    Ok(purged) => tracing::info!(
                        records = purged.records,
                        batch_items = purged.batch_items,
                        batches = purged.batches,
                        "purged expired data"
                    ),
                    Err(e) => tracing::warn!(error = %e, "purge failed; will retry"),
                }
            }
        },
    ))
}
