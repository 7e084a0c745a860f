//! One [`Session`](super::session::Session) implementation for every
//! backend. Binding, fetching and mapping rows is the same Rust for SQLite,
//! PostgreSQL and MySQL; only the SQL and a few column types differ. sqlx
//! cannot express that code once over its database types (the executor
//! bounds are higher-ranked), so this macro writes it once and each backend
//! instantiates it with its module of statements and types, which names:
//!
//! - the statements (`CHECK`, `USER_RECORDS`, …), positional: a value used
//!   twice is bound twice, as MySQL's `?` requires;
//! - `LOCK_NODES` and `LOCK_USER`: the row locks, `None` where a write
//!   transaction already excludes every other (SQLite);
//! - `Service` (the services id's type), `Flag` (a boolean column's) and
//!   `int(name, value)` (a value for one of Mozilla's INT columns);
//! - `inserted_uid(query, conn)`: runs `INSERT_USER`, returns the new uid;
//! - `classify`: a sqlx error as a [`DbError`](super::DbError).

/// `sql_session!(Name, sqlx::Postgres, queries)` defines `Name`, a session
/// over a [`Handle`](super::session::Handle) running `queries::*`.
macro_rules! sql_session {
    ($session:ident, $db:ty, $sql:ident) => {
        /// The steps on one connection or write transaction.
        pub(super) struct $session {
            conn: $crate::db::session::Handle<$db>,
            service: $sql::Service,
        }

        impl $session {
            pub(super) fn new(
                conn: $crate::db::session::Handle<$db>,
                service: $sql::Service,
            ) -> Box<Self> {
                Box::new(Self { conn, service })
            }

            fn records_of(
                rows: &[<$db as sqlx::Database>::Row],
            ) -> $crate::db::DbResult<Vec<$crate::db::UserRecord>> {
                rows.iter()
                    .map(|r| $crate::db::session::user_record(r).map_err($sql::classify))
                    .collect()
            }

            /// Runs one of the lock statements, if the dialect has it.
            async fn lock(
                &mut self,
                sql: Option<&'static str>,
                email: Option<&str>,
            ) -> $crate::db::DbResult<()> {
                let Some(sql) = sql else {
                    return Ok(());
                };
                let mut query = sqlx::query(sql);
                if let Some(email) = email {
                    query = query.bind(email);
                }
                query
                    .bind(self.service)
                    .fetch_all(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::db::session::Session for $session {
            async fn commit(self: Box<Self>) -> $crate::db::DbResult<()> {
                self.conn.commit().await.map_err($sql::classify)
            }

            async fn lock_nodes(&mut self) -> $crate::db::DbResult<()> {
                self.lock($sql::LOCK_NODES, None).await
            }

            async fn lock_user(&mut self, email: &str) -> $crate::db::DbResult<()> {
                self.lock($sql::LOCK_USER, Some(email)).await
            }

            async fn check(&mut self) -> $crate::db::DbResult<()> {
                sqlx::query($sql::CHECK)
                    .bind(self.service)
                    .fetch_one(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn records(
                &mut self,
                email: &str,
            ) -> $crate::db::DbResult<Vec<$crate::db::UserRecord>> {
                let rows = sqlx::query($sql::USER_RECORDS)
                    .bind(email)
                    .bind(self.service)
                    .fetch_all(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Self::records_of(&rows)
            }

            async fn record(&mut self, uid: i64) -> $crate::db::DbResult<$crate::db::UserRecord> {
                let row = sqlx::query($sql::USER_RECORD)
                    .bind(uid)
                    .fetch_one(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                $crate::db::session::user_record(&row).map_err($sql::classify)
            }

            async fn replace_others(
                &mut self,
                email: &str,
                keep: i64,
                at: i64,
            ) -> $crate::db::DbResult<()> {
                sqlx::query($sql::REPLACE_OTHERS)
                    .bind(at)
                    .bind(email)
                    .bind(self.service)
                    .bind(keep)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn replace_live(&mut self, email: &str, at: i64) -> $crate::db::DbResult<u64> {
                let done = sqlx::query($sql::REPLACE_LIVE)
                    .bind(at)
                    .bind(email)
                    .bind(self.service)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(done.rows_affected())
            }

            async fn insert_user(
                &mut self,
                email: &str,
                keys: &$crate::model::user::KeyState,
                node_id: i64,
                created_at: i64,
            ) -> $crate::db::DbResult<i64> {
                let query = sqlx::query($sql::INSERT_USER)
                    .bind(self.service)
                    .bind(email)
                    .bind(keys.generation)
                    .bind(keys.client_state.as_hex())
                    .bind(created_at)
                    .bind(node_id)
                    .bind(keys.keys_changed_at);
                $sql::inserted_uid(query, self.conn.conn()).await
            }

            async fn raise_keys(
                &mut self,
                uid: i64,
                keys: &$crate::model::user::KeyState,
            ) -> $crate::db::DbResult<()> {
                sqlx::query($sql::RAISE_KEYS)
                    .bind(keys.generation)
                    .bind(keys.keys_changed_at)
                    .bind(keys.keys_changed_at)
                    .bind(uid)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn raise_generation(
                &mut self,
                email: &str,
                generation: i64,
            ) -> $crate::db::DbResult<u64> {
                let done = sqlx::query($sql::RAISE_GENERATION)
                    .bind(generation)
                    .bind(email)
                    .bind(self.service)
                    .bind(generation)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(done.rows_affected())
            }

            async fn retire(&mut self, email: &str, at: i64) -> $crate::db::DbResult<u64> {
                let done = sqlx::query($sql::RETIRE)
                    .bind($crate::model::user::RETIRED_GENERATION)
                    .bind(at)
                    .bind(email)
                    .bind(self.service)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(done.rows_affected())
            }

            async fn delete_record(&mut self, uid: i64) -> $crate::db::DbResult<()> {
                sqlx::query($sql::DELETE_RECORD)
                    .bind(uid)
                    .bind(self.service)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn replaced_records(
                &mut self,
                before_ms: i64,
                limit: u64,
            ) -> $crate::db::DbResult<Vec<$crate::db::UserRecord>> {
                let rows = sqlx::query($sql::REPLACED_RECORDS)
                    .bind(self.service)
                    .bind(before_ms)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Self::records_of(&rows)
            }

            async fn count_accounts(&mut self) -> $crate::db::DbResult<u64> {
                let n: i64 = sqlx::query_scalar($sql::COUNT_ACCOUNTS)
                    .bind(self.service)
                    .bind(i64::MAX)
                    .fetch_one(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok($crate::db::session::count(n))
            }

            async fn count_on_node(&mut self, node_id: i64) -> $crate::db::DbResult<u64> {
                let n: i64 = sqlx::query_scalar($sql::COUNT_ON_NODE)
                    .bind(self.service)
                    .bind(node_id)
                    .fetch_one(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok($crate::db::session::count(n))
            }

            async fn nodes(&mut self) -> $crate::db::DbResult<Vec<$crate::db::Node>> {
                let rows = sqlx::query($sql::NODES)
                    .bind(self.service)
                    .fetch_all(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                rows.iter()
                    .map(|r| $crate::db::session::node_row(r).map_err($sql::classify))
                    .collect()
            }

            async fn node(&mut self, url: &str) -> $crate::db::DbResult<Option<$crate::db::Node>> {
                let row = sqlx::query($sql::NODE)
                    .bind(self.service)
                    .bind(url)
                    .fetch_optional(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                row.as_ref()
                    .map(|r| $crate::db::session::node_row(r).map_err($sql::classify))
                    .transpose()
            }

            async fn add_load(&mut self, node_id: i64) -> $crate::db::DbResult<()> {
                sqlx::query($sql::ADD_LOAD)
                    .bind(node_id)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn set_available(
                &mut self,
                node_id: i64,
                available: i64,
            ) -> $crate::db::DbResult<()> {
                sqlx::query($sql::SET_AVAILABLE)
                    .bind($sql::int("available", available)?)
                    .bind(node_id)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn insert_node(
                &mut self,
                url: &str,
                capacity: i64,
                downed: bool,
                backoff: bool,
            ) -> $crate::db::DbResult<()> {
                let capacity = $sql::int("capacity", capacity)?;
                sqlx::query($sql::INSERT_NODE)
                    .bind(self.service)
                    .bind(url)
                    .bind(capacity)
                    .bind(capacity)
                    .bind($sql::Flag::from(downed))
                    .bind($sql::Flag::from(backoff))
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn update_node(
                &mut self,
                node_id: i64,
                update: &$crate::db::NodeUpdate,
            ) -> $crate::db::DbResult<()> {
                let capacity = update
                    .capacity
                    .map(|c| $sql::int("capacity", c))
                    .transpose()?;
                let available = update
                    .available
                    .map(|a| $sql::int("available", a))
                    .transpose()?;
                sqlx::query($sql::UPDATE_NODE)
                    .bind(update.node.as_deref())
                    .bind(capacity)
                    .bind(available)
                    .bind(update.downed.map($sql::Flag::from))
                    .bind(update.backoff.map($sql::Flag::from))
                    .bind(node_id)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn delete_node(&mut self, node_id: i64) -> $crate::db::DbResult<()> {
                sqlx::query($sql::DELETE_NODE)
                    .bind(node_id)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn save_health(
                &mut self,
                node_id: i64,
                health: &$crate::model::health::NodeHealth,
            ) -> $crate::db::DbResult<()> {
                sqlx::query($sql::SAVE_HEALTH)
                    .bind(node_id)
                    .bind(health.failures)
                    .bind(i64::from(health.down))
                    .bind(health.last_check.unwrap_or(0))
                    .bind(health.last_ok)
                    .bind(health.down_since)
                    .bind(health.last_error.as_deref())
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn forget_health(&mut self, node_id: i64) -> $crate::db::DbResult<()> {
                sqlx::query($sql::FORGET_HEALTH)
                    .bind(node_id)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn unassign(&mut self, node_id: i64, at: i64) -> $crate::db::DbResult<u64> {
                let done = sqlx::query($sql::UNASSIGN)
                    .bind(at)
                    .bind(self.service)
                    .bind(node_id)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(done.rows_affected())
            }

            async fn live_on_node(
                &mut self,
                node_id: i64,
                limit: u64,
            ) -> $crate::db::DbResult<Vec<$crate::db::UserRecord>> {
                let rows = sqlx::query($sql::LIVE_ON_NODE)
                    .bind(self.service)
                    .bind(node_id)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Self::records_of(&rows)
            }

            async fn move_record(&mut self, uid: i64, node_id: i64) -> $crate::db::DbResult<()> {
                sqlx::query($sql::MOVE_RECORD)
                    .bind(node_id)
                    .bind(uid)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn adopt_record(
                &mut self,
                record: &$crate::db::AdoptedRecord,
                node_id: i64,
            ) -> $crate::db::DbResult<bool> {
                let keys = &record.keys;
                let done = sqlx::query($sql::ADOPT_RECORD)
                    .bind(record.uid)
                    .bind(self.service)
                    .bind(&record.email)
                    .bind(keys.generation)
                    .bind(keys.client_state.as_hex())
                    .bind(record.created_at)
                    .bind(record.replaced_at)
                    .bind(node_id)
                    .bind(keys.keys_changed_at)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(done.rows_affected() > 0)
            }

            async fn set_record(
                &mut self,
                uid: i64,
                email: &str,
                replaced_at: Option<i64>,
                created_at: i64,
            ) -> $crate::db::DbResult<()> {
                sqlx::query($sql::SET_RECORD)
                    .bind(email)
                    .bind(replaced_at)
                    .bind(created_at)
                    .bind(uid)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn drop_revocations(&mut self, url: &str, uid: i64) -> $crate::db::DbResult<()> {
                sqlx::query($sql::DROP_REVOCATIONS)
                    .bind(self.service)
                    .bind(url)
                    .bind(uid)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn revoke_user(
                &mut self,
                email: &str,
                below: Option<i64>,
                at: i64,
            ) -> $crate::db::DbResult<()> {
                let sql = if below.is_some() {
                    $sql::REVOKE_OLDER
                } else {
                    $sql::REVOKE_LIVE
                };
                let mut query = sqlx::query(sql).bind(at).bind(email).bind(self.service);
                if let Some(below) = below {
                    query = query.bind(below);
                }
                query
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn revoke_node_users(
                &mut self,
                node_id: i64,
                at: i64,
            ) -> $crate::db::DbResult<()> {
                sqlx::query($sql::REVOKE_NODE_USERS)
                    .bind(at)
                    .bind(self.service)
                    .bind(node_id)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn raise_epoch(&mut self, url: &str, at: i64) -> $crate::db::DbResult<()> {
                sqlx::query($sql::RAISE_EPOCH)
                    .bind(self.service)
                    .bind(url)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                sqlx::query($sql::QUEUE_EPOCH)
                    .bind(at)
                    .bind(self.service)
                    .bind(url)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(())
            }

            async fn epoch(&mut self, url: &str) -> $crate::db::DbResult<i64> {
                let epoch: Option<i64> = sqlx::query_scalar($sql::EPOCH)
                    .bind(self.service)
                    .bind(url)
                    .fetch_optional(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(epoch.unwrap_or(0))
            }

            async fn revocation_nodes(&mut self) -> $crate::db::DbResult<Vec<String>> {
                sqlx::query_scalar($sql::REVOCATION_NODES)
                    .bind(self.service)
                    .fetch_all(self.conn.conn())
                    .await
                    .map_err($sql::classify)
            }

            async fn pending_revocations(
                &mut self,
                node: &str,
                limit: u64,
            ) -> $crate::db::DbResult<Vec<$crate::db::PendingRevocation>> {
                use sqlx::Row;
                let rows = sqlx::query($sql::PENDING_REVOCATIONS)
                    .bind(self.service)
                    .bind(node)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::db::PendingRevocation {
                            id: row.try_get("id")?,
                            uid: row.try_get("uid")?,
                            epoch: row.try_get("epoch")?,
                            created_at: row.try_get("created_at")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err($sql::classify)
            }

            async fn forget_revocations(&mut self, ids: &[i64]) -> $crate::db::DbResult<()> {
                for chunk in ids.chunks(200) {
                    let mut sql = sqlx::QueryBuilder::<$db>::new($sql::FORGET_REVOCATIONS);
                    let mut list = sql.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    sql.push(")");
                    sql.build()
                        .execute(self.conn.conn())
                        .await
                        .map_err($sql::classify)?;
                }
                Ok(())
            }

            async fn accounts(&mut self) -> $crate::db::DbResult<Vec<String>> {
                sqlx::query_scalar($sql::ACCOUNTS)
                    .bind(self.service)
                    .bind(i64::MAX)
                    .fetch_all(self.conn.conn())
                    .await
                    .map_err($sql::classify)
            }

            async fn access_entries(&mut self) -> $crate::db::DbResult<Vec<String>> {
                sqlx::query_scalar($sql::ACCESS_ENTRIES)
                    .bind(self.service)
                    .fetch_all(self.conn.conn())
                    .await
                    .map_err($sql::classify)
            }

            async fn insert_access_entry(
                &mut self,
                entry: &str,
                at: i64,
            ) -> $crate::db::DbResult<bool> {
                let done = sqlx::query($sql::INSERT_ACCESS_ENTRY)
                    .bind(self.service)
                    .bind(entry)
                    .bind(at)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_access_entry(&mut self, entry: &str) -> $crate::db::DbResult<bool> {
                let done = sqlx::query($sql::DELETE_ACCESS_ENTRY)
                    .bind(self.service)
                    .bind(entry)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                Ok(done.rows_affected() > 0)
            }

            async fn max_users(&mut self) -> $crate::db::DbResult<Option<Option<i64>>> {
                sqlx::query_scalar($sql::MAX_USERS)
                    .bind(self.service)
                    .fetch_optional(self.conn.conn())
                    .await
                    .map_err($sql::classify)
            }

            async fn set_max_users(
                &mut self,
                max_users: Option<Option<i64>>,
            ) -> $crate::db::DbResult<()> {
                sqlx::query($sql::FORGET_MAX_USERS)
                    .bind(self.service)
                    .execute(self.conn.conn())
                    .await
                    .map_err($sql::classify)?;
                if let Some(max_users) = max_users {
                    sqlx::query($sql::SET_MAX_USERS)
                        .bind(self.service)
                        .bind(max_users)
                        .execute(self.conn.conn())
                        .await
                        .map_err($sql::classify)?;
                }
                Ok(())
            }
        }
    };
}

pub(super) use sql_session;
