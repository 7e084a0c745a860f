//! The embedded SQLite backend: WAL mode, writes in `BEGIN IMMEDIATE`
//! transactions (they hold the write lock from the start, so they never
//! fail half-way on an upgrade), reads from a small pool.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};
use sync_common::db_url::{Backend, DatabaseUrl};

use super::{
    now_ms, DbError, DbResult, Node, NodeUpdate, StoreSettings, TokenStore, UserHistory,
    UserRecord, SYNC_SERVICE,
};
use crate::model::keys::ClientState;
use crate::model::node::{self, NodeLoad};
use crate::model::user::KeyState;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

const USER_COLUMNS: &str = "SELECT u.uid, u.email, u.generation, u.client_state, u.created_at, \
     u.replaced_at, u.nodeid, u.keys_changed_at, n.node, n.downed \
     FROM users u LEFT JOIN nodes n ON n.id = u.nodeid";
const NODE_COLUMNS: &str =
    "SELECT id, node, available, current_load, capacity, downed, backoff FROM nodes";
/// Newest first: the current record is the first (Mozilla's order).
const NEWEST_FIRST: &str = "ORDER BY u.generation DESC, u.created_at DESC, u.uid DESC";

/// The tokenserver database in an SQLite file.
pub struct SqliteStore {
    pool: SqlitePool,
    service: i64,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn open(url: &DatabaseUrl, settings: StoreSettings) -> DbResult<Self> {
        let options = SqliteConnectOptions::from_str(url.expose())
            .map_err(|e| DbError::Other(format!("invalid SQLite URL {url}: {e}").into()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_millis(settings.busy_timeout_ms));
        let in_memory = url.expose().contains(":memory:") || url.expose().contains("mode=memory");
        if !in_memory {
            sync_common::db_url::create_parent_dir(options.get_filename())
                .map_err(|e| DbError::Other(e.into()))?;
        }
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

    async fn records(&self, conn: &mut SqliteConnection, email: &str) -> DbResult<Vec<UserRecord>> {
        let sql = format!("{USER_COLUMNS} WHERE u.email = ? AND u.service = ? {NEWEST_FIRST}");
        let rows = sqlx::query(&sql)
            .bind(email)
            .bind(self.service)
            .fetch_all(conn)
            .await
            .map_err(classify)?;
        rows.iter().map(user_record).collect()
    }

    async fn record(&self, conn: &mut SqliteConnection, uid: i64) -> DbResult<UserRecord> {
        let sql = format!("{USER_COLUMNS} WHERE u.uid = ?");
        let row = sqlx::query(&sql)
            .bind(uid)
            .fetch_one(conn)
            .await
            .map_err(classify)?;
        user_record(&row)
    }

    /// The newest live record of `email`, if any.
    async fn live_record(
        &self,
        conn: &mut SqliteConnection,
        email: &str,
    ) -> DbResult<Option<UserRecord>> {
        let records = self.records(conn, email).await?;
        Ok(records.into_iter().find(|r| r.replaced_at.is_none()))
    }

    async fn node_by_url(&self, conn: &mut SqliteConnection, url: &str) -> DbResult<Node> {
        let sql = format!("{NODE_COLUMNS} WHERE service = ? AND node = ?");
        let row = sqlx::query(&sql)
            .bind(self.service)
            .bind(url)
            .fetch_optional(conn)
            .await
            .map_err(classify)?;
        row.as_ref()
            .map(node_row)
            .transpose()?
            .ok_or_else(|| DbError::NotFound(format!("no node {url}")))
    }

    /// The best node for a new user, releasing capacity if none has room.
    async fn best_node(&self, conn: &mut SqliteConnection, release_rate: f64) -> DbResult<i64> {
        let loads = self.node_loads(conn).await?;
        if let Some(id) = node::pick(&loads) {
            return Ok(id);
        }
        for (id, available) in node::release(&loads, release_rate) {
            sqlx::query("UPDATE nodes SET available = ? WHERE id = ?")
                .bind(available)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(classify)?;
        }
        node::pick(&self.node_loads(conn).await?).ok_or(DbError::NoNode)
    }

    async fn node_loads(&self, conn: &mut SqliteConnection) -> DbResult<Vec<NodeLoad>> {
        let sql = format!("{NODE_COLUMNS} WHERE service = ?");
        let rows = sqlx::query(&sql)
            .bind(self.service)
            .fetch_all(conn)
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|r| {
                let n = node_row(r)?;
                Ok(NodeLoad {
                    id: n.id,
                    available: n.available,
                    current_load: n.current_load,
                    capacity: n.capacity,
                    downed: n.downed,
                    backoff: n.backoff,
                })
            })
            .collect()
    }

    /// Marks the live records of `email` replaced at `now`.
    async fn replace_live(
        &self,
        conn: &mut SqliteConnection,
        email: &str,
        now: i64,
    ) -> DbResult<u64> {
        let done = sqlx::query(
            "UPDATE users SET replaced_at = ? WHERE email = ? AND service = ? AND replaced_at IS NULL",
        )
        .bind(now)
        .bind(email)
        .bind(self.service)
        .execute(conn)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn insert_user(
        &self,
        conn: &mut SqliteConnection,
        email: &str,
        keys: &KeyState,
        node_id: i64,
        now: i64,
    ) -> DbResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO users (service, email, generation, client_state, created_at, replaced_at, nodeid, keys_changed_at) \
             VALUES (?, ?, ?, ?, ?, NULL, ?, ?) RETURNING uid",
        )
        .bind(self.service)
        .bind(email)
        .bind(keys.generation)
        .bind(keys.client_state.as_hex())
        .bind(now)
        .bind(node_id)
        .bind(keys.keys_changed_at)
        .fetch_one(conn)
        .await
        .map_err(classify)
    }

    async fn unassign(&self, conn: &mut SqliteConnection, node_id: i64) -> DbResult<u64> {
        let done = sqlx::query(
            "UPDATE users SET replaced_at = ? WHERE service = ? AND nodeid = ? AND replaced_at IS NULL",
        )
        .bind(now_ms())
        .bind(self.service)
        .bind(node_id)
        .execute(conn)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
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

fn user_record(row: &SqliteRow) -> DbResult<UserRecord> {
    let get = || -> Result<UserRecord, sqlx::Error> {
        Ok(UserRecord {
            uid: row.try_get("uid")?,
            email: row.try_get("email")?,
            keys: KeyState {
                generation: row.try_get("generation")?,
                keys_changed_at: row.try_get("keys_changed_at")?,
                client_state: ClientState::from_stored(row.try_get::<String, _>("client_state")?),
            },
            created_at: row.try_get("created_at")?,
            replaced_at: row.try_get("replaced_at")?,
            node_id: row.try_get("nodeid")?,
            node: row.try_get("node")?,
            node_downed: row.try_get::<Option<i64>, _>("downed")?.unwrap_or(0) != 0,
        })
    };
    get().map_err(classify)
}

fn node_row(row: &SqliteRow) -> DbResult<Node> {
    let get = || -> Result<Node, sqlx::Error> {
        Ok(Node {
            id: row.try_get("id")?,
            node: row.try_get("node")?,
            available: row.try_get("available")?,
            current_load: row.try_get("current_load")?,
            capacity: row.try_get("capacity")?,
            downed: row.try_get::<i64, _>("downed")? != 0,
            backoff: row.try_get::<i64, _>("backoff")? != 0,
        })
    };
    get().map_err(classify)
}

/// A busy database, a pool timeout or an I/O failure is an outage (503);
/// anything else is a bug or corruption (500).
fn classify(err: sqlx::Error) -> DbError {
    match &err {
        sqlx::Error::Database(db) => {
            let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
            // BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN.
            if matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14) {
                DbError::Unavailable(Box::new(err))
            } else {
                DbError::Other(Box::new(err))
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            DbError::Unavailable(Box::new(err))
        }
        _ => DbError::Other(Box::new(err)),
    }
}
