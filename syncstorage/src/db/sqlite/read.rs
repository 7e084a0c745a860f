//! Read operations: each runs in one read transaction (one snapshot).

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{classify, collection_timestamp, user_timestamp, user_usage, SqliteStore};
use crate::db::{DbError, DbResult, PerCollection, Timed, Uid};
use crate::model::bso::{Bso, BsoId, CollectionName};
use crate::model::paging::{BsoQuery, Page, Sort};
use crate::model::precondition::Precondition;
use crate::model::timestamp::SyncTimestamp;

impl SqliteStore {
    pub(super) async fn read_collection_timestamps(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<PerCollection<SyncTimestamp>>> {
        let mut tx = self.begin_read().await?;
        let last_modified = user_timestamp(&mut tx, uid).await?;
        pre.check(last_modified)?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT c.name, uc.modified FROM user_collections uc \
             JOIN collections c ON c.id = uc.collection WHERE uc.userid = ?",
        )
        .bind(uid.as_db())
        .fetch_all(&mut *tx)
        .await
        .map_err(classify)?;
        let value = rows
            .into_iter()
            .map(|(name, ts)| (name, SyncTimestamp::from_db(ts)))
            .collect();
        Ok(Timed {
            last_modified,
            value,
        })
    }

    /// Per-collection COUNT(*) or SUM(payload_size) of live BSOs.
    pub(super) async fn read_per_collection(
        &self,
        uid: Uid,
        pre: Precondition,
        aggregate: &'static str,
    ) -> DbResult<Timed<PerCollection<u64>>> {
        let mut tx = self.begin_read().await?;
        let last_modified = user_timestamp(&mut tx, uid).await?;
        pre.check(last_modified)?;
        let sql = format!(
            "SELECT c.name, {aggregate} FROM bsos b JOIN collections c ON c.id = b.collection \
             WHERE b.userid = ? AND b.expiry > ? GROUP BY c.name"
        );
        let rows: Vec<(String, i64)> = sqlx::query_as(&sql)
            .bind(uid.as_db())
            .bind(SyncTimestamp::now().as_db())
            .fetch_all(&mut *tx)
            .await
            .map_err(classify)?;
        let value = rows
            .into_iter()
            .map(|(name, n)| (name, u64::try_from(n).unwrap_or(0)))
            .collect();
        Ok(Timed {
            last_modified,
            value,
        })
    }

    pub(super) async fn read_storage_usage(
        &self,
        uid: Uid,
        pre: Precondition,
    ) -> DbResult<Timed<u64>> {
        let mut tx = self.begin_read().await?;
        let last_modified = user_timestamp(&mut tx, uid).await?;
        pre.check(last_modified)?;
        let value = user_usage(&mut tx, uid, SyncTimestamp::now()).await?;
        Ok(Timed {
            last_modified,
            value,
        })
    }

    pub(super) async fn read_bsos(
        &self,
        uid: Uid,
        coll: &CollectionName,
        query: &BsoQuery,
        pre: Precondition,
    ) -> DbResult<Timed<Page>> {
        let mut tx = self.begin_read().await?;
        let collection = self.collection_id(&mut tx, coll).await?;
        let last_modified = collection_timestamp(&mut tx, uid, collection).await?;
        pre.check(last_modified)?;
        let Some(collection) = collection else {
            return Ok(Timed {
                last_modified,
                value: Page::default(),
            });
        };
        let mut sql = page_query(uid, collection, query);
        let rows = sql.build().fetch_all(&mut *tx).await.map_err(classify)?;
        let rows = rows
            .iter()
            .map(bso_from_row)
            .collect::<DbResult<Vec<_>>>()?;
        Ok(Timed {
            last_modified,
            value: Page::from_rows(rows, query),
        })
    }

    pub(super) async fn read_bso(
        &self,
        uid: Uid,
        coll: &CollectionName,
        id: &BsoId,
        pre: Precondition,
    ) -> DbResult<Bso> {
        let mut tx = self.begin_read().await?;
        let collection = self.collection_id(&mut tx, coll).await?;
        let bso = match collection {
            Some(c) => live_bso(&mut tx, uid, c, id.as_str(), SyncTimestamp::now()).await?,
            None => None,
        };
        pre.check(bso.as_ref().map_or(SyncTimestamp::ZERO, |b| b.modified))?;
        bso.ok_or(DbError::NotFound)
    }
}

/// One live BSO.
pub(super) async fn live_bso(
    conn: &mut sqlx::SqliteConnection,
    uid: Uid,
    collection: i64,
    id: &str,
    now: SyncTimestamp,
) -> DbResult<Option<Bso>> {
    let row = sqlx::query(
        "SELECT id, modified, payload, sortindex, expiry FROM bsos \
         WHERE userid = ? AND collection = ? AND id = ? AND expiry > ?",
    )
    .bind(uid.as_db())
    .bind(collection)
    .bind(id)
    .bind(now.as_db())
    .fetch_optional(conn)
    .await
    .map_err(classify)?;
    row.as_ref().map(bso_from_row).transpose()
}

/// Builds the keyset-paged SELECT for `query`, fetching `limit + 1` rows.
fn page_query(uid: Uid, collection: i64, query: &BsoQuery) -> QueryBuilder<'static, Sqlite> {
    let mut sql = QueryBuilder::new("SELECT id, modified, ");
    sql.push(if query.full {
        "payload"
    } else {
        "'' AS payload"
    });
    sql.push(", sortindex, expiry FROM bsos WHERE userid = ")
        .push_bind(uid.as_db())
        .push(" AND collection = ")
        .push_bind(collection)
        .push(" AND expiry > ")
        .push_bind(SyncTimestamp::now().as_db());
    if let Some(newer) = query.newer {
        sql.push(" AND modified > ").push_bind(newer.as_db());
    }
    if let Some(older) = query.older {
        sql.push(" AND modified < ").push_bind(older.as_db());
    }
    if !query.ids.is_empty() {
        sql.push(" AND id IN (");
        let mut list = sql.separated(", ");
        for id in &query.ids {
            list.push_bind(id.as_str().to_owned());
        }
        sql.push(")");
    }
    let key = match query.sort {
        Sort::Newest | Sort::Oldest => "modified",
        // Generated column: COALESCE(sortindex, model::paging::NULL_SORTINDEX_KEY).
        Sort::Index => "sortkey",
    };
    let (cmp, dir) = if query.sort.descending() {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(offset) = &query.offset {
        sql.push(format!(" AND ({key}, id) {cmp} ("))
            .push_bind(offset.key)
            .push(", ")
            .push_bind(offset.id.clone())
            .push(")");
    }
    sql.push(format!(" ORDER BY {key} {dir}, id {dir} LIMIT "))
        .push_bind(i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX));
    sql
}

pub(super) fn bso_from_row(row: &SqliteRow) -> DbResult<Bso> {
    let get = || -> Result<Bso, sqlx::Error> {
        Ok(Bso {
            id: row.try_get("id")?,
            modified: SyncTimestamp::from_db(row.try_get("modified")?),
            payload: row.try_get("payload")?,
            sortindex: row.try_get("sortindex")?,
            expiry: SyncTimestamp::from_db(row.try_get("expiry")?),
        })
    };
    get().map_err(classify)
}
