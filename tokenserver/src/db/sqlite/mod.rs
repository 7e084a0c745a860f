//! The embedded SQLite backend: WAL mode, writes in `BEGIN IMMEDIATE`
//! transactions (they hold the write lock from the start, so they never
//! fail half-way on an upgrade), reads from a small pool. `queries.rs`
//! holds the SQL and row mapping; this file, the store's operations.

mod queries;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use sync_common::db_url::{Backend, DatabaseUrl};

use super::{
    now_ms, DbError, DbResult, Node, NodeUpdate, StoreSettings, TokenStore, UserHistory,
    UserRecord, SYNC_SERVICE,
};
use crate::model::keys::ClientState;
use crate::model::user::KeyState;
use queries::{classify, node_row, user_record, NODE_COLUMNS, USER_COLUMNS};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The tokenserver database in an SQLite file.
pub struct SqliteStore {
    pool: SqlitePool,
    service: i64,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn open(url: &DatabaseUrl, settings: StoreSettings) -> DbResult<Self> {
        let busy_timeout = Duration::from_millis(settings.busy_timeout_ms);
        let (options, in_memory) = sync_common::sqlite::connect_options(url, busy_timeout)
            .map_err(|e| DbError::Other(e.into()))?;
        let pool = SqlitePoolOptions::new()
            // An in-memory database exists once per connection.
            .max_connections(if in_memory {
                1
            } else {
                settings.max_connections.max(1)
            })
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(classify)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| DbError::Other(Box::new(e)))?;
        let service = sqlx::query_scalar("SELECT id FROM services WHERE service = ?")
            .bind(SYNC_SERVICE)
            .fetch_one(&pool)
            .await
            .map_err(classify)?;
        Ok(Self { pool, service })
    }

    async fn begin_write(&self) -> DbResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(classify)
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn check(&self) -> DbResult<()> {
        // Touches the schema, not just the connection.
        sqlx::query("SELECT 1 FROM services WHERE id = ?")
            .bind(self.service)
            .fetch_one(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn user(&self, email: &str) -> DbResult<Option<UserHistory>> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        let records = self.records(&mut conn, email).await?;
        let Some((current, older)) = records.split_first() else {
            return Ok(None);
        };
        if older.iter().any(|r| r.replaced_at.is_none()) {
            // A race left two live records: the older ones lose.
            sqlx::query(
                "UPDATE users SET replaced_at = ? WHERE email = ? AND service = ? AND replaced_at IS NULL AND uid <> ?",
            )
            .bind(current.created_at)
            .bind(email)
            .bind(self.service)
            .bind(current.uid)
            .execute(&mut *conn)
            .await
            .map_err(classify)?;
        }
        let mut old_client_states: Vec<ClientState> = Vec::new();
        for state in older.iter().map(|r| &r.keys.client_state) {
            if *state != current.keys.client_state && !old_client_states.contains(state) {
                old_client_states.push(state.clone());
            }
        }
        Ok(Some(UserHistory {
            current: current.clone(),
            old_client_states,
        }))
    }

    async fn user_records(&self, email: &str) -> DbResult<Vec<UserRecord>> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        self.records(&mut conn, email).await
    }

    async fn allocate_user(
        &self,
        email: &str,
        keys: &KeyState,
        node: Option<&str>,
        replacing: Option<i64>,
        release_rate: f64,
    ) -> DbResult<UserRecord> {
        let mut tx = self.begin_write().await?;
        if let Some(winner) = self.live_record(&mut tx, email).await? {
            if Some(winner.uid) != replacing {
                return Ok(winner);
            }
        }
        let node_id = match node {
            Some(url) => self.node_by_url(&mut tx, url).await?.id,
            None => self.best_node(&mut tx, release_rate).await?,
        };
        sqlx::query(
            "UPDATE nodes SET current_load = current_load + 1, available = MAX(available - 1, 0) WHERE id = ?",
        )
        .bind(node_id)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        let now = now_ms();
        self.replace_live(&mut tx, email, now).await?;
        let uid = self.insert_user(&mut tx, email, keys, node_id, now).await?;
        let record = self.record(&mut tx, uid).await?;
        tx.commit().await.map_err(classify)?;
        Ok(record)
    }

    async fn replace_keys(&self, current: &UserRecord, keys: &KeyState) -> DbResult<UserRecord> {
        let mut tx = self.begin_write().await?;
        if let Some(winner) = self.live_record(&mut tx, &current.email).await? {
            if winner.uid != current.uid && winner.keys.client_state == keys.client_state {
                return Ok(winner);
            }
        }
        let now = now_ms();
        self.replace_live(&mut tx, &current.email, now).await?;
        let uid = self
            .insert_user(&mut tx, &current.email, keys, current.node_id, now)
            .await?;
        let record = self.record(&mut tx, uid).await?;
        tx.commit().await.map_err(classify)?;
        Ok(record)
    }

    async fn raise_keys(&self, uid: i64, keys: &KeyState) -> DbResult<()> {
        sqlx::query(
            "UPDATE users SET generation = MAX(generation, ?1), \
             keys_changed_at = CASE WHEN keys_changed_at IS NULL OR keys_changed_at < ?2 THEN ?2 ELSE keys_changed_at END \
             WHERE uid = ?3",
        )
        .bind(keys.generation)
        .bind(keys.keys_changed_at)
        .bind(uid)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn raise_generation(&self, email: &str, generation: i64) -> DbResult<u64> {
        let done = sqlx::query(
            "UPDATE users SET generation = ?1 WHERE email = ?2 AND service = ?3 \
             AND replaced_at IS NULL AND generation < ?1",
        )
        .bind(generation)
        .bind(email)
        .bind(self.service)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn retire_user(&self, email: &str) -> DbResult<u64> {
        let done = sqlx::query(
            "UPDATE users SET generation = ?, replaced_at = ? WHERE email = ? AND service = ? AND replaced_at IS NULL",
        )
        .bind(i64::MAX)
        .bind(now_ms())
        .bind(email)
        .bind(self.service)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn nodes(&self) -> DbResult<Vec<Node>> {
        let sql = format!("{NODE_COLUMNS} WHERE service = ? ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(self.service)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.iter().map(node_row).collect()
    }

    async fn add_node(
        &self,
        url: &str,
        capacity: i64,
        downed: bool,
        backoff: bool,
    ) -> DbResult<Node> {
        let mut tx = self.begin_write().await?;
        if self.node_by_url(&mut tx, url).await.is_ok() {
            return Err(DbError::Invalid(format!("node {url} already exists")));
        }
        sqlx::query(
            "INSERT INTO nodes (service, node, available, current_load, capacity, downed, backoff) \
             VALUES (?, ?, ?, 0, ?, ?, ?)",
        )
        .bind(self.service)
        .bind(url)
        .bind(capacity)
        .bind(capacity)
        .bind(i64::from(downed))
        .bind(i64::from(backoff))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        let node = self.node_by_url(&mut tx, url).await?;
        tx.commit().await.map_err(classify)?;
        Ok(node)
    }

    async fn update_node(&self, url: &str, update: &NodeUpdate) -> DbResult<Node> {
        let mut tx = self.begin_write().await?;
        let node = self.node_by_url(&mut tx, url).await?;
        if let Some(new_url) = update.node.as_deref().filter(|u| *u != url) {
            if self.node_by_url(&mut tx, new_url).await.is_ok() {
                return Err(DbError::Invalid(format!("node {new_url} already exists")));
            }
        }
        sqlx::query(
            "UPDATE nodes SET node = COALESCE(?, node), capacity = COALESCE(?, capacity), \
             available = COALESCE(?, available), downed = COALESCE(?, downed), \
             backoff = COALESCE(?, backoff) WHERE id = ?",
        )
        .bind(update.node.as_deref())
        .bind(update.capacity)
        .bind(update.available)
        .bind(update.downed.map(i64::from))
        .bind(update.backoff.map(i64::from))
        .bind(node.id)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        let url = update.node.as_deref().unwrap_or(url);
        let node = self.node_by_url(&mut tx, url).await?;
        tx.commit().await.map_err(classify)?;
        Ok(node)
    }

    async fn unassign_node(&self, url: &str) -> DbResult<u64> {
        let mut tx = self.begin_write().await?;
        let node = self.node_by_url(&mut tx, url).await?;
        let moved = self.unassign(&mut tx, node.id).await?;
        tx.commit().await.map_err(classify)?;
        Ok(moved)
    }

    async fn remove_node(&self, url: &str) -> DbResult<u64> {
        let mut tx = self.begin_write().await?;
        let node = self.node_by_url(&mut tx, url).await?;
        let moved = self.unassign(&mut tx, node.id).await?;
        sqlx::query("DELETE FROM nodes WHERE id = ?")
            .bind(node.id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(moved)
    }

    async fn count_users(&self, node: Option<&str>) -> DbResult<u64> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        let node_id = match node {
            Some(url) => Some(self.node_by_url(&mut conn, url).await?.id),
            None => None,
        };
        let count: i64 = match node_id {
            // On a node: the users with a live record there.
            Some(id) => sqlx::query_scalar(
                "SELECT COUNT(DISTINCT email) FROM users \
                 WHERE service = ? AND nodeid = ? AND replaced_at IS NULL",
            )
            .bind(self.service)
            .bind(id),
            // Overall: every account not deleted (a deleted account has a
            // retired record; users waiting to move after a drain count).
            None => sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT email FROM users WHERE service = ? \
                 GROUP BY email HAVING MAX(generation) < ?) AS accounts",
            )
            .bind(self.service)
            .bind(i64::MAX),
        }
        .fetch_one(&mut *conn)
        .await
        .map_err(classify)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn replaced_records(&self, before_ms: i64, limit: u64) -> DbResult<Vec<UserRecord>> {
        let sql = format!(
            "{USER_COLUMNS} WHERE u.service = ? AND u.replaced_at IS NOT NULL AND u.replaced_at < ? \
             ORDER BY u.replaced_at, u.uid LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(self.service)
            .bind(before_ms)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.iter().map(user_record).collect()
    }

    async fn reserve_uids_through(&self, uid: i64) -> DbResult<bool> {
        // AUTOINCREMENT draws uids above sqlite_sequence's `seq` for users
        // (and above every uid in the table). An adopted table without it
        // cannot keep a reservation.
        let mut tx = self.begin_write().await?;
        let schema: String = sqlx::query_scalar(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        if !schema.to_ascii_uppercase().contains("AUTOINCREMENT") {
            return Err(DbError::Invalid(
                "the users table does not use AUTOINCREMENT, so uids cannot be reserved".into(),
            ));
        }
        sqlx::query(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'users', 0 \
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'users')",
        )
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        let raised =
            sqlx::query("UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'users' AND seq < ?1")
                .bind(uid)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(raised.rows_affected() > 0)
    }

    async fn delete_record(&self, uid: i64) -> DbResult<()> {
        sqlx::query("DELETE FROM users WHERE uid = ? AND service = ?")
            .bind(uid)
            .bind(self.service)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }
}
