//! Multi-request batches: writes are staged in `batch_items` (as JSON, in
//! upload order) and applied in one transaction with one timestamp at commit.

use sqlx::SqliteConnection;

use super::write::apply_writes;
use super::{classify, collection_timestamp, touch, user_timestamp, SqliteStore};
use crate::db::{BatchId, DbError, DbResult, Timed, Uid, Written, MAX_OPEN_BATCHES_PER_USER};
use crate::model::bso::{fold, parse_bso, BsoId, BsoInput, CollectionName, WriteTime};
use crate::model::precondition::Precondition;
use crate::model::timestamp::SyncTimestamp;

/// Keeps a user's open batches to `MAX_OPEN_BATCHES_PER_USER` by dropping
/// the oldest: a client appending to one later gets "batch not found" and
/// starts over, and staged data can never pile up without bound.
async fn forget_oldest_batches(conn: &mut SqliteConnection, uid: Uid) -> DbResult<()> {
    sqlx::query(
        "DELETE FROM batches WHERE id IN (SELECT id FROM batches WHERE userid = ? \
         ORDER BY rowid DESC LIMIT -1 OFFSET ?)",
    )
    .bind(uid.as_db())
    .bind(MAX_OPEN_BATCHES_PER_USER)
    .execute(conn)
    .await
    .map_err(classify)?;
    Ok(())
}

/// An open batch as stored.
struct OpenBatch {
    records: i64,
    bytes: i64,
}

impl SqliteStore {
    pub(super) async fn open_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<Timed<BatchId>> {
        let mut tx = self.begin_write().await?;
        let now = SyncTimestamp::now();
        let collection = self.collection_id_for_write(&mut tx, coll).await?;
        let last_modified = collection_timestamp(&mut tx, uid, Some(collection)).await?;
        pre.check(last_modified)?;
        self.check_quota(&mut tx, uid, now, None).await?;
        let empty = OpenBatch {
            records: 0,
            bytes: 0,
        };
        let (records, bytes) = self.grown(&empty, &writes)?;
        let id = BatchId(hex::encode(rand::random::<[u8; 16]>()));
        let expiry = now.plus_seconds(self.settings.batch_ttl_seconds);
        sqlx::query(
            "INSERT INTO batches (id, userid, collection, expiry, records, bytes) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&id.0)
        .bind(uid.as_db())
        .bind(collection)
        .bind(expiry.as_db())
        .bind(records)
        .bind(bytes)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        stage(&mut tx, &id, 0, &writes).await?;
        forget_oldest_batches(&mut tx, uid).await?;
        tx.commit().await.map_err(classify)?;
        Ok(Timed {
            last_modified,
            value: id,
        })
    }

    pub(super) async fn append_to_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        batch: &BatchId,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<SyncTimestamp> {
        let mut tx = self.begin_write().await?;
        let now = SyncTimestamp::now();
        let collection = self
            .collection_id(&mut tx, coll)
            .await?
            .ok_or(DbError::BatchNotFound)?;
        let open = find_batch(&mut tx, uid, collection, batch, now).await?;
        let last_modified = collection_timestamp(&mut tx, uid, Some(collection)).await?;
        pre.check(last_modified)?;
        self.check_quota(&mut tx, uid, now, None).await?;
        let (records, bytes) = self.grown(&open, &writes)?;
        sqlx::query("UPDATE batches SET records = ?, bytes = ? WHERE id = ?")
            .bind(records)
            .bind(bytes)
            .bind(&batch.0)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        stage(&mut tx, batch, open.records, &writes).await?;
        tx.commit().await.map_err(classify)?;
        Ok(last_modified)
    }

    pub(super) async fn commit_open_batch(
        &self,
        uid: Uid,
        coll: &CollectionName,
        batch: &BatchId,
        writes: Vec<BsoInput>,
        pre: Precondition,
    ) -> DbResult<Written> {
        let mut tx = self.begin_write().await?;
        let now = SyncTimestamp::now();
        let collection = self
            .collection_id(&mut tx, coll)
            .await?
            .ok_or(DbError::BatchNotFound)?;
        let open = find_batch(&mut tx, uid, collection, batch, now).await?;
        pre.check(collection_timestamp(&mut tx, uid, Some(collection)).await?)?;
        self.check_quota(&mut tx, uid, now, Some(batch)).await?;
        self.grown(&open, &writes)?;
        let staged = staged_writes(&mut tx, batch).await?;
        let all = fold(staged.into_iter().chain(writes));
        let modified = SyncTimestamp::next_write(now, user_timestamp(&mut tx, uid).await?);
        let at = WriteTime {
            modified,
            clock: now,
        };
        apply_writes(&mut tx, uid, collection, &all, at).await?;
        touch(&mut tx, uid, Some(collection), modified).await?;
        sqlx::query("DELETE FROM batches WHERE id = ?")
            .bind(&batch.0)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        let usage = self.usage_if_quota(&mut tx, uid, modified).await?;
        tx.commit().await.map_err(classify)?;
        Ok(Written { modified, usage })
    }

    /// The batch's totals with `writes` added, or `BatchTooLarge`.
    fn grown(&self, open: &OpenBatch, writes: &[BsoInput]) -> DbResult<(i64, i64)> {
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
        Ok((records, bytes))
    }
}

/// The live batch `id` of this user and collection, or `BatchNotFound`.
async fn find_batch(
    conn: &mut SqliteConnection,
    uid: Uid,
    collection: i64,
    id: &BatchId,
    now: SyncTimestamp,
) -> DbResult<OpenBatch> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT records, bytes FROM batches \
         WHERE id = ? AND userid = ? AND collection = ? AND expiry > ?",
    )
    .bind(&id.0)
    .bind(uid.as_db())
    .bind(collection)
    .bind(now.as_db())
    .fetch_optional(conn)
    .await
    .map_err(classify)?;
    row.map(|(records, bytes)| OpenBatch { records, bytes })
        .ok_or(DbError::BatchNotFound)
}

/// Appends `writes` to the batch after sequence number `after`.
async fn stage(
    conn: &mut SqliteConnection,
    batch: &BatchId,
    after: i64,
    writes: &[BsoInput],
) -> DbResult<()> {
    for (seq, write) in (after..).zip(writes) {
        sqlx::query("INSERT INTO batch_items (batch, seq, item) VALUES (?, ?, ?)")
            .bind(&batch.0)
            .bind(seq)
            .bind(write.to_json().to_string())
            .execute(&mut *conn)
            .await
            .map_err(classify)?;
    }
    Ok(())
}

/// The staged writes in upload order.
async fn staged_writes(conn: &mut SqliteConnection, batch: &BatchId) -> DbResult<Vec<BsoInput>> {
    let items: Vec<String> =
        sqlx::query_scalar("SELECT item FROM batch_items WHERE batch = ? ORDER BY seq")
            .bind(&batch.0)
            .fetch_all(conn)
            .await
            .map_err(classify)?;
    items.iter().map(|item| staged_write(item)).collect()
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
