//! Purged users' data lives in this server's own storage database.

use std::sync::Arc;

use syncstorage::db::{SyncStore, Uid};
use tokenserver::purge::UserData;

/// Deletes a purged uid's data straight from the storage database.
pub struct LocalStorage(pub Arc<dyn SyncStore>);

#[async_trait::async_trait]
impl UserData for LocalStorage {
    async fn delete(&self, _node: &str, uid: i64) -> Result<(), String> {
        let uid = u64::try_from(uid)
            .ok()
            .and_then(Uid::new)
            .ok_or("invalid uid")?;
        self.0.forget_user(uid).await.map_err(|e| e.to_string())
    }
}
