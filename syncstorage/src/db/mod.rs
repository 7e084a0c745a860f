//! Storage behind one trait. Each method is one protocol operation and one
//! transaction; the protocol's rules (timestamps, merging, preconditions,
//! paging) live in [`crate::model`] and every backend calls them, so backends
//! differ only in SQL and in how they classify driver errors.

use std::sync::Arc;

use async_trait::async_trait;
use sync_common::db_url::{Backend, DatabaseUrl};
use sync_common::migration::{Import, Record, UserState};
use sync_common::revocation::Notice;

use crate::model::bso::{Bso, BsoId, BsoInput, CollectionName};
use crate::model::paging::BsoQuery;
use crate::model::precondition::{Precondition, Unmet};
use crate::model::revocation::Revoked;
use crate::model::timestamp::SyncTimestamp;

mod detached;
#[cfg(feature = "mysql")]
mod mysql;
mod page;
#[cfg(feature = "postgres")]
mod postgres;
mod session;
mod sql_session;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;

pub use page::{Page, Rows};

/// A storage user id (the `uid` of the token and the URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uid(i64);

impl Uid {
    /// Uids are stored as signed 64-bit integers; larger values are refused.
    pub fn new(uid: u64) -> Option<Self> {
        i64::try_from(uid).ok().map(Self)
    }

    pub fn as_db(self) -> i64 {
        self.0
    }
}

/// Open batches a user may have at once; opening one more forgets the
/// oldest. Firefox keeps one per collection it is uploading.
pub const MAX_OPEN_BATCHES_PER_USER: i64 = 32;

/// A batch id as handed to clients: opaque and URL-safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchId(pub String);

/// A value read together with the last-modified time of the resource it
/// came from (sent as `X-Last-Modified`).
#[derive(Debug, Clone)]
pub struct Timed<T> {
    pub last_modified: SyncTimestamp,
    pub value: T,
}

/// The outcome of a write.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    /// The write's timestamp (or, for a no-op delete, the current one).
    pub modified: SyncTimestamp,
    /// Bytes the user stores after the write, when quotas are on.
    pub usage: Option<u64>,
}

/// What a store enforces itself, inside its transactions.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Per-user quota in payload bytes; `None` disables quotas.
    pub quota_bytes: Option<u64>,
    /// Most records in one batch.
    pub max_total_records: u64,
    /// Most payload bytes in one batch.
    pub max_total_bytes: u64,
    /// How long an uncommitted batch lives.
    pub batch_ttl_seconds: u64,
    /// How long a write waits for a busy database before answering 409.
    pub busy_timeout_ms: u64,
    /// Connections for readers (writers are serialised per database).
    pub max_connections: u32,
}

/// A storage failure, free of HTTP: the API maps each to its status.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("not modified")]
    NotModified(SyncTimestamp),
    #[error("precondition failed")]
    PreconditionFailed(SyncTimestamp),
    #[error("a concurrent write holds the user's data")]
    Conflict,
    #[error("over quota")]
    QuotaExceeded,
    #[error("unknown, expired or foreign batch")]
    BatchNotFound,
    #[error("the batch is over its size limits")]
    BatchTooLarge,
    /// The user is moving to another node (ADR 0013): writes wait.
    #[error("the user's data is moving to another node")]
    Fenced,
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("database error: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<Unmet> for DbError {
    fn from(unmet: Unmet) -> Self {
        match unmet {
            Unmet::NotModified(t) => DbError::NotModified(t),
            Unmet::Modified(t) => DbError::PreconditionFailed(t),
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// What a purge removed, by kind of row.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub records: u64,
    pub batch_items: u64,
    pub batches: u64,
}

impl Purged {
    /// Every row removed.
    pub fn rows(&self) -> u64 {
        self.records + self.batch_items + self.batches
    }

    pub(crate) fn add(&mut self, kind: session::Purge, rows: u64) {
        match kind {
            session::Purge::Records => self.records += rows,
            session::Purge::BatchItems => self.batch_items += rows,
            session::Purge::Batches => self.batches += rows,
        }
    }
}

impl std::ops::AddAssign for Purged {
    fn add_assign(&mut self, other: Purged) {
        self.records += other.records;
        self.batch_items += other.batch_items;
        self.batches += other.batches;
    }
}

/// Name → last-modified, count or byte size, per collection.
pub type PerCollection<T> = Vec<(String, T)>;

/// The storage operations of SyncStorage 1.5. Every method checks `pre`
/// against the resource it targets before doing anything else.
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// Which backend this is (for logs and heartbeats).
    fn backend(&self) -> Backend;

    /// Succeeds when the database answers.
    async fn check(&self) -> DbResult<()>;

    /// Last-modified time per collection; resource: the whole storage.
    async fn collection_timestamps(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<PerCollection<SyncTimestamp>>>;

    /// Live BSO count per collection; resource: the whole storage.
    async fn collection_counts(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<PerCollection<u64>>>;

    /// Live payload bytes per collection; resource: the whole storage.
    async fn collection_usage(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<PerCollection<u64>>>;

    /// Live payload bytes in all collections; resource: the whole storage.
    async fn storage_usage(&self, uid: Uid, pre: Precondition) -> DbResult<Timed<u64>>;

    /// A page of a collection; resource: the collection (0 if absent).
    async fn get_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        query: &BsoQuery,
        pre: Precondition,
    ) -> DbResult<Timed<Page>>;

    /// One live BSO, or `NotFound`; resource: the BSO.
    async fn get_bso(
        &self,
        uid: Uid,
        coll: &CollectionName,
        id: &BsoId,
        pre: Precondition,
    ) -> DbResult<Bso>;

    /// Writes BSOs with one new timestamp; resource: the collection.
    async fn post_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<Written>;

    /// Writes one BSO; resource: that BSO.
    async fn put_bso(
        &self,
        uid: Uid,
        coll: &CollectionName,
        write: BsoInput,
        pre: Precondition,
    ) -> DbResult<Written>;

    /// Deletes one live BSO, or `NotFound`; resource: the BSO.
    async fn delete_bso(
        &self,
        uid: Uid,
        coll: &CollectionName,
        id: &BsoId,
        pre: Precondition,
    ) -> DbResult<Written>;

    /// Deletes the listed BSOs; resource: the collection.
    async fn delete_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        ids: &[BsoId],
        pre: Precondition,
    ) -> DbResult<Written>;

    /// Deletes a collection and its batches; resource: the collection.
    async fn delete_collection(
        &self,
        uid: Uid,
        coll: &CollectionName,
        pre: Precondition,
    ) -> DbResult<Written>;

    /// Deletes everything the user stores; resource: the whole storage.
    async fn delete_storage(&self, uid: Uid, pre: Precondition) -> DbResult<Written>;

    /// Opens a batch holding `writes`; resource: the collection.
    async fn create_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<Timed<BatchId>>;

    /// Adds `writes` to an open batch; resource: the collection.
    async fn append_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        batch: &BatchId,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<SyncTimestamp>;

    /// Applies a batch plus `writes` atomically with one timestamp and
    /// closes it; resource: the collection.
    async fn commit_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        batch: &BatchId,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<Written>;

    /// Removes up to `max_rows` expired BSOs and expired batches; returns how
    /// many rows went.
    async fn purge_expired(&self, max_rows: u64) -> DbResult<Purged>;

    /// Deletes everything about `uid`, its last-write time included: for
    /// purges of uids that are never served again.
    async fn forget_user(&self, uid: Uid) -> DbResult<()>;

    /// The largest uid with anything stored, if any: a tokenserver must never
    /// hand it out to someone else (see the all-in-one's start).
    async fn highest_uid(&self) -> DbResult<Option<u64>>;

    // Migration (ADR 0013): the whole of a user's data, as it is stored.
    /// The user's timestamps: the storage's and each collection's.
    async fn user_state(&self, uid: Uid) -> DbResult<UserState>;

    /// Up to `limit` live records of `coll` with ids after `after`, in id
    /// order (an unknown collection has none).
    async fn export_records(
        &self,
        uid: Uid,
        coll: &CollectionName,
        after: &str,
        limit: u64,
    ) -> DbResult<Vec<Record>>;

    /// Stores records as they are (timestamps and expiry included) and sets
    /// the collection's timestamp; fences do not apply.
    async fn import_records(&self, uid: Uid, coll: &CollectionName, import: Import)
        -> DbResult<()>;

    /// Drops a collection without touching any timestamp.
    async fn drop_collection(&self, uid: Uid, coll: &CollectionName) -> DbResult<()>;

    /// Ends an import: sets the storage's timestamp.
    async fn finish_import(&self, uid: Uid, modified: i64) -> DbResult<()>;

    /// Serves the user here from now on (they moved here): lifts any fence
    /// or revocation of the uid.
    async fn serve_user(&self, uid: Uid) -> DbResult<()>;

    /// Refuses the user's writes until `until` (unix seconds). Waits for
    /// a write in progress.
    async fn fence_user(&self, uid: Uid, until: u64) -> DbResult<()>;

    /// Deletes everything the user stores, keeping the fence.
    async fn evict_user(&self, uid: Uid) -> DbResult<()>;

    /// Records a tokenserver's notice (ADR 0012), and forgets revoked uids
    /// whose tokens have all expired by `now` (unix seconds).
    async fn record_revocations(&self, notice: &Notice, now: u64) -> DbResult<()>;

    /// What this node refuses at `now` (unix seconds).
    async fn revocations(&self, now: u64) -> DbResult<Revoked>;
}

/// Opens the database named by `url` (creating and migrating it as needed).
/// This is the only place that chooses a backend.
pub async fn open(url: &DatabaseUrl, settings: StoreSettings) -> DbResult<Arc<dyn SyncStore>> {
    let backend = url.backend().map_err(|e| DbError::Other(e.into()))?;
    let db: Box<dyn session::Connector> = match backend {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => Box::new(sqlite::SqliteDb::open(url, &settings).await?),
        #[cfg(feature = "postgres")]
        Backend::Postgres => Box::new(postgres::PostgresDb::open(url, &settings).await?),
        #[cfg(feature = "mysql")]
        Backend::MySql => Box::new(mysql::MySqlDb::open(url, &settings).await?),
        #[allow(unreachable_patterns)]
        other => return Err(DbError::Other(other.not_built(url).into())),
    };
    let store = Arc::new(store::SqlStore::new(db, settings));
    Ok(Arc::new(detached::Detached::new(store)))
}
