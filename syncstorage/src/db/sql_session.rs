//! One [`Session`](super::session::Session) implementation for every
//! backend. The Rust around each statement (binding, fetching, mapping rows)
//! is the same for SQLite, PostgreSQL and MySQL; only the SQL differs. sqlx
//! has no practical way to write that code once over its database types
//! (the executor bounds are higher-ranked), so this macro writes it once
//! and each backend instantiates it with its `sql` module of statements and
//! its `classify`. A backend's SQL lives in its own module, in plain sight.

/// Statements per call: bound-parameter limits differ, 200 rows fit all.
pub(crate) const ROWS_PER_STATEMENT: usize = 200;

/// The heartbeat's write: the same in every dialect, and it matches no row
/// (uids are positive), so it takes no row lock.
pub(crate) const PROBE_WRITE: &str = "DELETE FROM user_timestamps WHERE userid = -1";

/// `sql_session!(Name, sqlx::Postgres, sql, classify)` defines `Name`, a
/// session over `Transaction<'static, sqlx::Postgres>` running `sql::*`.
macro_rules! sql_session {
    ($session:ident, $db:ty, $sql:ident, $classify:path) => {
        pub(super) struct $session {
            tx: sqlx::Transaction<'static, $db>,
        }

        impl $session {
            pub(super) fn new(tx: sqlx::Transaction<'static, $db>) -> Box<Self> {
                Box::new(Self { tx })
            }

            fn bso(row: &<$db as sqlx::Database>::Row) -> $crate::db::DbResult<$crate::model::bso::Bso> {
                use sqlx::Row;
                use $crate::model::timestamp::SyncTimestamp;
                let get = || -> Result<$crate::model::bso::Bso, sqlx::Error> {
                    // By position: a dialect may alias a column (see BSO_COLUMNS).
                    Ok($crate::model::bso::Bso {
                        id: row.try_get(0)?,
                        modified: SyncTimestamp::from_db(row.try_get(1)?),
                        payload: row.try_get(2)?,
                        sortindex: row.try_get(3)?,
                        expiry: SyncTimestamp::from_db(row.try_get(4)?),
                    })
                };
                get().map_err($classify)
            }

            /// Appends ` AND id IN (ids…)`.
            fn with_ids<'a>(
                sql: &mut sqlx::QueryBuilder<'a, $db>,
                ids: impl IntoIterator<Item = &'a str>,
            ) {
                sql.push(" AND id IN (");
                let mut list = sql.separated(", ");
                for id in ids {
                    list.push_bind(id);
                }
                sql.push(")");
            }

            /// Appends `prefix` restricted to one user's collection.
            fn push_user_and_collection(
                sql: &mut sqlx::QueryBuilder<'_, $db>,
                prefix: &str,
                uid: $crate::db::Uid,
                coll: i64,
            ) {
                sql.push(prefix)
                    .push(" WHERE userid = ")
                    .push_bind(uid.as_db())
                    .push(" AND collection = ")
                    .push_bind(coll);
            }

            fn user_and_collection<'a>(
                prefix: &str,
                uid: $crate::db::Uid,
                coll: i64,
            ) -> sqlx::QueryBuilder<'a, $db> {
                let mut sql = sqlx::QueryBuilder::new("");
                Self::push_user_and_collection(&mut sql, prefix, uid, coll);
                sql
            }
        }

        impl $session {
            /// Appends `columns` (a `SELECT … FROM bsos`) restricted to
            /// the query's live rows after its offset, in its order.
            fn push_page_query<'a>(
                sql: &mut sqlx::QueryBuilder<'a, $db>,
                columns: &str,
                uid: $crate::db::Uid,
                coll: i64,
                query: &'a $crate::model::paging::BsoQuery,
                now: $crate::model::timestamp::SyncTimestamp,
            ) {
                use $crate::model::paging::Sort;
                Self::push_user_and_collection(sql, columns, uid, coll);
                sql.push(" AND expiry > ").push_bind(now.as_db());
                if let Some(newer) = query.newer {
                    sql.push(" AND modified > ").push_bind(newer.as_db());
                }
                if let Some(older) = query.older {
                    sql.push(" AND modified < ").push_bind(older.as_db());
                }
                if !query.ids.is_empty() {
                    Self::with_ids(sql, query.ids.iter().map(|id| id.as_str()));
                }
                let key = match query.sort {
                    Sort::Newest | Sort::Oldest => "modified",
                    // A generated column: COALESCE(sortindex, NULL_SORTINDEX_KEY).
                    Sort::Index => "sortkey",
                };
                let (cmp, dir) = if query.sort.descending() {
                    ("<", "DESC")
                } else {
                    (">", "ASC")
                };
                if let Some(offset) = &query.offset {
                    if $sql::ROW_VALUES {
                        sql.push(format!(" AND ({key}, id) {cmp} ("))
                            .push_bind(offset.key)
                            .push(", ")
                            .push_bind(offset.id.as_str())
                            .push(")");
                    } else {
                        sql.push(format!(" AND ({key} {cmp} "))
                            .push_bind(offset.key)
                            .push(format!(" OR ({key} = "))
                            .push_bind(offset.key)
                            .push(format!(" AND id {cmp} "))
                            .push_bind(offset.id.as_str())
                            .push("))");
                    }
                }
                sql.push(format!(" ORDER BY {key} {dir}, id {dir}"));
            }

            /// A row count as SQL takes it.
            fn count(n: u64) -> i64 {
                i64::try_from(n).unwrap_or(i64::MAX)
            }
        }

        #[async_trait::async_trait]
        impl $crate::db::session::Session for $session {
            async fn commit(self: Box<Self>) -> $crate::db::DbResult<()> {
                self.tx.commit().await.map_err($classify)
            }

            async fn rollback(self: Box<Self>) -> $crate::db::DbResult<()> {
                self.tx.rollback().await.map_err($classify)
            }

            async fn probe_write(&mut self) -> $crate::db::DbResult<()> {
                sqlx::query($crate::db::sql_session::PROBE_WRITE)
                    .execute(&mut *self.tx)
                    .await
                    .map(|_| ())
                    .map_err($classify)
            }

            async fn collection_id(&mut self, name: &str) -> $crate::db::DbResult<Option<i64>> {
                sqlx::query_scalar($sql::COLLECTION_ID)
                    .bind(name)
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err($classify)
            }

            async fn create_collection(&mut self, name: &str) -> $crate::db::DbResult<i64> {
                sqlx::query($sql::CREATE_COLLECTION)
                    .bind(name)
                    .execute(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                let id = self.collection_id(name).await?;
                // Absent only if a racing transaction took the same new id
                // for another name: the client may retry.
                id.ok_or($crate::db::DbError::Conflict)
            }

            async fn user_timestamp(
                &mut self,
                uid: $crate::db::Uid,
            ) -> $crate::db::DbResult<$crate::model::timestamp::SyncTimestamp> {
                let ts: Option<i64> = sqlx::query_scalar($sql::USER_TIMESTAMP)
                    .bind(uid.as_db())
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                Ok(ts.map_or(
                    $crate::model::timestamp::SyncTimestamp::ZERO,
                    $crate::model::timestamp::SyncTimestamp::from_db,
                ))
            }

            async fn collection_timestamp(
                &mut self,
                uid: $crate::db::Uid,
                coll: i64,
            ) -> $crate::db::DbResult<$crate::model::timestamp::SyncTimestamp> {
                let ts: Option<i64> = sqlx::query_scalar($sql::COLLECTION_TIMESTAMP)
                    .bind(uid.as_db())
                    .bind(coll)
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                Ok(ts.map_or(
                    $crate::model::timestamp::SyncTimestamp::ZERO,
                    $crate::model::timestamp::SyncTimestamp::from_db,
                ))
            }

            async fn collection_timestamps(
                &mut self,
                uid: $crate::db::Uid,
            ) -> $crate::db::DbResult<Vec<(String, i64)>> {
                sqlx::query_as($sql::COLLECTION_TIMESTAMPS)
                    .bind(uid.as_db())
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err($classify)
            }

            async fn touch(
                &mut self,
                uid: $crate::db::Uid,
                coll: Option<i64>,
                ts: $crate::model::timestamp::SyncTimestamp,
            ) -> $crate::db::DbResult<()> {
                sqlx::query($sql::TOUCH_USER)
                    .bind(uid.as_db())
                    .bind(ts.as_db())
                    .execute(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                if let Some(coll) = coll {
                    sqlx::query($sql::TOUCH_COLLECTION)
                        .bind(uid.as_db())
                        .bind(coll)
                        .bind(ts.as_db())
                        .execute(&mut *self.tx)
                        .await
                        .map_err($classify)?;
                }
                Ok(())
            }

            async fn per_collection(
                &mut self,
                uid: $crate::db::Uid,
                now: $crate::model::timestamp::SyncTimestamp,
                what: $crate::db::session::Aggregate,
            ) -> $crate::db::DbResult<Vec<(String, i64)>> {
                let sql = match what {
                    $crate::db::session::Aggregate::Count => $sql::COLLECTION_COUNTS,
                    $crate::db::session::Aggregate::Bytes => $sql::COLLECTION_BYTES,
                };
                sqlx::query_as(sql)
                    .bind(uid.as_db())
                    .bind(now.as_db())
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err($classify)
            }

            async fn user_usage(
                &mut self,
                uid: $crate::db::Uid,
                now: $crate::model::timestamp::SyncTimestamp,
            ) -> $crate::db::DbResult<u64> {
                let bytes: i64 = sqlx::query_scalar($sql::USER_USAGE)
                    .bind(uid.as_db())
                    .bind(now.as_db())
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                Ok(u64::try_from(bytes).unwrap_or(0))
            }

            async fn staged_bytes(
                &mut self,
                uid: $crate::db::Uid,
                now: $crate::model::timestamp::SyncTimestamp,
                except: &str,
            ) -> $crate::db::DbResult<i64> {
                sqlx::query_scalar($sql::STAGED_BYTES)
                    .bind(uid.as_db())
                    .bind(now.as_db())
                    .bind(except)
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err($classify)
            }

            async fn stream_page(
                &mut self,
                uid: $crate::db::Uid,
                coll: i64,
                query: &$crate::model::paging::BsoQuery,
                now: $crate::model::timestamp::SyncTimestamp,
                rows: $crate::db::session::PageRows,
                sink: &mut dyn $crate::db::session::RowSink,
            ) -> $crate::db::DbResult<()> {
                use futures_util::TryStreamExt;
                let columns = if rows.payloads {
                    $sql::SELECT_BSOS
                } else {
                    $sql::SELECT_BSOS_NO_PAYLOAD
                };
                let mut sql = sqlx::QueryBuilder::new("");
                Self::push_page_query(&mut sql, columns, uid, coll, query, now);
                sql.push(" LIMIT ").push_bind(Self::count(rows.count));
                // Row by row: a page may be far larger than memory should hold.
                let mut fetched = sql.build().fetch(&mut *self.tx);
                while let Some(row) = fetched.try_next().await.map_err($classify)? {
                    if !sink.take(Self::bso(&row)?).await {
                        break;
                    }
                }
                Ok(())
            }

            async fn page_summary(
                &mut self,
                uid: $crate::db::Uid,
                coll: i64,
                query: &$crate::model::paging::BsoQuery,
                now: $crate::model::timestamp::SyncTimestamp,
                count: u64,
            ) -> $crate::db::DbResult<$crate::db::session::PageSummary> {
                use sqlx::Row;
                let mut sql = sqlx::QueryBuilder::new($sql::PAGE_SUMMARY);
                let inner = "SELECT payload_size FROM bsos";
                Self::push_page_query(&mut sql, inner, uid, coll, query, now);
                sql.push(" LIMIT ").push_bind(Self::count(count)).push(") AS page");
                let row = sql.build().fetch_one(&mut *self.tx).await.map_err($classify)?;
                let get = |i: usize| -> $crate::db::DbResult<u64> {
                    let v: i64 = row.try_get(i).map_err($classify)?;
                    Ok(u64::try_from(v).unwrap_or(0))
                };
                Ok($crate::db::session::PageSummary {
                    rows: get(0)?,
                    payload_bytes: get(1)?,
                    largest_payload: get(2)?,
                })
            }

            async fn page_row_at(
                &mut self,
                uid: $crate::db::Uid,
                coll: i64,
                query: &$crate::model::paging::BsoQuery,
                now: $crate::model::timestamp::SyncTimestamp,
                position: u64,
            ) -> $crate::db::DbResult<Option<$crate::model::bso::Bso>> {
                let columns = $sql::SELECT_BSOS_NO_PAYLOAD;
                let mut sql = sqlx::QueryBuilder::new("");
                Self::push_page_query(&mut sql, columns, uid, coll, query, now);
                sql.push(" LIMIT 1 OFFSET ").push_bind(Self::count(position));
                let row = sql.build().fetch_optional(&mut *self.tx).await.map_err($classify)?;
                row.as_ref().map(Self::bso).transpose()
            }

            async fn live_bso(
                &mut self,
                uid: $crate::db::Uid,
                coll: i64,
                id: &str,
                now: $crate::model::timestamp::SyncTimestamp,
            ) -> $crate::db::DbResult<Option<$crate::model::bso::Bso>> {
                let row = sqlx::query($sql::LIVE_BSO)
                    .bind(uid.as_db())
                    .bind(coll)
                    .bind(id)
                    .bind(now.as_db())
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                row.as_ref().map(Self::bso).transpose()
            }

            async fn stored_bsos(
                &mut self,
                uid: $crate::db::Uid,
                coll: i64,
                ids: &[&str],
            ) -> $crate::db::DbResult<Vec<$crate::model::bso::Bso>> {
                let mut found = Vec::new();
                for chunk in ids.chunks($crate::db::sql_session::ROWS_PER_STATEMENT) {
                    let mut sql = Self::user_and_collection($sql::SELECT_BSOS, uid, coll);
                    Self::with_ids(&mut sql, chunk.iter().copied());
                    let rows = sql
                        .build()
                        .fetch_all(&mut *self.tx)
                        .await
                        .map_err($classify)?;
                    for row in &rows {
                        found.push(Self::bso(row)?);
                    }
                }
                Ok(found)
            }

            async fn upsert_bsos(
                &mut self,
                uid: $crate::db::Uid,
                coll: i64,
                rows: &[$crate::model::bso::Bso],
            ) -> $crate::db::DbResult<()> {
                for chunk in rows.chunks($crate::db::sql_session::ROWS_PER_STATEMENT) {
                    let mut sql = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO bsos \
                         (userid, collection, id, sortindex, payload, payload_size, modified, expiry) ",
                    );
                    sql.push_values(chunk, |mut values, row| {
                        values
                            .push_bind(uid.as_db())
                            .push_bind(coll)
                            .push_bind(row.id.as_str())
                            .push_bind(row.sortindex)
                            .push_bind(row.payload.as_str())
                            .push_bind(i64::try_from(row.payload.len()).unwrap_or(i64::MAX))
                            .push_bind(row.modified.as_db())
                            .push_bind(row.expiry.as_db());
                    });
                    sql.push($sql::UPSERT_BSOS_SUFFIX);
                    sql.build()
                        .execute(&mut *self.tx)
                        .await
                        .map_err($classify)?;
                }
                Ok(())
            }

            async fn delete_bsos(
                &mut self,
                uid: $crate::db::Uid,
                coll: i64,
                ids: &[$crate::model::bso::BsoId],
            ) -> $crate::db::DbResult<()> {
                for chunk in ids.chunks($crate::db::sql_session::ROWS_PER_STATEMENT) {
                    let mut sql = Self::user_and_collection("DELETE FROM bsos", uid, coll);
                    Self::with_ids(&mut sql, chunk.iter().map(|id| id.as_str()));
                    sql.build()
                        .execute(&mut *self.tx)
                        .await
                        .map_err($classify)?;
                }
                Ok(())
            }

            async fn delete_collection(
                &mut self,
                uid: $crate::db::Uid,
                coll: i64,
            ) -> $crate::db::DbResult<()> {
                for statement in $sql::DELETE_COLLECTION {
                    sqlx::query(statement)
                        .bind(uid.as_db())
                        .bind(coll)
                        .execute(&mut *self.tx)
                        .await
                        .map_err($classify)?;
                }
                Ok(())
            }

            async fn delete_user(
                &mut self,
                uid: $crate::db::Uid,
                forget: bool,
            ) -> $crate::db::DbResult<()> {
                let forgotten: &[&str] = if forget { $sql::FORGET_USER } else { &[] };
                for statement in $sql::DELETE_USER_DATA.iter().chain(forgotten) {
                    sqlx::query(statement)
                        .bind(uid.as_db())
                        .execute(&mut *self.tx)
                        .await
                        .map_err($classify)?;
                }
                Ok(())
            }

            async fn insert_batch(
                &mut self,
                id: &str,
                uid: $crate::db::Uid,
                coll: i64,
                expiry: $crate::model::timestamp::SyncTimestamp,
                totals: $crate::db::session::BatchTotals,
            ) -> $crate::db::DbResult<()> {
                sqlx::query($sql::INSERT_BATCH)
                    .bind(id)
                    .bind(uid.as_db())
                    .bind(coll)
                    .bind(expiry.as_db())
                    .bind(totals.records)
                    .bind(totals.bytes)
                    .execute(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                Ok(())
            }

            async fn find_batch(
                &mut self,
                id: &str,
                uid: $crate::db::Uid,
                coll: i64,
                now: $crate::model::timestamp::SyncTimestamp,
            ) -> $crate::db::DbResult<Option<$crate::db::session::BatchTotals>> {
                let row: Option<(i64, i64)> = sqlx::query_as($sql::FIND_BATCH)
                    .bind(id)
                    .bind(uid.as_db())
                    .bind(coll)
                    .bind(now.as_db())
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                Ok(row.map(|(records, bytes)| $crate::db::session::BatchTotals { records, bytes }))
            }

            async fn update_batch(
                &mut self,
                id: &str,
                totals: $crate::db::session::BatchTotals,
            ) -> $crate::db::DbResult<()> {
                sqlx::query($sql::UPDATE_BATCH)
                    .bind(totals.records)
                    .bind(totals.bytes)
                    .bind(id)
                    .execute(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                Ok(())
            }

            async fn batch_ids(
                &mut self,
                uid: $crate::db::Uid,
            ) -> $crate::db::DbResult<Vec<String>> {
                sqlx::query_scalar($sql::BATCH_IDS)
                    .bind(uid.as_db())
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err($classify)
            }

            async fn delete_batches(&mut self, ids: &[String]) -> $crate::db::DbResult<()> {
                for chunk in ids.chunks($crate::db::sql_session::ROWS_PER_STATEMENT) {
                    // Staged items go with their batch (ON DELETE CASCADE).
                    let mut sql = sqlx::QueryBuilder::<$db>::new("DELETE FROM batches WHERE id IN (");
                    let mut list = sql.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_str());
                    }
                    sql.push(")");
                    sql.build()
                        .execute(&mut *self.tx)
                        .await
                        .map_err($classify)?;
                }
                Ok(())
            }

            async fn stage(
                &mut self,
                batch: &str,
                first_seq: i64,
                items: &[String],
            ) -> $crate::db::DbResult<()> {
                let numbered: Vec<(i64, &String)> = (first_seq..).zip(items).collect();
                for chunk in numbered.chunks($crate::db::sql_session::ROWS_PER_STATEMENT) {
                    let mut sql = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO batch_items (batch, seq, item) ",
                    );
                    sql.push_values(chunk, |mut values, (seq, item)| {
                        values
                            .push_bind(batch)
                            .push_bind(*seq)
                            .push_bind(item.as_str());
                    });
                    sql.build()
                        .execute(&mut *self.tx)
                        .await
                        .map_err($classify)?;
                }
                Ok(())
            }

            async fn staged(&mut self, batch: &str) -> $crate::db::DbResult<Vec<String>> {
                sqlx::query_scalar($sql::STAGED_ITEMS)
                    .bind(batch)
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err($classify)
            }

            async fn purge_expired(
                &mut self,
                now: $crate::model::timestamp::SyncTimestamp,
                limit: i64,
            ) -> $crate::db::DbResult<$crate::db::Purged> {
                let mut purged = $crate::db::Purged::default();
                for (kind, statement) in $sql::PURGE {
                    let removed = sqlx::query(statement)
                        .bind(now.as_db())
                        .bind(limit)
                        .execute(&mut *self.tx)
                        .await
                        .map_err($classify)?
                        .rows_affected();
                    purged.add(*kind, removed);
                }
                Ok(purged)
            }

            async fn highest_uid(&mut self) -> $crate::db::DbResult<Option<i64>> {
                sqlx::query_scalar($sql::HIGHEST_UID)
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err($classify)
            }

            async fn fence(&mut self, uid: $crate::db::Uid, until: i64) -> $crate::db::DbResult<()> {
                sqlx::query($sql::FENCE)
                    .bind(uid.as_db())
                    .bind(until)
                    .execute(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                Ok(())
            }

            async fn fenced_until(
                &mut self,
                uid: $crate::db::Uid,
            ) -> $crate::db::DbResult<Option<i64>> {
                sqlx::query_scalar($sql::FENCED_UNTIL)
                    .bind(uid.as_db())
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err($classify)
            }

            async fn unfence(&mut self, uid: $crate::db::Uid) -> $crate::db::DbResult<()> {
                sqlx::query($sql::UNFENCE)
                    .bind(uid.as_db())
                    .execute(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                Ok(())
            }

            async fn lift_revocation(&mut self, uid: $crate::db::Uid) -> $crate::db::DbResult<()> {
                sqlx::query($sql::LIFT_REVOCATION)
                    .bind(uid.as_db())
                    .execute(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                Ok(())
            }

            async fn records_after(
                &mut self,
                uid: $crate::db::Uid,
                coll: i64,
                after: &str,
                limit: i64,
                now: $crate::model::timestamp::SyncTimestamp,
            ) -> $crate::db::DbResult<Vec<$crate::model::bso::Bso>> {
                let rows = sqlx::query($sql::RECORDS_AFTER)
                    .bind(uid.as_db())
                    .bind(coll)
                    .bind(now.as_db())
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                rows.iter().map(Self::bso).collect()
            }

            async fn revoke_uids(&mut self, uids: &[i64], expires: i64) -> $crate::db::DbResult<()> {
                for chunk in uids.chunks($crate::db::sql_session::ROWS_PER_STATEMENT) {
                    let mut sql = sqlx::QueryBuilder::<$db>::new($sql::REVOKE_UIDS);
                    sql.push_values(chunk, |mut row, uid| {
                        row.push_bind(*uid).push_bind(expires);
                    });
                    sql.push($sql::REVOKE_UIDS_SUFFIX);
                    sql.build().execute(&mut *self.tx).await.map_err($classify)?;
                }
                Ok(())
            }

            async fn raise_epoch(&mut self, node: &str, epoch: i64) -> $crate::db::DbResult<()> {
                sqlx::query($sql::RAISE_EPOCH)
                    .bind(node)
                    .bind(epoch)
                    .execute(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                Ok(())
            }

            async fn forget_revoked(&mut self, now: i64) -> $crate::db::DbResult<()> {
                sqlx::query($sql::FORGET_REVOKED)
                    .bind(now)
                    .execute(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                Ok(())
            }

            async fn revocations(
                &mut self,
                now: i64,
            ) -> $crate::db::DbResult<(Vec<i64>, Vec<(String, i64)>)> {
                let uids = sqlx::query_scalar($sql::REVOKED_UIDS)
                    .bind(now)
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                let epochs = sqlx::query_as($sql::NODE_EPOCHS)
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err($classify)?;
                Ok((uids, epochs))
            }
        }
    };
}

pub(crate) use sql_session;
