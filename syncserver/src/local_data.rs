//! Users' data on this server's own node, read and written straight in its
//! storage database: `export` and `import-user` work with the server
//! running or stopped. The all-in-one's tokenserver lists no other node
//! (`node::register`), so every node name is this one.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sync_common::migration::{Import, Record, UserState};
use syncstorage::db::{SyncStore, Uid};
use syncstorage::model::bso::CollectionName;
use tokenserver::node_data::{NodeData, NodeResult};

pub struct LocalData(pub Arc<dyn SyncStore>);

impl LocalData {
    fn uid(&self, _node: &str, uid: u64) -> NodeResult<Uid> {
        Uid::new(uid).ok_or_else(|| format!("invalid uid {uid}"))
    }
}

fn collection(name: &str) -> NodeResult<CollectionName> {
    CollectionName::parse(name).ok_or_else(|| format!("invalid collection name {name:?}"))
}

fn failed(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[async_trait::async_trait]
impl NodeData for LocalData {
    async fn state(&self, node: &str, uid: u64) -> NodeResult<UserState> {
        let uid = self.uid(node, uid)?;
        self.0.user_state(uid).await.map_err(failed)
    }

    async fn records(
        &self,
        node: &str,
        uid: u64,
        coll: &str,
        after: &str,
        limit: usize,
    ) -> NodeResult<Vec<Record>> {
        let uid = self.uid(node, uid)?;
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        self.0
            .export_records(uid, &collection(coll)?, after, limit)
            .await
            .map_err(failed)
    }

    async fn import(&self, node: &str, uid: u64, coll: &str, import: Import) -> NodeResult<()> {
        let uid = self.uid(node, uid)?;
        self.0
            .import_records(uid, &collection(coll)?, import)
            .await
            .map_err(failed)
    }

    async fn drop_collection(&self, node: &str, uid: u64, coll: &str) -> NodeResult<()> {
        let uid = self.uid(node, uid)?;
        self.0
            .drop_collection(uid, &collection(coll)?)
            .await
            .map_err(failed)
    }

    async fn finish(&self, node: &str, uid: u64, modified: i64) -> NodeResult<()> {
        let uid = self.uid(node, uid)?;
        self.0.finish_import(uid, modified).await.map_err(failed)
    }

    async fn fence(&self, node: &str, uid: u64, seconds: u64) -> NodeResult<()> {
        let uid = self.uid(node, uid)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(failed)?
            .as_secs();
        self.0
            .fence_user(uid, now.saturating_add(seconds))
            .await
            .map_err(failed)
    }

    async fn serve(&self, node: &str, uid: u64) -> NodeResult<()> {
        let uid = self.uid(node, uid)?;
        self.0.serve_user(uid).await.map_err(failed)
    }

    async fn evict(&self, node: &str, uid: u64) -> NodeResult<()> {
        let uid = self.uid(node, uid)?;
        self.0.evict_user(uid).await.map_err(failed)
    }
}
