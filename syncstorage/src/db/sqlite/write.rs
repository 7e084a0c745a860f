//! Write operations: each is one `BEGIN IMMEDIATE` transaction that checks
//! the precondition, takes the user's next timestamp and records it.

use std::collections::HashMap;

use sqlx::{QueryBuilder, SqliteConnection};

use super::read::{bso_from_row, live_bso};
use super::{classify, collection_timestamp, touch, user_timestamp, SqliteStore};
use crate::db::{DbError, DbResult, Uid, Written};
use crate::model::bso::{apply, Bso, BsoId, BsoInput, CollectionName, WriteTime};
use crate::model::precondition::Precondition;
use crate::model::timestamp::SyncTimestamp;

/// SQLite's bound-parameter limit is generous, but keep IN lists modest.
const IDS_PER_QUERY: usize = 500;

impl SqliteStore {
    /// POST (`item = None`, precondition on the collection) or PUT
    /// (`item = Some(id)`, precondition on that BSO).
    pub(super) async fn write_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        writes: Vec<BsoInput>,
        pre: Precondition,
        item: Option<&BsoId>,
    ) -> DbResult<Written> {
        let mut tx = self.begin_write().await?;
        let now = SyncTimestamp::now();
        let collection = self.collection_id_for_write(&mut tx, coll).await?;
        let resource = match item {
            None => collection_timestamp(&mut tx, uid, Some(collection)).await?,
            Some(id) => live_bso(&mut tx, uid, collection, id.as_str(), now)
                .await?
                .map_or(SyncTimestamp::ZERO, |b| b.modified),
        };
        pre.check(resource)?;
        self.check_quota(&mut tx, uid, now, None).await?;
        let modified = SyncTimestamp::next_write(now, user_timestamp(&mut tx, uid).await?);
        let at = WriteTime {
            modified,
            clock: now,
        };
        apply_writes(&mut tx, uid, collection, &writes, at).await?;
        touch(&mut tx, uid, Some(collection), modified).await?;
        let usage = self.usage_if_quota(&mut tx, uid, modified).await?;
        tx.commit().await.map_err(classify)?;
        Ok(Written { modified, usage })
    }

    pub(super) async fn remove_bso(
        &self,
        uid: Uid,
        coll: &CollectionName,
        id: &BsoId,
        pre: Precondition,
    ) -> DbResult<Written> {
        let mut tx = self.begin_write().await?;
        let now = SyncTimestamp::now();
        let Some(collection) = self.collection_id(&mut tx, coll).await? else {
            pre.check(SyncTimestamp::ZERO)?;
            return Err(DbError::NotFound);
        };
        let existing = live_bso(&mut tx, uid, collection, id.as_str(), now).await?;
        pre.check(
            existing
                .as_ref()
                .map_or(SyncTimestamp::ZERO, |b| b.modified),
        )?;
        if existing.is_none() {
            return Err(DbError::NotFound);
        }
        let modified = SyncTimestamp::next_write(now, user_timestamp(&mut tx, uid).await?);
        delete_ids(&mut tx, uid, collection, std::slice::from_ref(id)).await?;
        touch(&mut tx, uid, Some(collection), modified).await?;
        tx.commit().await.map_err(classify)?;
        Ok(Written {
            modified,
            usage: None,
        })
    }

    pub(super) async fn remove_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        ids: &[BsoId],
        pre: Precondition,
    ) -> DbResult<Written> {
        let mut tx = self.begin_write().await?;
        let now = SyncTimestamp::now();
        let collection = self.collection_id(&mut tx, coll).await?;
        let last = collection_timestamp(&mut tx, uid, collection).await?;
        pre.check(last)?;
        let (Some(collection), false) = (collection, last == SyncTimestamp::ZERO) else {
            // Nothing stored in that collection: nothing to delete or bump.
            return Ok(Written {
                modified: user_timestamp(&mut tx, uid).await?,
                usage: None,
            });
        };
        let modified = SyncTimestamp::next_write(now, user_timestamp(&mut tx, uid).await?);
        delete_ids(&mut tx, uid, collection, ids).await?;
        touch(&mut tx, uid, Some(collection), modified).await?;
        tx.commit().await.map_err(classify)?;
        Ok(Written {
            modified,
            usage: None,
        })
    }

    pub(super) async fn remove_collection(
        &self,
        uid: Uid,
        coll: &CollectionName,
        pre: Precondition,
    ) -> DbResult<Written> {
        let mut tx = self.begin_write().await?;
        let now = SyncTimestamp::now();
        let collection = self.collection_id(&mut tx, coll).await?;
        let last = collection_timestamp(&mut tx, uid, collection).await?;
        pre.check(last)?;
        let (Some(collection), false) = (collection, last == SyncTimestamp::ZERO) else {
            return Ok(Written {
                modified: user_timestamp(&mut tx, uid).await?,
                usage: None,
            });
        };
        let modified = SyncTimestamp::next_write(now, user_timestamp(&mut tx, uid).await?);
        for sql in [
            "DELETE FROM bsos WHERE userid = ? AND collection = ?",
            "DELETE FROM user_collections WHERE userid = ? AND collection = ?",
            "DELETE FROM batches WHERE userid = ? AND collection = ?",
        ] {
            sqlx::query(sql)
                .bind(uid.as_db())
                .bind(collection)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
        }
        touch(&mut tx, uid, None, modified).await?;
        tx.commit().await.map_err(classify)?;
        Ok(Written {
            modified,
            usage: None,
        })
    }

    pub(super) async fn remove_storage(&self, uid: Uid, pre: Precondition) -> DbResult<Written> {
        let mut tx = self.begin_write().await?;
        let last = user_timestamp(&mut tx, uid).await?;
        pre.check(last)?;
        let modified = SyncTimestamp::next_write(SyncTimestamp::now(), last);
        delete_user_rows(&mut tx, uid, USER_DATA).await?;
        touch(&mut tx, uid, None, modified).await?;
        tx.commit().await.map_err(classify)?;
        Ok(Written {
            modified,
            usage: None,
        })
    }

    pub(super) async fn forget(&self, uid: Uid) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        delete_user_rows(&mut tx, uid, USER_DATA).await?;
        delete_user_rows(
            &mut tx,
            uid,
            &["DELETE FROM user_timestamps WHERE userid = ?"],
        )
        .await?;
        tx.commit().await.map_err(classify)
    }

    pub(super) async fn purge(&self, max_rows: u64) -> DbResult<u64> {
        let mut tx = self.begin_write().await?;
        let now = SyncTimestamp::now().as_db();
        let limit = i64::try_from(max_rows).unwrap_or(i64::MAX);
        let mut removed = 0;
        for sql in [
            "DELETE FROM bsos WHERE rowid IN (SELECT rowid FROM bsos WHERE expiry <= ? LIMIT ?)",
            "DELETE FROM batches WHERE id IN (SELECT id FROM batches WHERE expiry <= ? LIMIT ?)",
        ] {
            removed += sqlx::query(sql)
                .bind(now)
                .bind(limit)
                .execute(&mut *tx)
                .await
                .map_err(classify)?
                .rows_affected();
        }
        tx.commit().await.map_err(classify)?;
        Ok(removed)
    }
}

/// Merges `writes` into the stored rows (model rule) and upserts them.
pub(super) async fn apply_writes(
    conn: &mut SqliteConnection,
    uid: Uid,
    collection: i64,
    writes: &[BsoInput],
    at: WriteTime,
) -> DbResult<()> {
    for chunk in writes.chunks(IDS_PER_QUERY) {
        let existing = stored_bsos(conn, uid, collection, chunk).await?;
        for write in chunk {
            let row = apply(existing.get(write.id.as_str()), write, at);
            upsert(conn, uid, collection, &row).await?;
        }
    }
    Ok(())
}

/// The stored rows (expired or not) for the ids of `writes` that need them.
async fn stored_bsos(
    conn: &mut SqliteConnection,
    uid: Uid,
    collection: i64,
    writes: &[BsoInput],
) -> DbResult<HashMap<String, Bso>> {
    let needed: Vec<&str> = writes
        .iter()
        .filter(|w| w.payload.is_keep() || w.sortindex.is_keep() || w.ttl.is_keep())
        .map(|w| w.id.as_str())
        .collect();
    if needed.is_empty() {
        return Ok(HashMap::new());
    }
    let mut sql = QueryBuilder::new(
        "SELECT id, modified, payload, sortindex, expiry FROM bsos WHERE userid = ",
    );
    sql.push_bind(uid.as_db())
        .push(" AND collection = ")
        .push_bind(collection)
        .push(" AND id IN (");
    let mut list = sql.separated(", ");
    for id in needed {
        list.push_bind(id.to_owned());
    }
    sql.push(")");
    let rows = sql.build().fetch_all(&mut *conn).await.map_err(classify)?;
    rows.iter()
        .map(|row| bso_from_row(row).map(|b| (b.id.clone(), b)))
        .collect()
}

async fn upsert(conn: &mut SqliteConnection, uid: Uid, collection: i64, row: &Bso) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO bsos (userid, collection, id, sortindex, payload, payload_size, modified, expiry) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (userid, collection, id) DO UPDATE SET \
         sortindex = excluded.sortindex, payload = excluded.payload, \
         payload_size = excluded.payload_size, modified = excluded.modified, \
         expiry = excluded.expiry",
    )
    .bind(uid.as_db())
    .bind(collection)
    .bind(&row.id)
    .bind(row.sortindex)
    .bind(&row.payload)
    .bind(i64::try_from(row.payload.len()).unwrap_or(i64::MAX))
    .bind(row.modified.as_db())
    .bind(row.expiry.as_db())
    .execute(conn)
    .await
    .map_err(classify)?;
    Ok(())
}

async fn delete_ids(
    conn: &mut SqliteConnection,
    uid: Uid,
    collection: i64,
    ids: &[BsoId],
) -> DbResult<()> {
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let mut sql = QueryBuilder::new("DELETE FROM bsos WHERE userid = ");
        sql.push_bind(uid.as_db())
            .push(" AND collection = ")
            .push_bind(collection)
            .push(" AND id IN (");
        let mut list = sql.separated(", ");
        for id in chunk {
            list.push_bind(id.as_str().to_owned());
        }
        sql.push(")");
        sql.build().execute(&mut *conn).await.map_err(classify)?;
    }
    Ok(())
}

/// What a user stores (their last-write time aside).
const USER_DATA: &[&str] = &[
    "DELETE FROM bsos WHERE userid = ?",
    "DELETE FROM user_collections WHERE userid = ?",
    "DELETE FROM batches WHERE userid = ?",
];

async fn delete_user_rows(
    conn: &mut SqliteConnection,
    uid: Uid,
    statements: &[&str],
) -> DbResult<()> {
    for sql in statements {
        sqlx::query(sql)
            .bind(uid.as_db())
            .execute(&mut *conn)
            .await
            .map_err(classify)?;
    }
    Ok(())
}
