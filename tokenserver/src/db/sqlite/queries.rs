//! The SQLite backend's SQL and the session steps that run it.

use async_trait::async_trait;
use sqlx::Sqlite;

use crate::db::session::{self, count, Handle, Session};
use crate::db::{DbError, DbResult, Node, NodeUpdate, UserRecord};
use crate::model::user::KeyState;
use sync_common::sqlite::Failure;

/// The user columns [`session::user_record`] reads.
macro_rules! select_users {
    () => {
        "SELECT u.uid, u.email, u.generation, u.client_state, u.created_at, \
         u.replaced_at, u.nodeid, u.keys_changed_at, n.node, n.downed \
         FROM users u LEFT JOIN nodes n ON n.id = u.nodeid"
    };
}

/// The node columns [`session::node_row`] reads.
macro_rules! select_nodes {
    () => {
        "SELECT id, node, available, current_load, capacity, downed, backoff FROM nodes"
    };
}

pub(super) const SERVICE_ID: &str = "SELECT id FROM services WHERE service = ?";
const CHECK: &str = "SELECT 1 FROM services WHERE id = ?";
/// Newest first: the current record is the first (Mozilla's order).
const USER_RECORDS: &str = concat!(
    select_users!(),
    " WHERE u.email = ? AND u.service = ? \
     ORDER BY u.generation DESC, u.created_at DESC, u.uid DESC"
);
const USER_RECORD: &str = concat!(select_users!(), " WHERE u.uid = ?");
const REPLACE_OTHERS: &str = "UPDATE users SET replaced_at = ? \
     WHERE email = ? AND service = ? AND replaced_at IS NULL AND uid < ?";
const REPLACE_LIVE: &str =
    "UPDATE users SET replaced_at = ? WHERE email = ? AND service = ? AND replaced_at IS NULL";
const INSERT_USER: &str = "INSERT INTO users (service, email, generation, client_state, \
     created_at, replaced_at, nodeid, keys_changed_at) \
     VALUES (?, ?, ?, ?, ?, NULL, ?, ?) RETURNING uid";
const RAISE_KEYS: &str = "UPDATE users SET generation = MAX(generation, ?1), \
     keys_changed_at = CASE WHEN keys_changed_at IS NULL OR keys_changed_at < ?2 \
     THEN ?2 ELSE keys_changed_at END WHERE uid = ?3";
const RAISE_GENERATION: &str =
    "UPDATE users SET generation = ?1 WHERE email = ?2 AND service = ?3 \
     AND replaced_at IS NULL AND generation < ?1";
const RETIRE: &str = "UPDATE users SET generation = ?, replaced_at = ? \
     WHERE email = ? AND service = ? AND replaced_at IS NULL";
const DELETE_RECORD: &str = "DELETE FROM users WHERE uid = ? AND service = ?";
const REPLACED_RECORDS: &str = concat!(
    select_users!(),
    " WHERE u.service = ? AND u.replaced_at IS NOT NULL AND u.replaced_at < ? \
     ORDER BY u.replaced_at, u.uid LIMIT ?"
);
/// A deleted account has only retired records (generation = i64::MAX).
const COUNT_ACCOUNTS: &str = "SELECT COUNT(*) FROM (SELECT email FROM users WHERE service = ? \
     GROUP BY email HAVING MAX(generation) < ?) AS accounts";
const COUNT_ON_NODE: &str = "SELECT COUNT(DISTINCT email) FROM users \
     WHERE service = ? AND nodeid = ? AND replaced_at IS NULL";
const NODES: &str = concat!(select_nodes!(), " WHERE service = ? ORDER BY id");
const NODE: &str = concat!(select_nodes!(), " WHERE service = ? AND node = ?");
const ADD_LOAD: &str = "UPDATE nodes SET current_load = current_load + 1, \
     available = MAX(available - 1, 0) WHERE id = ?";
const SET_AVAILABLE: &str = "UPDATE nodes SET available = ? WHERE id = ?";
const INSERT_NODE: &str = "INSERT INTO nodes \
     (service, node, available, current_load, capacity, downed, backoff) \
     VALUES (?, ?, ?, 0, ?, ?, ?)";
const UPDATE_NODE: &str = "UPDATE nodes SET node = COALESCE(?, node), \
     capacity = COALESCE(?, capacity), available = COALESCE(?, available), \
     downed = COALESCE(?, downed), backoff = COALESCE(?, backoff) WHERE id = ?";
const DELETE_NODE: &str = "DELETE FROM nodes WHERE id = ?";
const UNASSIGN: &str = "UPDATE users SET replaced_at = ? \
     WHERE service = ? AND nodeid = ? AND replaced_at IS NULL";

/// Steps on an SQLite connection or write transaction.
pub(super) struct SqliteSession {
    conn: Handle<Sqlite>,
    service: i64,
}

impl SqliteSession {
    pub(super) fn new(conn: Handle<Sqlite>, service: i64) -> Box<Self> {
        Box::new(Self { conn, service })
    }
}

#[async_trait]
impl Session for SqliteSession {
    async fn commit(self: Box<Self>) -> DbResult<()> {
        self.conn.commit().await.map_err(classify)
    }

    async fn lock_nodes(&mut self) -> DbResult<()> {
        // A write transaction holds the database's only write lock.
        Ok(())
    }

    async fn lock_user(&mut self, _email: &str) -> DbResult<()> {
        Ok(())
    }

    async fn check(&mut self) -> DbResult<()> {
        sqlx::query(CHECK)
            .bind(self.service)
            .fetch_one(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn records(&mut self, email: &str) -> DbResult<Vec<UserRecord>> {
        let rows = sqlx::query(USER_RECORDS)
            .bind(email)
            .bind(self.service)
            .fetch_all(self.conn.conn())
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|r| session::user_record(r).map_err(classify))
            .collect()
    }

    async fn record(&mut self, uid: i64) -> DbResult<UserRecord> {
        let row = sqlx::query(USER_RECORD)
            .bind(uid)
            .fetch_one(self.conn.conn())
            .await
            .map_err(classify)?;
        session::user_record(&row).map_err(classify)
    }

    async fn replace_others(&mut self, email: &str, keep: i64, at: i64) -> DbResult<()> {
        sqlx::query(REPLACE_OTHERS)
            .bind(at)
            .bind(email)
            .bind(self.service)
            .bind(keep)
            .execute(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn replace_live(&mut self, email: &str, at: i64) -> DbResult<u64> {
        let done = sqlx::query(REPLACE_LIVE)
            .bind(at)
            .bind(email)
            .bind(self.service)
            .execute(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn insert_user(
        &mut self,
        email: &str,
        keys: &KeyState,
        node_id: i64,
        created_at: i64,
    ) -> DbResult<i64> {
        sqlx::query_scalar(INSERT_USER)
            .bind(self.service)
            .bind(email)
            .bind(keys.generation)
            .bind(keys.client_state.as_hex())
            .bind(created_at)
            .bind(node_id)
            .bind(keys.keys_changed_at)
            .fetch_one(self.conn.conn())
            .await
            .map_err(classify)
    }

    async fn raise_keys(&mut self, uid: i64, keys: &KeyState) -> DbResult<()> {
        sqlx::query(RAISE_KEYS)
            .bind(keys.generation)
            .bind(keys.keys_changed_at)
            .bind(uid)
            .execute(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn raise_generation(&mut self, email: &str, generation: i64) -> DbResult<u64> {
        let done = sqlx::query(RAISE_GENERATION)
            .bind(generation)
            .bind(email)
            .bind(self.service)
            .execute(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn retire(&mut self, email: &str, at: i64) -> DbResult<u64> {
        let done = sqlx::query(RETIRE)
            .bind(i64::MAX)
            .bind(at)
            .bind(email)
            .bind(self.service)
            .execute(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn delete_record(&mut self, uid: i64) -> DbResult<()> {
        sqlx::query(DELETE_RECORD)
            .bind(uid)
            .bind(self.service)
            .execute(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn replaced_records(&mut self, before_ms: i64, limit: u64) -> DbResult<Vec<UserRecord>> {
        let rows = sqlx::query(REPLACED_RECORDS)
            .bind(self.service)
            .bind(before_ms)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.conn.conn())
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|r| session::user_record(r).map_err(classify))
            .collect()
    }

    async fn count_accounts(&mut self) -> DbResult<u64> {
        let n: i64 = sqlx::query_scalar(COUNT_ACCOUNTS)
            .bind(self.service)
            .bind(i64::MAX)
            .fetch_one(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(count(n))
    }

    async fn count_on_node(&mut self, node_id: i64) -> DbResult<u64> {
        let n: i64 = sqlx::query_scalar(COUNT_ON_NODE)
            .bind(self.service)
            .bind(node_id)
            .fetch_one(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(count(n))
    }

    async fn nodes(&mut self) -> DbResult<Vec<Node>> {
        let rows = sqlx::query(NODES)
            .bind(self.service)
            .fetch_all(self.conn.conn())
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|r| session::node_row(r).map_err(classify))
            .collect()
    }

    async fn node(&mut self, url: &str) -> DbResult<Option<Node>> {
        let row = sqlx::query(NODE)
            .bind(self.service)
            .bind(url)
            .fetch_optional(self.conn.conn())
            .await
            .map_err(classify)?;
        row.as_ref()
            .map(|r| session::node_row(r).map_err(classify))
            .transpose()
    }

    async fn add_load(&mut self, node_id: i64) -> DbResult<()> {
        sqlx::query(ADD_LOAD)
            .bind(node_id)
            .execute(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn set_available(&mut self, node_id: i64, available: i64) -> DbResult<()> {
        sqlx::query(SET_AVAILABLE)
            .bind(available)
            .bind(node_id)
            .execute(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn insert_node(
        &mut self,
        url: &str,
        capacity: i64,
        downed: bool,
        backoff: bool,
    ) -> DbResult<()> {
        sqlx::query(INSERT_NODE)
            .bind(self.service)
            .bind(url)
            .bind(capacity)
            .bind(capacity)
            .bind(i64::from(downed))
            .bind(i64::from(backoff))
            .execute(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn update_node(&mut self, node_id: i64, update: &NodeUpdate) -> DbResult<()> {
        sqlx::query(UPDATE_NODE)
            .bind(update.node.as_deref())
            .bind(update.capacity)
            .bind(update.available)
            .bind(update.downed.map(i64::from))
            .bind(update.backoff.map(i64::from))
            .bind(node_id)
            .execute(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn delete_node(&mut self, node_id: i64) -> DbResult<()> {
        sqlx::query(DELETE_NODE)
            .bind(node_id)
            .execute(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn unassign(&mut self, node_id: i64, at: i64) -> DbResult<u64> {
        let done = sqlx::query(UNASSIGN)
            .bind(at)
            .bind(self.service)
            .bind(node_id)
            .execute(self.conn.conn())
            .await
            .map_err(classify)?;
        Ok(done.rows_affected())
    }
}

/// A busy database, a pool timeout or an I/O failure is an outage (503);
/// anything else is a bug or corruption (500).
pub(super) fn classify(err: sqlx::Error) -> DbError {
    match sync_common::sqlite::failure(&err) {
        Failure::Busy | Failure::Outage => DbError::Unavailable(Box::new(err)),
        Failure::Other => DbError::Other(Box::new(err)),
    }
}
