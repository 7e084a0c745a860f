//! Every storage operation on a task of its own, so it runs to its end
//! whatever the request does: a client that disconnects or a request that
//! hits its deadline drops only its wait for the answer, never a
//! transaction half-way (which would hand a connection back to the pool
//! inside a transaction and stop every later write).

use std::sync::Arc;

use async_trait::async_trait;
use sync_common::db_url::Backend;
use sync_common::migration::{Import, Record, UserState};
use sync_common::revocation::Notice;
use sync_common::telemetry::db::{Database, Outcome};

use super::{
    BatchId, DbError, DbResult, Page, PerCollection, Purged, SyncStore, Timed, Uid, Written,
};
use crate::model::bso::{Bso, BsoId, BsoInput, CollectionName};
use crate::model::paging::BsoQuery;
use crate::model::precondition::Precondition;
use crate::model::revocation::Revoked;
use crate::model::timestamp::SyncTimestamp;

/// A [`SyncStore`] whose operations cannot be cancelled once started.
pub struct Detached {
    store: Arc<dyn SyncStore>,
    telemetry: Database,
}

impl Detached {
    pub fn new(store: Arc<dyn SyncStore>) -> Self {
        let telemetry = Database::new("syncstorage", store.backend().name());
        Self { store, telemetry }
    }

    /// Runs `operation` (named `name` in traces and metrics) on the inner
    /// store, on its own task.
    async fn run<T, F, Fut>(&self, name: &'static str, operation: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn SyncStore>) -> Fut,
        Fut: std::future::Future<Output = DbResult<T>> + Send + 'static,
    {
        let work = operation(self.store.clone());
        self.telemetry
            .detached(name, work, outcome, |e| DbError::Other(Box::new(e)))
            .await
    }
}

/// What an operation's result says about the database.
fn outcome<T>(result: &DbResult<T>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(e) => match e {
            DbError::Unavailable(_) => Outcome::Unavailable,
            DbError::Other(_) => Outcome::Failed,
            DbError::NotFound
            | DbError::NotModified(_)
            | DbError::PreconditionFailed(_)
            | DbError::Conflict
            | DbError::QuotaExceeded
            | DbError::BatchNotFound
            | DbError::BatchTooLarge
            | DbError::Fenced => Outcome::Rejected,
        },
    }
}

#[async_trait]
impl SyncStore for Detached {
    fn backend(&self) -> Backend {
        self.store.backend()
    }

    async fn check(&self) -> DbResult<()> {
        self.run("check", |s| async move { s.check().await }).await
    }

    async fn collection_timestamps(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<PerCollection<SyncTimestamp>>> {
        self.run("collection_timestamps", |s| async move {
            s.collection_timestamps(uid, pre).await
        })
        .await
    }

    async fn collection_counts(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<PerCollection<u64>>> {
        self.run("collection_counts", |s| async move {
            s.collection_counts(uid, pre).await
        })
        .await
    }

    async fn collection_usage(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<PerCollection<u64>>> {
        self.run("collection_usage", |s| async move {
            s.collection_usage(uid, pre).await
        })
        .await
    }

    async fn storage_usage(&self, uid: Uid, pre: Precondition) -> DbResult<Timed<u64>> {
        self.run("storage_usage", |s| async move {
            s.storage_usage(uid, pre).await
        })
        .await
    }

    async fn get_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        query: &BsoQuery,
        pre: Precondition,
    ) -> DbResult<Timed<Page>> {
        let (coll, query) = (coll.clone(), query.clone());
        self.run("get_bsos", |s| async move {
            s.get_bsos(uid, &coll, &query, pre).await
        })
        .await
    }

    async fn get_bso(
        &self,
        uid: Uid,
        coll: &CollectionName,
        id: &BsoId,
        pre: Precondition,
    ) -> DbResult<Bso> {
        let (coll, id) = (coll.clone(), id.clone());
        self.run("get_bso", |s| async move {
            s.get_bso(uid, &coll, &id, pre).await
        })
        .await
    }

    async fn post_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<Written> {
        let coll = coll.clone();
        self.run("post_bsos", |s| async move {
            s.post_bsos(uid, &coll, writes, pre).await
        })
        .await
    }

    async fn put_bso(
        &self,
        uid: Uid,
        coll: &CollectionName,
        write: BsoInput,
        pre: Precondition,
    ) -> DbResult<Written> {
        let coll = coll.clone();
        self.run("put_bso", |s| async move {
            s.put_bso(uid, &coll, write, pre).await
        })
        .await
    }

    async fn delete_bso(
        &self,
        uid: Uid,
        coll: &CollectionName,
        id: &BsoId,
        pre: Precondition,
    ) -> DbResult<Written> {
        let (coll, id) = (coll.clone(), id.clone());
        self.run("delete_bso", |s| async move {
            s.delete_bso(uid, &coll, &id, pre).await
        })
        .await
    }

    async fn delete_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        ids: &[BsoId],
        pre: Precondition,
    ) -> DbResult<Written> {
        let (coll, ids) = (coll.clone(), ids.to_vec());
        self.run("delete_bsos", |s| async move {
            s.delete_bsos(uid, &coll, &ids, pre).await
        })
        .await
    }

    async fn delete_collection(
        &self,
        uid: Uid,
        coll: &CollectionName,
        pre: Precondition,
    ) -> DbResult<Written> {
        let coll = coll.clone();
        self.run("delete_collection", |s| async move {
            s.delete_collection(uid, &coll, pre).await
        })
        .await
    }

    async fn delete_storage(&self, uid: Uid, pre: Precondition) -> DbResult<Written> {
        self.run("delete_storage", |s| async move {
            s.delete_storage(uid, pre).await
        })
        .await
    }

    async fn create_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<Timed<BatchId>> {
        let coll = coll.clone();
        self.run("create_batch", |s| async move {
            s.create_batch(uid, &coll, writes, pre).await
        })
        .await
    }

    async fn append_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        batch: &BatchId,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<SyncTimestamp> {
        let (coll, batch) = (coll.clone(), batch.clone());
        self.run("append_batch", |s| async move {
            s.append_batch(uid, &coll, &batch, writes, pre).await
        })
        .await
    }

    async fn commit_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        batch: &BatchId,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<Written> {
        let (coll, batch) = (coll.clone(), batch.clone());
        self.run("commit_batch", |s| async move {
            s.commit_batch(uid, &coll, &batch, writes, pre).await
        })
        .await
    }

    async fn purge_expired(&self, max_rows: u64) -> DbResult<Purged> {
        self.run("purge_expired", |s| async move {
            s.purge_expired(max_rows).await
        })
        .await
    }

    async fn forget_user(&self, uid: Uid) -> DbResult<()> {
        self.run("forget_user", |s| async move { s.forget_user(uid).await })
            .await
    }

    async fn highest_uid(&self) -> DbResult<Option<u64>> {
        self.run("highest_uid", |s| async move { s.highest_uid().await })
            .await
    }

    async fn user_state(&self, uid: Uid) -> DbResult<UserState> {
        self.run("user_state", |s| async move { s.user_state(uid).await })
            .await
    }

    async fn export_records(
        &self,
        uid: Uid,
        coll: &CollectionName,
        after: &str,
        limit: u64,
    ) -> DbResult<Vec<Record>> {
        let (coll, after) = (coll.clone(), after.to_owned());
        self.run("export_records", |s| async move {
            s.export_records(uid, &coll, &after, limit).await
        })
        .await
    }

    async fn import_records(
        &self,
        uid: Uid,
        coll: &CollectionName,
        import: Import,
    ) -> DbResult<()> {
        let coll = coll.clone();
        self.run("import_records", |s| async move {
            s.import_records(uid, &coll, import).await
        })
        .await
    }

    async fn drop_collection(&self, uid: Uid, coll: &CollectionName) -> DbResult<()> {
        let coll = coll.clone();
        self.run("drop_collection", |s| async move {
            s.drop_collection(uid, &coll).await
        })
        .await
    }

    async fn finish_import(&self, uid: Uid, modified: i64) -> DbResult<()> {
        self.run("finish_import", |s| async move {
            s.finish_import(uid, modified).await
        })
        .await
    }

    async fn serve_user(&self, uid: Uid) -> DbResult<()> {
        self.run("serve_user", |s| async move { s.serve_user(uid).await })
            .await
    }

    async fn fence_user(&self, uid: Uid, until: u64) -> DbResult<()> {
        self.run(
            "fence_user",
            |s| async move { s.fence_user(uid, until).await },
        )
        .await
    }

    async fn evict_user(&self, uid: Uid) -> DbResult<()> {
        self.run("evict_user", |s| async move { s.evict_user(uid).await })
            .await
    }

    async fn record_revocations(&self, notice: &Notice, now: u64) -> DbResult<()> {
        let notice = notice.clone();
        self.run("record_revocations", |s| async move {
            s.record_revocations(&notice, now).await
        })
        .await
    }

    async fn revocations(&self, now: u64) -> DbResult<Revoked> {
        self.run("revocations", |s| async move { s.revocations(now).await })
            .await
    }
}
