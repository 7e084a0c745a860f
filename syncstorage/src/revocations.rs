//! The tokens this node refuses (ADR 0012), kept in memory for the
//! request path, which never waits on the database or another service for
//! them. Notices are recorded in the node's database, so every process
//! serving the node rereads them there.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sync_common::task::Background;

use sync_common::revocation::Notice;
use sync_common::token::TokenPayload;

use crate::db::{DbResult, SyncStore};
use crate::model::revocation::Revoked;
use crate::model::timestamp::SyncTimestamp;

/// The revocations in force, as last read.
pub struct Revocations {
    store: Arc<dyn SyncStore>,
    current: RwLock<Arc<Revoked>>,
    /// One read-and-swap at a time: a reread begun before a notice was
    /// recorded must not replace the snapshot that has it.
    rereads: tokio::sync::Mutex<()>,
}

impl Revocations {
    /// Reads what the database holds.
    pub async fn load(store: Arc<dyn SyncStore>) -> DbResult<Arc<Self>> {
        let revoked = store.revocations(now()).await?;
        Ok(Arc::new(Self {
            store,
            current: RwLock::new(Arc::new(revoked)),
            rereads: tokio::sync::Mutex::new(()),
        }))
    }

    /// Whether `token` was revoked, as of the last read.
    pub fn refuses(&self, token: &TokenPayload) -> bool {
        self.snapshot().refuses(token)
    }

    /// Records `notice` and applies it here at once.
    pub async fn record(&self, notice: &Notice) -> DbResult<()> {
        let _one = self.rereads.lock().await;
        self.store.record_revocations(notice, now()).await?;
        self.reread().await
    }

    /// Rereads the database (replicas record notices too).
    pub async fn refresh(&self) -> DbResult<()> {
        let _one = self.rereads.lock().await;
        self.reread().await
    }

    async fn reread(&self) -> DbResult<()> {
        let revoked = Arc::new(self.store.revocations(now()).await?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = revoked;
        Ok(())
    }

    fn snapshot(&self) -> Arc<Revoked> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rereads every `every` until dropped. A failed read keeps the last
    /// one: the node keeps serving.
    pub fn spawn_refresher(self: &Arc<Self>, every: Duration) -> Background {
        let revocations = self.clone();
        Background::every(every, move || {
            let revocations = revocations.clone();
            async move {
                if let Err(e) = revocations.refresh().await {
                    tracing::warn!(error = %e, "could not reread the revoked tokens; keeping the last read");
                }
            }
        })
    }
}

fn now() -> u64 {
    SyncTimestamp::now().as_seconds()
}
