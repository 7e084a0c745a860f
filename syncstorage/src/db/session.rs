//! The seam between the shared transaction scripts ([`super::store`]) and a
//! backend: a backend opens transactions ([`Connector`]) and runs its own SQL
//! for each small step inside one ([`Session`]). Nothing here knows a
//! protocol rule; nothing in the scripts knows a dialect.

use async_trait::async_trait;
use sync_common::db_url::Backend;

use super::{DbResult, Purged, Uid};
use crate::model::bso::{Bso, BsoId};
use crate::model::paging::BsoQuery;
use crate::model::timestamp::SyncTimestamp;

/// Opens transactions on one database.
#[async_trait]
pub trait Connector: Send + Sync {
    fn backend(&self) -> Backend;

    /// A read-only transaction: one consistent snapshot for all its steps.
    async fn read(&self) -> DbResult<Box<dyn Session>>;

    /// A write transaction. With a uid, it holds that user's write lock
    /// from the start, so a user's writes (from any connection or process)
    /// run one after another and each sees the last one's timestamp.
    async fn write(&self, uid: Option<Uid>) -> DbResult<Box<dyn Session>>;

    /// Succeeds when the database answers.
    async fn check(&self) -> DbResult<()>;

    /// The name of the pool a read (`write` false) or write transaction
    /// comes from, as the pool metrics name it.
    fn pool(&self, write: bool) -> &'static str;

    /// Whether a read may stay open while its client takes a page: not
    /// when readers share the only connection with the writer.
    fn streams(&self) -> bool {
        true
    }
}

/// A per-collection aggregate over live BSOs.
#[derive(Debug, Clone, Copy)]
pub enum Aggregate {
    Count,
    Bytes,
}

/// An open batch's running totals.
#[derive(Debug, Clone, Copy)]
pub struct BatchTotals {
    pub records: i64,
    pub bytes: i64,
}

/// Which of a page's rows to read, and how much of each.
#[derive(Debug, Clone, Copy)]
pub struct PageRows {
    pub count: u64,
    /// Rows without their payloads, when false.
    pub payloads: bool,
}

/// Where a page's rows go as they are read.
#[async_trait]
pub trait RowSink: Send {
    /// Takes the next row; false to stop reading.
    async fn take(&mut self, bso: Bso) -> bool;
}

/// A page's first rows summed up, before any is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageSummary {
    pub rows: u64,
    pub payload_bytes: u64,
    pub largest_payload: u64,
}

/// The steps of a transaction, each one or a few statements of the
/// backend's dialect. Dropping a session without `commit` rolls it back.
#[async_trait]
pub trait Session: Send {
    async fn commit(self: Box<Self>) -> DbResult<()>;
    async fn rollback(self: Box<Self>) -> DbResult<()>;
    /// A write that changes nothing: fails where writes cannot happen (a
    /// read-only database, a lock held elsewhere).
    async fn probe_write(&mut self) -> DbResult<()>;

    // Collections and timestamps.
    async fn collection_id(&mut self, name: &str) -> DbResult<Option<i64>>;
    /// The id of `name`, created if absent (visible to others at commit).
    async fn create_collection(&mut self, name: &str) -> DbResult<i64>;
    async fn user_timestamp(&mut self, uid: Uid) -> DbResult<SyncTimestamp>;
    async fn collection_timestamp(&mut self, uid: Uid, coll: i64) -> DbResult<SyncTimestamp>;
    async fn collection_timestamps(&mut self, uid: Uid) -> DbResult<Vec<(String, i64)>>;
    /// Records a write at `ts` on the user and, if given, the collection.
    async fn touch(&mut self, uid: Uid, coll: Option<i64>, ts: SyncTimestamp) -> DbResult<()>;

    // Usage.
    async fn per_collection(
        &mut self,
        uid: Uid,
        now: SyncTimestamp,
        what: Aggregate,
    ) -> DbResult<Vec<(String, i64)>>;
    async fn user_usage(&mut self, uid: Uid, now: SyncTimestamp) -> DbResult<u64>;
    /// Bytes staged in the user's live batches other than `except`.
    async fn staged_bytes(&mut self, uid: Uid, now: SyncTimestamp, except: &str) -> DbResult<i64>;

    // BSOs.
    /// Reads the query's live rows in its order, after its offset, at most
    /// `rows.count` of them, into `sink` until it refuses one.
    async fn stream_page(
        &mut self,
        uid: Uid,
        coll: i64,
        query: &BsoQuery,
        now: SyncTimestamp,
        rows: PageRows,
        sink: &mut dyn RowSink,
    ) -> DbResult<()>;
    /// The first `count` such rows summed up.
    async fn page_summary(
        &mut self,
        uid: Uid,
        coll: i64,
        query: &BsoQuery,
        now: SyncTimestamp,
        count: u64,
    ) -> DbResult<PageSummary>;
    /// The such row at `position` (from 0), without its payload.
    async fn page_row_at(
        &mut self,
        uid: Uid,
        coll: i64,
        query: &BsoQuery,
        now: SyncTimestamp,
        position: u64,
    ) -> DbResult<Option<Bso>>;
    async fn live_bso(
        &mut self,
        uid: Uid,
        coll: i64,
        id: &str,
        now: SyncTimestamp,
    ) -> DbResult<Option<Bso>>;
    /// Stored rows, expired or not, among `ids`.
    async fn stored_bsos(&mut self, uid: Uid, coll: i64, ids: &[&str]) -> DbResult<Vec<Bso>>;
    /// Inserts or replaces `rows` (distinct ids).
    async fn upsert_bsos(&mut self, uid: Uid, coll: i64, rows: &[Bso]) -> DbResult<()>;
    async fn delete_bsos(&mut self, uid: Uid, coll: i64, ids: &[BsoId]) -> DbResult<()>;
    /// The collection's BSOs, timestamp and batches.
    async fn delete_collection(&mut self, uid: Uid, coll: i64) -> DbResult<()>;
    /// Everything the user stores; with `forget`, their last-write time too.
    async fn delete_user(&mut self, uid: Uid, forget: bool) -> DbResult<()>;

    // Batches.
    async fn insert_batch(
        &mut self,
        id: &str,
        uid: Uid,
        coll: i64,
        expiry: SyncTimestamp,
        totals: BatchTotals,
    ) -> DbResult<()>;
    /// The live batch `id` of this user and collection.
    async fn find_batch(
        &mut self,
        id: &str,
        uid: Uid,
        coll: i64,
        now: SyncTimestamp,
    ) -> DbResult<Option<BatchTotals>>;
    async fn update_batch(&mut self, id: &str, totals: BatchTotals) -> DbResult<()>;
    /// The user's batch ids, newest first.
    async fn batch_ids(&mut self, uid: Uid) -> DbResult<Vec<String>>;
    /// Deletes batches and their staged items.
    async fn delete_batches(&mut self, ids: &[String]) -> DbResult<()>;
    /// Appends staged items (JSON) with sequence numbers from `first_seq`.
    async fn stage(&mut self, batch: &str, first_seq: i64, items: &[String]) -> DbResult<()>;
    /// The staged items in upload order.
    async fn staged(&mut self, batch: &str) -> DbResult<Vec<String>>;

    // Housekeeping.
    /// Deletes up to `limit` expired BSOs and up to `limit` expired batches.
    async fn purge_expired(&mut self, now: SyncTimestamp, limit: i64) -> DbResult<Purged>;
    /// The largest uid with anything stored.
    async fn highest_uid(&mut self) -> DbResult<Option<i64>>;

    // Migration (ADR 0013); fences in unix seconds.
    /// Refuses the user's writes until `until`.
    async fn fence(&mut self, uid: Uid, until: i64) -> DbResult<()>;
    async fn fenced_until(&mut self, uid: Uid) -> DbResult<Option<i64>>;
    async fn unfence(&mut self, uid: Uid) -> DbResult<()>;
    /// Serves `uid`'s tokens again (it moved back here).
    async fn lift_revocation(&mut self, uid: Uid) -> DbResult<()>;
    /// Up to `limit` live rows of the collection with ids after `after`,
    /// in id order.
    async fn records_after(
        &mut self,
        uid: Uid,
        coll: i64,
        after: &str,
        limit: i64,
        now: SyncTimestamp,
    ) -> DbResult<Vec<Bso>>;

    // Revocations (ADR 0012); times in unix seconds.
    /// Refuses every token of `uids` until `expires` at least.
    async fn revoke_uids(&mut self, uids: &[i64], expires: i64) -> DbResult<()>;
    /// Raises `node`'s epoch to `epoch` (never lowers it).
    async fn raise_epoch(&mut self, node: &str, epoch: i64) -> DbResult<()>;
    /// Forgets revoked uids whose tokens have all expired by `now`.
    async fn forget_revoked(&mut self, now: i64) -> DbResult<()>;
    /// The uids refused at `now`, and every node's epoch.
    async fn revocations(&mut self, now: i64) -> DbResult<(Vec<i64>, Vec<(String, i64)>)>;
}

/// What one of a dialect's purge statements removes.
#[derive(Debug, Clone, Copy)]
pub enum Purge {
    Records,
    BatchItems,
    Batches,
}
