//! The storage operations of SyncStorage 1.5, written once for every
//! backend: each is one transaction that checks its precondition, takes the
//! user's next timestamp and records it, in the order the protocol needs.
//! The backend supplies only the SQL of each step ([`Session`]).

use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;
use sync_common::db_url::Backend;
use sync_common::migration::{Import, Record, UserState, PAGE_BYTES};
use sync_common::revocation::Notice;
use sync_common::telemetry::db::wait_for_connection;
use tokio::sync::OwnedSemaphorePermit;

use super::page::{self, Page, Rows, Streams, WHOLE_PAGE_BYTES};
use super::session::{Aggregate, BatchTotals, Connector, PageRows, Session};
use super::{
    BatchId, DbError, DbResult, PerCollection, Purged, StoreSettings, SyncStore, Timed, Uid,
    Written, MAX_OPEN_BATCHES_PER_USER,
};
use crate::metrics;
use crate::model::bso::{apply, fold, parse_bso, Bso, BsoId, BsoInput, CollectionName, WriteTime};
use crate::model::paging::{BsoQuery, PageHead};
use crate::model::precondition::Precondition;
use crate::model::revocation::Revoked;
use crate::model::timestamp::SyncTimestamp;

/// Rows per statement when reading or writing many BSOs (bound-parameter
/// limits); bytes per statement keep MySQL packets well under their limit.
const ROWS_PER_STATEMENT: usize = 200;
const BYTES_PER_STATEMENT: usize = 4 * 1024 * 1024;

/// A [`SyncStore`] over any SQL backend.
pub struct SqlStore {
    db: Box<dyn Connector>,
    settings: StoreSettings,
    /// Collection name → id, for committed rows only (ids never change).
    collection_ids: RwLock<HashMap<String, i64>>,
    /// Large pages being streamed, each holding a read connection.
    streams: Streams,
}

impl SqlStore {
    pub fn new(db: Box<dyn Connector>, settings: StoreSettings) -> Self {
        Self {
            db,
            streams: Streams::new(settings.max_connections),
            settings,
            collection_ids: RwLock::new(HashMap::new()),
        }
    }

    /// The id of an existing collection (cached once seen committed).
    async fn collection_id(
        &self,
        s: &mut dyn Session,
        coll: &CollectionName,
    ) -> DbResult<Option<i64>> {
        let cached = self
            .collection_ids
            .read()
            .ok()
            .and_then(|ids| ids.get(coll.as_str()).copied());
        if cached.is_some() {
            return Ok(cached);
        }
        let id = s.collection_id(coll.as_str()).await?;
        if let (Some(id), Ok(mut ids)) = (id, self.collection_ids.write()) {
            ids.insert(coll.as_str().to_owned(), id);
        }
        Ok(id)
    }

    /// The id of a collection, created inside the caller's write transaction
    /// if new (and cached only by a later lookup, once committed).
    async fn collection_id_for_write(
        &self,
        s: &mut dyn Session,
        coll: &CollectionName,
    ) -> DbResult<i64> {
        match self.collection_id(s, coll).await? {
            Some(id) => Ok(id),
            None => s.create_collection(coll.as_str()).await,
        }
    }

    /// Payload bytes the user stores now, when quotas are on.
    async fn usage_if_quota(
        &self,
        s: &mut dyn Session,
        uid: Uid,
        now: SyncTimestamp,
    ) -> DbResult<Option<u64>> {
        if self.settings.quota_bytes.is_none() {
            return Ok(None);
        }
        Ok(Some(s.user_usage(uid, now).await?))
    }

    /// Refuses a write when the user is already at or over quota (one write
    /// may cross the line, as in Mozilla's server). Bytes staged in open
    /// batches count too, except those of `committing`, which are about to
    /// become stored rows; otherwise batches would be a way around the quota.
    async fn check_quota(
        &self,
        s: &mut dyn Session,
        uid: Uid,
        now: SyncTimestamp,
        committing: Option<&BatchId>,
    ) -> DbResult<()> {
        let Some(quota) = self.settings.quota_bytes else {
            return Ok(());
        };
        let stored = s.user_usage(uid, now).await?;
        let except = committing.map_or("", |b| b.0.as_str());
        let staged = s.staged_bytes(uid, now, except).await?;
        if stored.saturating_add(u64::try_from(staged).unwrap_or(0)) >= quota {
            return Err(DbError::QuotaExceeded);
        }
        Ok(())
    }

    /// A page of a collection, read in one snapshot: its rows summed up
    /// (and its last row's key) for the head and the size, then the rows,
    /// whole if small, else streamed with `stream` (or a free one). `None` when the page needs a stream and
    /// none is free.
    async fn read_page(
        &self,
        uid: Uid,
        coll: &CollectionName,
        query: &BsoQuery,
        pre: Precondition,
        stream: &mut Option<OwnedSemaphorePermit>,
    ) -> DbResult<Option<Timed<Page>>> {
        let mut s = self.read().await?;
        let collection = self.collection_id(&mut *s, coll).await?;
        let last_modified = match collection {
            Some(c) => s.collection_timestamp(uid, c).await?,
            None => SyncTimestamp::ZERO,
        };
        pre.check(last_modified)?;
        let timed = |value| {
            Ok(Some(Timed {
                last_modified,
                value,
            }))
        };
        let Some(collection) = collection else {
            return timed(Page::empty());
        };
        let now = SyncTimestamp::now();
        let summary = s
            .page_summary(uid, collection, query, now, PageHead::rows_to_count(query))
            .await?;
        let last = if PageHead::needs_last(query, summary.rows) {
            s.page_row_at(uid, collection, query, now, query.limit - 1)
                .await?
        } else {
            None
        };
        let head = PageHead::new(query, summary.rows, last.as_ref());
        if head.records == 0 {
            return timed(Page::empty());
        }
        let size = page::Size::of(query, head.records, summary);
        if size.bytes <= WHOLE_PAGE_BYTES || !self.db.streams() {
            let rows = PageRows {
                count: head.records,
                payloads: query.full,
            };
            let mut whole = Vec::new();
            s.stream_page(uid, collection, query, now, rows, &mut whole)
                .await?;
            let rows = Rows::Whole(whole.into_iter());
            return timed(Page { head, rows });
        }
        let Some(permit) = stream.take().or_else(|| self.streams.try_take()) else {
            return Ok(None);
        };
        let place = (uid, collection);
        let rows = page::stream(s, place, (query.clone(), now), size, permit);
        timed(Page { head, rows })
    }

    /// A read transaction (its wait for a connection measured).
    async fn read(&self) -> DbResult<Box<dyn Session>> {
        wait_for_connection(self.db.pool(false), self.db.read()).await
    }

    /// A write transaction holding the user's lock, unless the user is
    /// fenced (moving to another node). Under the lock, so a fence set by
    /// another process waits for this write, and every write after it sees
    /// the fence.
    async fn write(&self, uid: Uid) -> DbResult<Box<dyn Session>> {
        let mut s = self.begin_write(Some(uid)).await?;
        let now = to_i64(SyncTimestamp::now().as_seconds());
        if s.fenced_until(uid).await?.is_some_and(|until| until > now) {
            return Err(DbError::Fenced);
        }
        Ok(s)
    }

    /// A write transaction, holding `uid`'s lock if given.
    async fn begin_write(&self, uid: Option<Uid>) -> DbResult<Box<dyn Session>> {
        wait_for_connection(self.db.pool(true), self.db.write(uid)).await
    }

    /// The batch's totals with `writes` added, or `BatchTooLarge`.
    fn grown(&self, open: BatchTotals, writes: &[BsoInput]) -> DbResult<BatchTotals> {
        let added_bytes: usize = writes.iter().map(BsoInput::payload_len).sum();
        let records = open
            .records
            .saturating_add(i64::try_from(writes.len()).unwrap_or(i64::MAX));
        let bytes = open
            .bytes
            .saturating_add(i64::try_from(added_bytes).unwrap_or(i64::MAX));
        let too_many = u64::try_from(records).unwrap_or(u64::MAX) > self.settings.max_total_records;
        let too_big = u64::try_from(bytes).unwrap_or(u64::MAX) > self.settings.max_total_bytes;
        if too_many || too_big {
            return Err(DbError::BatchTooLarge);
        }
        Ok(BatchTotals { records, bytes })
    }

    /// POST (`item = None`, precondition on the collection) or PUT
    /// (`item = Some(id)`, precondition on that BSO).
    async fn write_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        writes: Vec<BsoInput>,
        pre: Precondition,
        item: Option<&BsoId>,
    ) -> DbResult<Written> {
        let mut s = self.write(uid).await?;
        let now = SyncTimestamp::now();
        let collection = self.collection_id_for_write(&mut *s, coll).await?;
        let resource = match item {
            None => s.collection_timestamp(uid, collection).await?,
            Some(id) => s
                .live_bso(uid, collection, id.as_str(), now)
                .await?
                .map_or(SyncTimestamp::ZERO, |b| b.modified),
        };
        pre.check(resource)?;
        self.check_quota(&mut *s, uid, now, None).await?;
        let modified = SyncTimestamp::next_write(now, s.user_timestamp(uid).await?);
        let at = WriteTime {
            modified,
            clock: now,
        };
        apply_writes(&mut *s, uid, collection, &writes, at).await?;
        s.touch(uid, Some(collection), modified).await?;
        let usage = self.usage_if_quota(&mut *s, uid, modified).await?;
        s.commit().await?;
        metrics::written(coll, &writes);
        Ok(Written { modified, usage })
    }

    /// Deletes `ids` (or the whole collection) and bumps the timestamps;
    /// nothing stored in the collection means nothing to delete or bump.
    async fn remove_from_collection(
        &self,
        uid: Uid,
        coll: &CollectionName,
        ids: Option<&[BsoId]>,
        pre: Precondition,
    ) -> DbResult<Written> {
        let mut s = self.write(uid).await?;
        let now = SyncTimestamp::now();
        let collection = self.collection_id(&mut *s, coll).await?;
        let last = match collection {
            Some(c) => s.collection_timestamp(uid, c).await?,
            None => SyncTimestamp::ZERO,
        };
        pre.check(last)?;
        let (Some(collection), false) = (collection, last == SyncTimestamp::ZERO) else {
            return Ok(Written {
                modified: s.user_timestamp(uid).await?,
                usage: None,
            });
        };
        let modified = SyncTimestamp::next_write(now, s.user_timestamp(uid).await?);
        match ids {
            Some(ids) => {
                s.delete_bsos(uid, collection, ids).await?;
                s.touch(uid, Some(collection), modified).await?;
            }
            None => {
                s.delete_collection(uid, collection).await?;
                s.touch(uid, None, modified).await?;
            }
        }
        s.commit().await?;
        Ok(Written {
            modified,
            usage: None,
        })
    }

    /// Checks the precondition on a live batch of this user and collection.
    async fn open_batch_for(
        &self,
        s: &mut dyn Session,
        uid: Uid,
        coll: &CollectionName,
        batch: &BatchId,
        pre: Precondition,
        now: SyncTimestamp,
    ) -> DbResult<(i64, BatchTotals, SyncTimestamp)> {
        let collection = self
            .collection_id(s, coll)
            .await?
            .ok_or(DbError::BatchNotFound)?;
        let open = s
            .find_batch(&batch.0, uid, collection, now)
            .await?
            .ok_or(DbError::BatchNotFound)?;
        let last_modified = s.collection_timestamp(uid, collection).await?;
        pre.check(last_modified)?;
        Ok((collection, open, last_modified))
    }
}

/// Merges `writes` into the stored rows (model rule) and upserts them.
async fn apply_writes(
    s: &mut dyn Session,
    uid: Uid,
    collection: i64,
    writes: &[BsoInput],
    at: WriteTime,
) -> DbResult<()> {
    for chunk in statement_chunks(writes, BsoInput::payload_len) {
        let needed: Vec<&str> = chunk
            .iter()
            .filter(|w| w.payload.is_keep() || w.sortindex.is_keep() || w.ttl.is_keep())
            .map(|w| w.id.as_str())
            .collect();
        let existing: HashMap<String, Bso> = if needed.is_empty() {
            HashMap::new()
        } else {
            let rows = s.stored_bsos(uid, collection, &needed).await?;
            rows.into_iter().map(|b| (b.id.clone(), b)).collect()
        };
        // One row per id, the last write winning (as one statement per
        // write would leave it).
        let mut rows: Vec<Bso> = Vec::with_capacity(chunk.len());
        let mut position = HashMap::new();
        for write in chunk {
            let row = apply(existing.get(write.id.as_str()), write, at);
            match position.get(write.id.as_str()) {
                Some(&i) => rows[i] = row,
                None => {
                    position.insert(write.id.as_str(), rows.len());
                    rows.push(row);
                }
            }
        }
        s.upsert_bsos(uid, collection, &rows).await?;
    }
    Ok(())
}

/// Splits rows into statements of bounded rows and payload bytes.
fn statement_chunks<T>(rows: &[T], payload_len: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        let len = payload_len(row);
        let full = i - start == ROWS_PER_STATEMENT || bytes + len > BYTES_PER_STATEMENT;
        if full && i > start {
            chunks.push(&rows[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += len;
    }
    if start < rows.len() {
        chunks.push(&rows[start..]);
    }
    chunks
}

fn staged_write(item: &str) -> DbResult<BsoInput> {
    let corrupt = || DbError::Other("a staged batch item is corrupt".into());
    let value: serde_json::Value = serde_json::from_str(item).map_err(|_| corrupt())?;
    let object = value.as_object().ok_or_else(corrupt)?;
    let id = object
        .get("id")
        .and_then(|v| v.as_str())
        .and_then(BsoId::parse)
        .ok_or_else(corrupt)?;
    parse_bso(object, id).map_err(|_| corrupt())
}

fn staged_items(writes: &[BsoInput]) -> Vec<String> {
    writes.iter().map(|w| w.to_json().to_string()).collect()
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn record_of(bso: Bso) -> Record {
    Record {
        id: bso.id,
        modified: bso.modified.as_db(),
        payload: bso.payload,
        sortindex: bso.sortindex,
        expiry: bso.expiry.as_db(),
    }
}

fn bso_of(record: Record) -> Bso {
    Bso {
        id: record.id,
        modified: SyncTimestamp::from_db(record.modified),
        payload: record.payload,
        sortindex: record.sortindex,
        expiry: SyncTimestamp::from_db(record.expiry),
    }
}

/// A time or epoch as SQL stores it (past i64::MAX: the largest).
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl SyncStore for SqlStore {
    fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Readers answer, and a write can start and run: a writer that cannot
    /// write (its lock held elsewhere, a read-only database, a connection
    /// stuck in a transaction) fails the heartbeat instead of every write.
    async fn check(&self) -> DbResult<()> {
        self.db.check().await?;
        let mut probe = self.begin_write(None).await?;
        probe.probe_write().await?;
        probe.rollback().await
    }

    async fn collection_timestamps(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<PerCollection<SyncTimestamp>>> {
        let mut s = self.read().await?;
        let last_modified = s.user_timestamp(uid).await?;
        pre.check(last_modified)?;
        let rows = s.collection_timestamps(uid).await?;
        let value = rows
            .into_iter()
            .map(|(name, ts)| (name, SyncTimestamp::from_db(ts)))
            .collect();
        Ok(Timed {
            last_modified,
            value,
        })
    }

    async fn collection_counts(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<PerCollection<u64>>> {
        self.per_collection(uid, pre, Aggregate::Count).await
    }

    async fn collection_usage(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<PerCollection<u64>>> {
        self.per_collection(uid, pre, Aggregate::Bytes).await
    }

    async fn storage_usage(&self, uid: Uid, pre: Precondition) -> DbResult<Timed<u64>> {
        let mut s = self.read().await?;
        let last_modified = s.user_timestamp(uid).await?;
        pre.check(last_modified)?;
        let value = s.user_usage(uid, SyncTimestamp::now()).await?;
        Ok(Timed {
            last_modified,
            value,
        })
    }

    async fn get_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        query: &BsoQuery,
        pre: Precondition,
    ) -> DbResult<Timed<Page>> {
        let mut stream = None;
        loop {
            if let Some(page) = self.read_page(uid, coll, query, pre, &mut stream).await? {
                return Ok(page);
            }
            // Waiting for a stream, the page holds no connection.
            stream = Some(self.streams.take().await?);
        }
    }

    async fn get_bso(
        &self,
        uid: Uid,
        coll: &CollectionName,
        id: &BsoId,
        pre: Precondition,
    ) -> DbResult<Bso> {
        let mut s = self.read().await?;
        let bso = match self.collection_id(&mut *s, coll).await? {
            Some(c) => {
                s.live_bso(uid, c, id.as_str(), SyncTimestamp::now())
                    .await?
            }
            None => None,
        };
        pre.check(bso.as_ref().map_or(SyncTimestamp::ZERO, |b| b.modified))?;
        bso.ok_or(DbError::NotFound)
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
        let mut s = self.write(uid).await?;
        let now = SyncTimestamp::now();
        let Some(collection) = self.collection_id(&mut *s, coll).await? else {
            pre.check(SyncTimestamp::ZERO)?;
            return Err(DbError::NotFound);
        };
        let existing = s.live_bso(uid, collection, id.as_str(), now).await?;
        pre.check(
            existing
                .as_ref()
                .map_or(SyncTimestamp::ZERO, |b| b.modified),
        )?;
        if existing.is_none() {
            return Err(DbError::NotFound);
        }
        let modified = SyncTimestamp::next_write(now, s.user_timestamp(uid).await?);
        s.delete_bsos(uid, collection, std::slice::from_ref(id))
            .await?;
        s.touch(uid, Some(collection), modified).await?;
        s.commit().await?;
        Ok(Written {
            modified,
            usage: None,
        })
    }

    async fn delete_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        ids: &[BsoId],
        pre: Precondition,
    ) -> DbResult<Written> {
        self.remove_from_collection(uid, coll, Some(ids), pre).await
    }

    async fn delete_collection(
        &self,
        uid: Uid,
        coll: &CollectionName,
        pre: Precondition,
    ) -> DbResult<Written> {
        self.remove_from_collection(uid, coll, None, pre).await
    }

    async fn delete_storage(&self, uid: Uid, pre: Precondition) -> DbResult<Written> {
        let mut s = self.write(uid).await?;
        let last = s.user_timestamp(uid).await?;
        pre.check(last)?;
        let modified = SyncTimestamp::next_write(SyncTimestamp::now(), last);
        s.delete_user(uid, false).await?;
        s.touch(uid, None, modified).await?;
        s.commit().await?;
        Ok(Written {
            modified,
            usage: None,
        })
    }

    async fn create_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<Timed<BatchId>> {
        let mut s = self.write(uid).await?;
        let now = SyncTimestamp::now();
        let collection = self.collection_id_for_write(&mut *s, coll).await?;
        let last_modified = s.collection_timestamp(uid, collection).await?;
        pre.check(last_modified)?;
        self.check_quota(&mut *s, uid, now, None).await?;
        let empty = BatchTotals {
            records: 0,
            bytes: 0,
        };
        let totals = self.grown(empty, &writes)?;
        let id = BatchId(hex::encode(rand::random::<[u8; 16]>()));
        let expiry = now.plus_seconds(self.settings.batch_ttl_seconds);
        s.insert_batch(&id.0, uid, collection, expiry, totals)
            .await?;
        s.stage(&id.0, 0, &staged_items(&writes)).await?;
        // Keep the newest batches only: a client appending to a forgotten
        // one gets "batch not found" and starts over, and staged data can
        // never pile up without bound.
        let ids = s.batch_ids(uid).await?;
        let keep = usize::try_from(MAX_OPEN_BATCHES_PER_USER).unwrap_or(usize::MAX);
        let oldest = ids.get(keep..).unwrap_or_default();
        if !oldest.is_empty() {
            s.delete_batches(oldest).await?;
        }
        s.commit().await?;
        metrics::batches("opened", 1);
        metrics::batches("discarded", oldest.len() as u64);
        Ok(Timed {
            last_modified,
            value: id,
        })
    }

    async fn append_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        batch: &BatchId,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<SyncTimestamp> {
        let mut s = self.write(uid).await?;
        let now = SyncTimestamp::now();
        let (_, open, last_modified) = self
            .open_batch_for(&mut *s, uid, coll, batch, pre, now)
            .await?;
        self.check_quota(&mut *s, uid, now, None).await?;
        let totals = self.grown(open, &writes)?;
        s.update_batch(&batch.0, totals).await?;
        s.stage(&batch.0, open.records, &staged_items(&writes))
            .await?;
        s.commit().await?;
        Ok(last_modified)
    }

    async fn commit_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        batch: &BatchId,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<Written> {
        let mut s = self.write(uid).await?;
        let now = SyncTimestamp::now();
        let (collection, open, _) = self
            .open_batch_for(&mut *s, uid, coll, batch, pre, now)
            .await?;
        self.check_quota(&mut *s, uid, now, Some(batch)).await?;
        self.grown(open, &writes)?;
        let staged = s.staged(&batch.0).await?;
        if i64::try_from(staged.len()).ok() != Some(open.records) {
            // Part of it is gone (a purge at its expiry): apply nothing.
            return Err(DbError::BatchNotFound);
        }
        let staged = staged
            .iter()
            .map(|item| staged_write(item))
            .collect::<DbResult<Vec<_>>>()?;
        let all = fold(staged.into_iter().chain(writes));
        let modified = SyncTimestamp::next_write(now, s.user_timestamp(uid).await?);
        let at = WriteTime {
            modified,
            clock: now,
        };
        apply_writes(&mut *s, uid, collection, &all, at).await?;
        s.touch(uid, Some(collection), modified).await?;
        s.delete_batches(std::slice::from_ref(&batch.0)).await?;
        let usage = self.usage_if_quota(&mut *s, uid, modified).await?;
        s.commit().await?;
        metrics::written(coll, &all);
        metrics::batches("committed", 1);
        Ok(Written { modified, usage })
    }

    async fn purge_expired(&self, max_rows: u64) -> DbResult<Purged> {
        let mut s = self.begin_write(None).await?;
        let limit = i64::try_from(max_rows).unwrap_or(i64::MAX);
        let removed = s.purge_expired(SyncTimestamp::now(), limit).await?;
        s.commit().await?;
        Ok(removed)
    }

    async fn forget_user(&self, uid: Uid) -> DbResult<()> {
        let mut s = self.write(uid).await?;
        s.delete_user(uid, true).await?;
        s.commit().await
    }

    async fn highest_uid(&self) -> DbResult<Option<u64>> {
        let mut s = self.read().await?;
        Ok(s.highest_uid().await?.and_then(|u| u64::try_from(u).ok()))
    }

    async fn user_state(&self, uid: Uid) -> DbResult<UserState> {
        let mut s = self.read().await?;
        let modified = s.user_timestamp(uid).await?.as_db();
        let collections = s.collection_timestamps(uid).await?.into_iter().collect();
        Ok(UserState {
            modified,
            collections,
        })
    }

    async fn export_records(
        &self,
        uid: Uid,
        coll: &CollectionName,
        after: &str,
        limit: u64,
    ) -> DbResult<Vec<Record>> {
        let mut s = self.read().await?;
        let Some(id) = s.collection_id(coll.as_str()).await? else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = s
            .records_after(uid, id, after, limit, SyncTimestamp::now())
            .await?;
        // A page ends past PAGE_BYTES of payload (after one row at least).
        let mut bytes = 0;
        let page = rows.into_iter().take_while(|row| {
            let within = bytes == 0 || bytes + row.payload.len() <= PAGE_BYTES;
            bytes += row.payload.len().max(1);
            within
        });
        Ok(page.map(record_of).collect())
    }

    async fn import_records(
        &self,
        uid: Uid,
        coll: &CollectionName,
        import: Import,
    ) -> DbResult<()> {
        let mut s = self.begin_write(Some(uid)).await?;
        let id = self.collection_id_for_write(&mut *s, coll).await?;
        if import.replace {
            s.delete_collection(uid, id).await?;
        }
        let rows: Vec<Bso> = import.records.into_iter().map(bso_of).collect();
        for chunk in statement_chunks(&rows, |b| b.payload.len()) {
            s.upsert_bsos(uid, id, chunk).await?;
        }
        // The storage's timestamp is set once every collection is in.
        let user_modified = s.user_timestamp(uid).await?;
        s.touch(uid, Some(id), SyncTimestamp::from_db(import.modified))
            .await?;
        s.touch(uid, None, user_modified).await?;
        s.commit().await
    }

    async fn drop_collection(&self, uid: Uid, coll: &CollectionName) -> DbResult<()> {
        let mut s = self.begin_write(Some(uid)).await?;
        if let Some(id) = s.collection_id(coll.as_str()).await? {
            s.delete_collection(uid, id).await?;
        }
        s.commit().await
    }

    async fn finish_import(&self, uid: Uid, modified: i64) -> DbResult<()> {
        let mut s = self.begin_write(Some(uid)).await?;
        s.touch(uid, None, SyncTimestamp::from_db(modified)).await?;
        s.commit().await
    }

    async fn serve_user(&self, uid: Uid) -> DbResult<()> {
        let mut s = self.begin_write(Some(uid)).await?;
        s.unfence(uid).await?;
        s.lift_revocation(uid).await?;
        s.commit().await
    }

    async fn fence_user(&self, uid: Uid, until: u64) -> DbResult<()> {
        let mut s = self.begin_write(Some(uid)).await?;
        s.fence(uid, to_i64(until)).await?;
        s.commit().await
    }

    async fn evict_user(&self, uid: Uid) -> DbResult<()> {
        let mut s = self.begin_write(Some(uid)).await?;
        s.delete_user(uid, true).await?;
        s.commit().await
    }

    async fn record_revocations(&self, notice: &Notice, now: u64) -> DbResult<()> {
        // Each uid once: PostgreSQL's upsert refuses a key twice.
        let uids: std::collections::BTreeSet<i64> = notice
            .uids
            .iter()
            .filter_map(|uid| i64::try_from(*uid).ok())
            .collect();
        let uids: Vec<i64> = uids.into_iter().collect();
        let mut s = self.begin_write(None).await?;
        s.revoke_uids(&uids, to_i64(notice.until)).await?;
        if let Some(epoch) = notice.epoch {
            s.raise_epoch(&notice.node, to_i64(epoch)).await?;
        }
        s.forget_revoked(to_i64(now)).await?;
        s.commit().await
    }

    async fn revocations(&self, now: u64) -> DbResult<Revoked> {
        let (uids, epochs) = self.read().await?.revocations(to_i64(now)).await?;
        Ok(Revoked {
            uids: uids.into_iter().map(to_u64).collect(),
            epochs: epochs.into_iter().map(|(n, e)| (n, to_u64(e))).collect(),
        })
    }
}

impl SqlStore {
    /// Per-collection COUNT(*) or SUM(payload_size) of live BSOs.
    async fn per_collection(
        &self,
        uid: Uid,
        pre: Precondition,
        what: Aggregate,
    ) -> DbResult<Timed<PerCollection<u64>>> {
        let mut s = self.read().await?;
        let last_modified = s.user_timestamp(uid).await?;
        pre.check(last_modified)?;
        let rows = s.per_collection(uid, SyncTimestamp::now(), what).await?;
        let value = rows
            .into_iter()
            .map(|(name, n)| (name, to_u64(n)))
            .collect();
        Ok(Timed {
            last_modified,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::bso::Patch;

    fn write(id: &str, payload_len: usize) -> BsoInput {
        BsoInput {
            id: BsoId::parse(id).unwrap(),
            sortindex: Patch::Keep,
            payload: Patch::Set("x".repeat(payload_len)),
            ttl: Patch::Keep,
        }
    }

    #[test]
    fn statements_are_bounded_by_rows_and_bytes() {
        let many: Vec<_> = (0..450).map(|i| write(&i.to_string(), 1)).collect();
        let sizes: Vec<_> = statement_chunks(&many, BsoInput::payload_len)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, vec![200, 200, 50]);
        let big: Vec<_> = (0..5)
            .map(|i| write(&i.to_string(), 2 * 1024 * 1024))
            .collect();
        let sizes: Vec<_> = statement_chunks(&big, BsoInput::payload_len)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        assert!(statement_chunks::<BsoInput>(&[], BsoInput::payload_len).is_empty());
    }
}
