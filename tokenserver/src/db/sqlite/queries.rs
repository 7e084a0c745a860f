//! The SQLite backend's SQL helpers and row mapping.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::SqliteStore;
use crate::db::{now_ms, DbError, DbResult, Node, UserRecord};
use crate::model::keys::ClientState;
use crate::model::node::{self, NodeLoad};
use crate::model::user::KeyState;
use sync_common::sqlite::Failure;

pub(super) const USER_COLUMNS: &str =
    "SELECT u.uid, u.email, u.generation, u.client_state, u.created_at, \
     u.replaced_at, u.nodeid, u.keys_changed_at, n.node, n.downed \
     FROM users u LEFT JOIN nodes n ON n.id = u.nodeid";
pub(super) const NODE_COLUMNS: &str =
    "SELECT id, node, available, current_load, capacity, downed, backoff FROM nodes";
/// Newest first: the current record is the first (Mozilla's order).
const NEWEST_FIRST: &str = "ORDER BY u.generation DESC, u.created_at DESC, u.uid DESC";

impl SqliteStore {
    pub(super) async fn records(
        &self,
        conn: &mut SqliteConnection,
        email: &str,
    ) -> DbResult<Vec<UserRecord>> {
        let sql = format!("{USER_COLUMNS} WHERE u.email = ? AND u.service = ? {NEWEST_FIRST}");
        let rows = sqlx::query(&sql)
            .bind(email)
            .bind(self.service)
            .fetch_all(conn)
            .await
            .map_err(classify)?;
        rows.iter().map(user_record).collect()
    }

    pub(super) async fn record(
        &self,
        conn: &mut SqliteConnection,
        uid: i64,
    ) -> DbResult<UserRecord> {
        let sql = format!("{USER_COLUMNS} WHERE u.uid = ?");
        let row = sqlx::query(&sql)
            .bind(uid)
            .fetch_one(conn)
            .await
            .map_err(classify)?;
        user_record(&row)
    }

    /// The newest live record of `email`, if any.
    pub(super) async fn live_record(
        &self,
        conn: &mut SqliteConnection,
        email: &str,
    ) -> DbResult<Option<UserRecord>> {
        let records = self.records(conn, email).await?;
        Ok(records.into_iter().find(|r| r.replaced_at.is_none()))
    }

    pub(super) async fn node_by_url(
        &self,
        conn: &mut SqliteConnection,
        url: &str,
    ) -> DbResult<Node> {
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
    pub(super) async fn best_node(
        &self,
        conn: &mut SqliteConnection,
        release_rate: f64,
    ) -> DbResult<i64> {
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

    pub(super) async fn node_loads(&self, conn: &mut SqliteConnection) -> DbResult<Vec<NodeLoad>> {
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
    pub(super) async fn replace_live(
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

    pub(super) async fn insert_user(
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

    pub(super) async fn unassign(
        &self,
        conn: &mut SqliteConnection,
        node_id: i64,
    ) -> DbResult<u64> {
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

pub(super) fn user_record(row: &SqliteRow) -> DbResult<UserRecord> {
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

pub(super) fn node_row(row: &SqliteRow) -> DbResult<Node> {
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
pub(super) fn classify(err: sqlx::Error) -> DbError {
    match sync_common::sqlite::failure(&err) {
        Failure::Busy | Failure::Outage => DbError::Unavailable(Box::new(err)),
        Failure::Other => DbError::Other(Box::new(err)),
    }
}
