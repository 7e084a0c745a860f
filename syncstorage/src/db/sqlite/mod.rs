//! The embedded SQLite backend: WAL mode, one writer connection (SQLite has
//! one writer anyway; queuing in the pool beats spinning on SQLITE_BUSY) and
//! a pool of readers that each see a consistent snapshot.

mod batch;
mod read;
mod write;

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnection, SqlitePool, SqlitePoolOptions};
use sqlx::{Sqlite, Transaction};
use sync_common::db_url::DatabaseUrl;
use sync_common::sqlite::{self, Failure};

use async_trait::async_trait;
use sync_common::db_url::Backend;

use super::{
    BatchId, DbError, DbResult, PerCollection, StoreSettings, SyncStore, Timed, Uid, Written,
};
use crate::model::bso::{Bso, BsoId, BsoInput, CollectionName};
use crate::model::paging::{BsoQuery, Page};
use crate::model::precondition::Precondition;
use crate::model::timestamp::SyncTimestamp;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// SyncStorage on an SQLite file.
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    settings: StoreSettings,
    /// Collection name → id, for committed rows only (ids never change).
    collection_ids: RwLock<HashMap<String, i64>>,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn open(url: &DatabaseUrl, settings: StoreSettings) -> DbResult<Self> {
        let busy_timeout = Duration::from_millis(settings.busy_timeout_ms);
        let (options, in_memory) =
            sqlite::connect_options(url, busy_timeout).map_err(|e| DbError::Other(e.into()))?;
        let options = options.foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(classify)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| DbError::Other(Box::new(e)))?;
        // An in-memory database exists once per connection: share the writer.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(settings.max_connections.max(1))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await
                .map_err(classify)?
        };
        Ok(Self {
            writer,
            reader,
            settings,
            collection_ids: RwLock::new(HashMap::new()),
        })
    }

    /// A write transaction that holds SQLite's write lock from the start,
    /// so it never has to upgrade (and fail) half-way.
    async fn begin_write(&self) -> DbResult<Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(classify)
    }

    /// A read transaction: one snapshot for all its queries.
    async fn begin_read(&self) -> DbResult<Transaction<'static, Sqlite>> {
        self.reader.begin().await.map_err(classify)
    }

    fn cached_collection_id(&self, name: &str) -> Option<i64> {
        self.collection_ids
            .read()
            .ok()
            .and_then(|ids| ids.get(name).copied())
    }

    fn remember_collection_id(&self, name: &str, id: i64) {
        if let Ok(mut ids) = self.collection_ids.write() {
            ids.insert(name.to_owned(), id);
        }
    }

    /// The id of an existing collection.
    async fn collection_id(
        &self,
        conn: &mut SqliteConnection,
        coll: &CollectionName,
    ) -> DbResult<Option<i64>> {
        if let Some(id) = self.cached_collection_id(coll.as_str()) {
            return Ok(Some(id));
        }
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM collections WHERE name = ?")
            .bind(coll.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(classify)?;
        if let Some(id) = id {
            self.remember_collection_id(coll.as_str(), id);
        }
        Ok(id)
    }

    /// The id of a collection, created inside the caller's write transaction
    /// if new (and cached only once committed, by a later lookup).
    async fn collection_id_for_write(
        &self,
        conn: &mut SqliteConnection,
        coll: &CollectionName,
    ) -> DbResult<i64> {
        if let Some(id) = self.collection_id(conn, coll).await? {
            return Ok(id);
        }
        sqlx::query_scalar(
            "INSERT INTO collections (id, name) \
             SELECT MAX(100, COALESCE(MAX(id), 0)) + 1, ? FROM collections \
             RETURNING id",
        )
        .bind(coll.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(classify)
    }

    /// Payload bytes the user stores now, when quotas are on.
    async fn usage_if_quota(
        &self,
        conn: &mut SqliteConnection,
        uid: Uid,
        now: SyncTimestamp,
    ) -> DbResult<Option<u64>> {
        if self.settings.quota_bytes.is_none() {
            return Ok(None);
        }
        Ok(Some(user_usage(conn, uid, now).await?))
    }

    /// Refuses a write when the user is already at or over quota (one write
    /// may cross the line, as in Mozilla's server). Bytes staged in open
    /// batches count too, except those of `committing`, which are about to
    /// become stored rows; otherwise batches would be a way around the quota.
    async fn check_quota(
        &self,
        conn: &mut SqliteConnection,
        uid: Uid,
        now: SyncTimestamp,
        committing: Option<&BatchId>,
    ) -> DbResult<()> {
        let Some(quota) = self.settings.quota_bytes else {
            return Ok(());
        };
        let stored = user_usage(conn, uid, now).await?;
        let staged: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(bytes), 0) FROM batches \
             WHERE userid = ? AND expiry > ? AND id <> ?",
        )
        .bind(uid.as_db())
        .bind(now.as_db())
        .bind(committing.map_or("", |b| b.0.as_str()))
        .fetch_one(conn)
        .await
        .map_err(classify)?;
        if stored.saturating_add(u64::try_from(staged).unwrap_or(0)) >= quota {
            return Err(DbError::QuotaExceeded);
        }
        Ok(())
    }
}

/// Maps driver errors to storage outcomes: a busy or locked database is a
/// write conflict (409); a pool timeout, I/O failure or full disk is an
/// outage (503).
fn classify(err: sqlx::Error) -> DbError {
    match sqlite::failure(&err) {
        Failure::Busy => DbError::Conflict,
        Failure::Outage => DbError::Unavailable(Box::new(err)),
        Failure::Other => DbError::Other(Box::new(err)),
    }
}

/// Live payload bytes of a user.
async fn user_usage(conn: &mut SqliteConnection, uid: Uid, now: SyncTimestamp) -> DbResult<u64> {
    let bytes: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(payload_size), 0) FROM bsos WHERE userid = ? AND expiry > ?",
    )
    .bind(uid.as_db())
    .bind(now.as_db())
    .fetch_one(conn)
    .await
    .map_err(classify)?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

/// The user's last write time (0 if they never wrote).
async fn user_timestamp(conn: &mut SqliteConnection, uid: Uid) -> DbResult<SyncTimestamp> {
    let ts: Option<i64> =
        sqlx::query_scalar("SELECT modified FROM user_timestamps WHERE userid = ?")
            .bind(uid.as_db())
            .fetch_optional(conn)
            .await
            .map_err(classify)?;
    Ok(ts.map_or(SyncTimestamp::ZERO, SyncTimestamp::from_db))
}

/// A collection's last-modified time (0 if it does not exist).
async fn collection_timestamp(
    conn: &mut SqliteConnection,
    uid: Uid,
    collection: Option<i64>,
) -> DbResult<SyncTimestamp> {
    let Some(collection) = collection else {
        return Ok(SyncTimestamp::ZERO);
    };
    let ts: Option<i64> = sqlx::query_scalar(
        "SELECT modified FROM user_collections WHERE userid = ? AND collection = ?",
    )
    .bind(uid.as_db())
    .bind(collection)
    .fetch_optional(conn)
    .await
    .map_err(classify)?;
    Ok(ts.map_or(SyncTimestamp::ZERO, SyncTimestamp::from_db))
}

/// Records a write at `ts` on the user (and on the collection, if given).
async fn touch(
    conn: &mut SqliteConnection,
    uid: Uid,
    collection: Option<i64>,
    ts: SyncTimestamp,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO user_timestamps (userid, modified) VALUES (?, ?) \
         ON CONFLICT (userid) DO UPDATE SET modified = excluded.modified",
    )
    .bind(uid.as_db())
    .bind(ts.as_db())
    .execute(&mut *conn)
    .await
    .map_err(classify)?;
    if let Some(collection) = collection {
        sqlx::query(
            "INSERT INTO user_collections (userid, collection, modified) VALUES (?, ?, ?) \
             ON CONFLICT (userid, collection) DO UPDATE SET modified = excluded.modified",
        )
        .bind(uid.as_db())
        .bind(collection)
        .bind(ts.as_db())
        .execute(&mut *conn)
        .await
        .map_err(classify)?;
    }
    Ok(())
}

#[async_trait]
impl SyncStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn check(&self) -> DbResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn collection_timestamps(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<PerCollection<SyncTimestamp>>> {
        self.read_collection_timestamps(uid, pre).await
    }

    async fn collection_counts(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<PerCollection<u64>>> {
        self.read_per_collection(uid, pre, "COUNT(*)").await
    }

    async fn collection_usage(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<PerCollection<u64>>> {
        self.read_per_collection(uid, pre, "SUM(b.payload_size)")
            .await
    }

    async fn storage_usage(&self, uid: Uid, pre: Precondition) -> DbResult<Timed<u64>> {
        self.read_storage_usage(uid, pre).await
    }

    async fn get_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        query: &BsoQuery,
        pre: Precondition,
    ) -> DbResult<Timed<Page>> {
        self.read_bsos(uid, coll, query, pre).await
    }

    async fn get_bso(
        &self,
        uid: Uid,
        coll: &CollectionName,
        id: &BsoId,
        pre: Precondition,
    ) -> DbResult<Bso> {
        self.read_bso(uid, coll, id, pre).await
    }

    async fn post_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<Written> {
        self.write_bsos(uid, coll, writes, pre, None).await
    }

    async fn put_bso(
        &self,
        uid: Uid,
        coll: &CollectionName,
        write: BsoInput,
        pre: Precondition,
    ) -> DbResult<Written> {
        let id = write.id.clone();
        self.write_bsos(uid, coll, vec![write], pre, Some(&id))
            .await
    }

    async fn delete_bso(
        &self,
        uid: Uid,
        coll: &CollectionName,
        id: &BsoId,
        pre: Precondition,
    ) -> DbResult<Written> {
        self.remove_bso(uid, coll, id, pre).await
    }

    async fn delete_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        ids: &[BsoId],
        pre: Precondition,
    ) -> DbResult<Written> {
        self.remove_bsos(uid, coll, ids, pre).await
    }

    async fn delete_collection(
        &self,
        uid: Uid,
        coll: &CollectionName,
        pre: Precondition,
    ) -> DbResult<Written> {
        self.remove_collection(uid, coll, pre).await
    }

    async fn delete_storage(&self, uid: Uid, pre: Precondition) -> DbResult<Written> {
        self.remove_storage(uid, pre).await
    }

    async fn create_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<Timed<BatchId>> {
        self.open_batch(uid, coll, writes, pre).await
    }

    async fn append_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        batch: &BatchId,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<SyncTimestamp> {
        self.append_to_batch(uid, coll, batch, writes, pre).await
    }

    async fn commit_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        batch: &BatchId,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<Written> {
        self.commit_open_batch(uid, coll, batch, writes, pre).await
    }

    async fn purge_expired(&self, max_rows: u64) -> DbResult<u64> {
        self.purge(max_rows).await
    }

    async fn forget_user(&self, uid: Uid) -> DbResult<()> {
        self.forget(uid).await
    }

    async fn highest_uid(&self) -> DbResult<Option<u64>> {
        let uid: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(uid) FROM (SELECT MAX(userid) AS uid FROM user_timestamps \
             UNION ALL SELECT MAX(userid) FROM bsos UNION ALL SELECT MAX(userid) FROM batches)",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(classify)?;
        Ok(uid.and_then(|u| u64::try_from(u).ok()))
    }
}
