//! The PostgreSQL backend's SQL and its types, run by the shared session
//! ([`sql_session!`]). Mozilla's INT columns are INT4 here: SELECTs cast
//! them to BIGINT (the shared row mapping reads i64) and binds for them
//! are i32.

use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::{Postgres, Row};

use crate::db::session;
use crate::db::sql_session::sql_session;
use crate::db::staged_prefix;
use crate::db::{DbError, DbResult};
use sync_common::postgres::Failure;

/// The user columns [`crate::db::session::user_record`] reads.
macro_rules! select_users {
    () => {
        "SELECT u.uid, u.email, u.generation, u.client_state, u.created_at, \
         u.replaced_at, u.nodeid, u.keys_changed_at, \
         COALESCE(e.epoch, 0) AS node_epoch, n.node, \
         CAST(n.downed AS BIGINT) AS downed \
         FROM users u LEFT JOIN nodes n ON n.id = u.nodeid \
         LEFT JOIN node_epochs e ON e.service = u.service AND e.node = n.node"
    };
}

/// The node columns [`crate::db::session::node_row`] reads.
macro_rules! select_nodes {
    () => {
        "SELECT id, node, CAST(available AS BIGINT) AS available, \
         CAST(current_load AS BIGINT) AS current_load, \
         CAST(capacity AS BIGINT) AS capacity, CAST(downed AS BIGINT) AS downed, \
         CAST(backoff AS BIGINT) AS backoff, \
         h.failures AS health_failures, h.down AS health_down, \
         h.last_check AS health_last_check, h.last_ok AS health_last_ok, \
         h.down_since AS health_down_since, h.last_error AS health_last_error \
         FROM nodes LEFT JOIN node_health h ON h.nodeid = nodes.id"
    };
}

pub(super) const SERVICE_ID: &str = "SELECT id FROM services WHERE service = $1";
const CHECK: &str = "SELECT 1 FROM services WHERE id = $1";
/// Every transaction allocating users or changing nodes locks the
/// service's row first, so they run one at a time (as on SQLite).
const LOCK_NODES_SQL: &str = "SELECT id FROM services WHERE id = $1 FOR UPDATE";
/// A user's existing records, in one order for every locker; a new user
/// has none, but allocation holds the service's row too.
const LOCK_USER_SQL: &str =
    "SELECT uid FROM users WHERE email = $1 AND service = $2 ORDER BY uid FOR UPDATE";
/// Newest first: the current record is the first (Mozilla's order).
const USER_RECORDS: &str = concat!(
    select_users!(),
    " WHERE u.email = $1 AND u.service = $2 \
     ORDER BY u.generation DESC, u.created_at DESC, u.uid DESC"
);
const USER_RECORD: &str = concat!(select_users!(), " WHERE u.uid = $1");
const REPLACE_OTHERS: &str = "UPDATE users SET replaced_at = $1 \
     WHERE email = $2 AND service = $3 AND replaced_at IS NULL AND uid < $4";
const REPLACE_LIVE: &str = "UPDATE users SET replaced_at = $1 \
     WHERE email = $2 AND service = $3 AND replaced_at IS NULL";
const INSERT_USER: &str = "INSERT INTO users (service, email, generation, client_state, \
     created_at, replaced_at, nodeid, keys_changed_at) \
     VALUES ($1, $2, $3, $4, $5, NULL, $6, $7) RETURNING uid";
/// Binds: generation, keys_changed_at twice, uid.
const RAISE_KEYS: &str = "UPDATE users SET generation = GREATEST(generation, $1), \
     keys_changed_at = CASE WHEN keys_changed_at IS NULL OR keys_changed_at < $2 \
     THEN $3 ELSE keys_changed_at END WHERE uid = $4";
/// Binds: generation, email, service, generation.
const RAISE_GENERATION: &str = "UPDATE users SET generation = $1 \
     WHERE email = $2 AND service = $3 AND replaced_at IS NULL AND generation < $4";
const RETIRE: &str = "UPDATE users SET generation = $1, replaced_at = $2 \
     WHERE email = $3 AND service = $4 AND replaced_at IS NULL";
/// Never a live record (an import may have promoted it meanwhile).
const DELETE_RECORD: &str =
    "DELETE FROM users WHERE uid = $1 AND service = $2 AND replaced_at IS NOT NULL";
const REPLACED_RECORDS: &str = concat!(
    select_users!(),
    " WHERE u.service = $1 AND u.replaced_at IS NOT NULL AND u.replaced_at < $2 \
     ORDER BY u.replaced_at, u.uid LIMIT $3"
);
/// A deleted account has only retired records (generation = i64::MAX).
const COUNT_ACCOUNTS: &str = concat!(
    "SELECT COUNT(*) FROM (SELECT email FROM users WHERE service = $1 AND email NOT LIKE '",
    staged_prefix!(),
    "%' \
     GROUP BY email HAVING MAX(generation) < $2) AS accounts"
);
const COUNT_ON_NODE: &str = "SELECT COUNT(DISTINCT email) FROM users \
     WHERE service = $1 AND nodeid = $2 AND replaced_at IS NULL";
const NODES: &str = concat!(select_nodes!(), " WHERE service = $1 ORDER BY id");
const NODE: &str = concat!(select_nodes!(), " WHERE service = $1 AND node = $2");
const ADD_LOAD: &str = "UPDATE nodes SET current_load = current_load + 1, \
     available = GREATEST(available - 1, 0) WHERE id = $1";
const SET_AVAILABLE: &str = "UPDATE nodes SET available = $1 WHERE id = $2";
const INSERT_NODE: &str = "INSERT INTO nodes \
     (service, node, available, current_load, capacity, downed, backoff) \
     VALUES ($1, $2, $3, 0, $4, $5, $6)";
const UPDATE_NODE: &str = "UPDATE nodes SET node = COALESCE($1, node), \
     capacity = COALESCE($2, capacity), available = COALESCE($3, available), \
     downed = COALESCE($4, downed), backoff = COALESCE($5, backoff) WHERE id = $6";
const DELETE_NODE: &str = "DELETE FROM nodes WHERE id = $1";
const UNASSIGN: &str = "UPDATE users SET replaced_at = $1 \
     WHERE service = $2 AND nodeid = $3 AND replaced_at IS NULL";

// Node health, as the checks found it.
const SAVE_HEALTH: &str = "INSERT INTO node_health \
     (nodeid, failures, down, last_check, last_ok, down_since, last_error) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (nodeid) DO UPDATE SET failures = excluded.failures, \
     down = excluded.down, last_check = excluded.last_check, last_ok = excluded.last_ok, \
     down_since = excluded.down_since, last_error = excluded.last_error";
const FORGET_HEALTH: &str = "DELETE FROM node_health WHERE nodeid = $1";

// Migration (ADR 0013).
/// Live records on a node, by uid.
const LIVE_ON_NODE: &str = concat!(
    select_users!(),
    " WHERE u.service = $1 AND u.nodeid = $2 AND u.replaced_at IS NULL \
     ORDER BY u.uid LIMIT $3"
);
const MOVE_RECORD: &str = "UPDATE users SET nodeid = $1 WHERE uid = $2";
/// Binds: uid, service, email, generation, client_state, created_at,
/// replaced_at, nodeid, keys_changed_at; nothing when the uid exists.
const ADOPT_RECORD: &str = "INSERT INTO users (uid, service, email, generation, client_state, \
     created_at, replaced_at, nodeid, keys_changed_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (uid) DO NOTHING";
const SET_RECORD: &str =
    "UPDATE users SET email = $1, replaced_at = $2, created_at = $3 WHERE uid = $4";
const DROP_REVOCATIONS: &str =
    "DELETE FROM node_revocations WHERE service = $1 AND node = $2 AND uid = $3";

// Revocations (ADR 0012).
/// Binds: at, email, service.
const REVOKE_LIVE: &str = "INSERT INTO node_revocations (service, node, uid, created_at) \
     SELECT u.service, n.node, u.uid, $1 FROM users u JOIN nodes n ON n.id = u.nodeid \
     WHERE u.email = $2 AND u.service = $3 AND u.replaced_at IS NULL";
/// Binds: at, email, service, below.
const REVOKE_OLDER: &str = "INSERT INTO node_revocations (service, node, uid, created_at) \
     SELECT u.service, n.node, u.uid, $1 FROM users u JOIN nodes n ON n.id = u.nodeid \
     WHERE u.email = $2 AND u.service = $3 AND u.replaced_at IS NULL AND u.uid < $4";
/// Binds: at, service, node id.
const REVOKE_NODE_USERS: &str = "INSERT INTO node_revocations (service, node, uid, created_at) \
     SELECT u.service, n.node, u.uid, $1 FROM users u JOIN nodes n ON n.id = u.nodeid \
     WHERE u.service = $2 AND u.nodeid = $3 AND u.replaced_at IS NULL";
/// Binds: at, service, node.
const QUEUE_EPOCH: &str = "INSERT INTO node_revocations (service, node, epoch, created_at) \
     SELECT service, node, epoch, $1 FROM node_epochs WHERE service = $2 AND node = $3";
const REVOCATION_NODES: &str = "SELECT DISTINCT node FROM node_revocations WHERE service = $1";
/// Oldest first.
const PENDING_REVOCATIONS: &str = "SELECT id, uid, epoch, created_at FROM node_revocations \
     WHERE service = $1 AND node = $2 ORDER BY id LIMIT $3";
/// Binds: service, node.
const RAISE_EPOCH: &str = "INSERT INTO node_epochs (service, node, epoch) VALUES ($1, $2, 1) \
     ON CONFLICT (service, node) DO UPDATE SET epoch = node_epochs.epoch + 1";
const EPOCH: &str = "SELECT epoch FROM node_epochs WHERE service = $1 AND node = $2";
const FORGET_REVOCATIONS: &str = "DELETE FROM node_revocations WHERE id IN (";

pub(super) const LOCK_NODES: Option<&str> = Some(LOCK_NODES_SQL);
pub(super) const LOCK_USER: Option<&str> = Some(LOCK_USER_SQL);

pub(super) type Service = i32;
pub(super) type Flag = i32;

pub(super) fn int(name: &str, value: i64) -> DbResult<i32> {
    session::int_column(name, value)
}

pub(super) async fn inserted_uid(
    query: sqlx::query::Query<'_, Postgres, PgArguments>,
    conn: &mut PgConnection,
) -> DbResult<i64> {
    let row = query.fetch_one(conn).await.map_err(classify)?;
    row.try_get(0).map_err(classify)
}

// Who may sync (ADR 0014).
/// Accounts not deleted, as [`COUNT_ACCOUNTS`] counts them.
const ACCOUNTS: &str = concat!(
    "SELECT email FROM users WHERE service = $1 AND email NOT LIKE '",
    staged_prefix!(),
    "%' \
     GROUP BY email HAVING MAX(generation) < $2 ORDER BY email"
);
const ACCESS_ENTRIES: &str = "SELECT entry FROM access_entries WHERE service = $1 ORDER BY entry";
/// Binds: service, entry, created_at; nothing when the entry exists.
const INSERT_ACCESS_ENTRY: &str = "INSERT INTO access_entries (service, entry, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const DELETE_ACCESS_ENTRY: &str = "DELETE FROM access_entries WHERE service = $1 AND entry = $2";
const MAX_USERS: &str = "SELECT max_users FROM access_limits WHERE service = $1";
const FORGET_MAX_USERS: &str = "DELETE FROM access_limits WHERE service = $1";
const SET_MAX_USERS: &str = "INSERT INTO access_limits (service, max_users) VALUES ($1, $2)";

sql_session!(PgSession, Postgres, self);

/// Lock timeouts, deadlocks and serialization failures (another writer),
/// pool timeouts and lost connections are an outage (503); anything else
/// is a bug (500).
pub(super) fn classify(err: sqlx::Error) -> DbError {
    match sync_common::postgres::failure(&err) {
        Failure::Busy | Failure::Outage => DbError::Unavailable(Box::new(err)),
        Failure::Other => DbError::Other(Box::new(err)),
    }
}
