//! The MySQL/MariaDB backend's SQL and its types, run by the shared
//! session ([`sql_session!`]).
//! Placeholders are positional (`?`), so a value used twice is bound twice.
//!
//! InnoDB locks the index entries a statement walks, then the rows. Every
//! statement that locks a user's records by email walks `lookup_idx`
//! (forced: on a small table the optimizer may walk `replaced_at_idx`
//! instead), so they all lock in the same order and never deadlock.

use sqlx::mysql::{MySqlArguments, MySqlConnection};
use sqlx::MySql;

use crate::db::session;
use crate::db::sql_session::sql_session;
use crate::db::staged_prefix;
use crate::db::{DbError, DbResult};
use sync_common::mysql::Failure;

/// The user columns [`crate::db::session::user_record`] reads.
macro_rules! select_users {
    () => {
        "SELECT u.uid, u.email, u.generation, u.client_state, u.created_at, \
         u.replaced_at, u.nodeid, u.keys_changed_at, \
         COALESCE(e.epoch, 0) AS node_epoch, n.node, n.downed \
         FROM users u LEFT JOIN nodes n ON n.id = u.nodeid \
         LEFT JOIN node_epochs e ON e.service = u.service AND e.node = n.node"
    };
}

/// The node columns [`crate::db::session::node_row`] reads.
macro_rules! select_nodes {
    () => {
        "SELECT id, node, available, current_load, capacity, downed, backoff, \
         h.failures AS health_failures, h.down AS health_down, \
         h.last_check AS health_last_check, h.last_ok AS health_last_ok, \
         h.down_since AS health_down_since, h.last_error AS health_last_error \
         FROM nodes LEFT JOIN node_health h ON h.nodeid = nodes.id"
    };
}

pub(super) const SERVICE_ID: &str = "SELECT id FROM services WHERE service = ?";
const CHECK: &str = "SELECT 1 FROM services WHERE id = ?";
/// Every transaction allocating users or changing nodes locks the
/// service's row first, so they run one at a time (as on SQLite).
const LOCK_NODES_SQL: &str = "SELECT id FROM services WHERE id = ? FOR UPDATE";
/// A user's existing records; a new user has none, but allocation holds
/// the service's row too.
const LOCK_USER_SQL: &str = "SELECT uid FROM users FORCE INDEX (lookup_idx) \
     WHERE email = ? AND service = ? FOR UPDATE";
/// Newest first: the current record is the first (Mozilla's order).
const USER_RECORDS: &str = concat!(
    select_users!(),
    " WHERE u.email = ? AND u.service = ? \
     ORDER BY u.generation DESC, u.created_at DESC, u.uid DESC"
);
const USER_RECORD: &str = concat!(select_users!(), " WHERE u.uid = ?");
const REPLACE_OTHERS: &str = "UPDATE users FORCE INDEX (lookup_idx) SET replaced_at = ? \
     WHERE email = ? AND service = ? AND replaced_at IS NULL AND uid < ?";
const REPLACE_LIVE: &str = "UPDATE users FORCE INDEX (lookup_idx) SET replaced_at = ? \
     WHERE email = ? AND service = ? AND replaced_at IS NULL";
const INSERT_USER: &str = "INSERT INTO users (service, email, generation, client_state, \
     created_at, replaced_at, nodeid, keys_changed_at) \
     VALUES (?, ?, ?, ?, ?, NULL, ?, ?)";
/// Binds: generation, keys_changed_at twice, uid.
const RAISE_KEYS: &str = "UPDATE users SET generation = GREATEST(generation, ?), \
     keys_changed_at = CASE WHEN keys_changed_at IS NULL OR keys_changed_at < ? \
     THEN ? ELSE keys_changed_at END WHERE uid = ?";
/// Binds: generation, email, service, generation.
const RAISE_GENERATION: &str = "UPDATE users FORCE INDEX (lookup_idx) SET generation = ? \
     WHERE email = ? AND service = ? AND replaced_at IS NULL AND generation < ?";
const RETIRE: &str = "UPDATE users FORCE INDEX (lookup_idx) \
     SET generation = ?, replaced_at = ? \
     WHERE email = ? AND service = ? AND replaced_at IS NULL";
/// Never a live record (an import may have promoted it meanwhile).
const DELETE_RECORD: &str =
    "DELETE FROM users WHERE uid = ? AND service = ? AND replaced_at IS NOT NULL";
const REPLACED_RECORDS: &str = concat!(
    select_users!(),
    " WHERE u.service = ? AND u.replaced_at IS NOT NULL AND u.replaced_at < ? \
     ORDER BY u.replaced_at, u.uid LIMIT ?"
);
/// A deleted account has only retired records (generation = i64::MAX).
const COUNT_ACCOUNTS: &str = concat!(
    "SELECT COUNT(*) FROM (SELECT email FROM users WHERE service = ? AND email NOT LIKE '",
    staged_prefix!(),
    "%' \
     GROUP BY email HAVING MAX(generation) < ?) AS accounts"
);
const COUNT_ON_NODE: &str = "SELECT COUNT(DISTINCT email) FROM users \
     WHERE service = ? AND nodeid = ? AND replaced_at IS NULL";
const NODES: &str = concat!(select_nodes!(), " WHERE service = ? ORDER BY id");
const NODE: &str = concat!(select_nodes!(), " WHERE service = ? AND node = ?");
const ADD_LOAD: &str = "UPDATE nodes SET current_load = current_load + 1, \
     available = GREATEST(available - 1, 0) WHERE id = ?";
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

// Node health, as the checks found it.
const SAVE_HEALTH: &str = "INSERT INTO node_health \
     (nodeid, failures, down, last_check, last_ok, down_since, last_error) \
     VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE failures = VALUES(failures), \
     down = VALUES(down), last_check = VALUES(last_check), last_ok = VALUES(last_ok), \
     down_since = VALUES(down_since), last_error = VALUES(last_error)";
const FORGET_HEALTH: &str = "DELETE FROM node_health WHERE nodeid = ?";

// Migration (ADR 0013).
/// Live records on a node, by uid.
const LIVE_ON_NODE: &str = concat!(
    select_users!(),
    " WHERE u.service = ? AND u.nodeid = ? AND u.replaced_at IS NULL \
     ORDER BY u.uid LIMIT ?"
);
const MOVE_RECORD: &str = "UPDATE users SET nodeid = ? WHERE uid = ?";
/// Binds: uid, service, email, generation, client_state, created_at,
/// replaced_at, nodeid, keys_changed_at; nothing when the uid exists.
/// (IGNORE: with FOUND_ROWS, which sqlx sets, an `ON DUPLICATE KEY` no-op
/// would count as a row.)
const ADOPT_RECORD: &str = "INSERT IGNORE INTO users (uid, service, email, generation, \
     client_state, created_at, replaced_at, nodeid, keys_changed_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
const SET_RECORD: &str =
    "UPDATE users SET email = ?, replaced_at = ?, created_at = ? WHERE uid = ?";
const DROP_REVOCATIONS: &str =
    "DELETE FROM node_revocations WHERE service = ? AND node = ? AND uid = ?";

// Revocations (ADR 0012).
/// Binds: at, email, service.
const REVOKE_LIVE: &str = "INSERT INTO node_revocations (service, node, uid, created_at) \
     SELECT u.service, n.node, u.uid, ? FROM users u JOIN nodes n ON n.id = u.nodeid \
     WHERE u.email = ? AND u.service = ? AND u.replaced_at IS NULL";
/// Binds: at, email, service, below.
const REVOKE_OLDER: &str = "INSERT INTO node_revocations (service, node, uid, created_at) \
     SELECT u.service, n.node, u.uid, ? FROM users u JOIN nodes n ON n.id = u.nodeid \
     WHERE u.email = ? AND u.service = ? AND u.replaced_at IS NULL AND u.uid < ?";
/// Binds: at, service, node id.
const REVOKE_NODE_USERS: &str = "INSERT INTO node_revocations (service, node, uid, created_at) \
     SELECT u.service, n.node, u.uid, ? FROM users u JOIN nodes n ON n.id = u.nodeid \
     WHERE u.service = ? AND u.nodeid = ? AND u.replaced_at IS NULL";
/// Binds: at, service, node.
const QUEUE_EPOCH: &str = "INSERT INTO node_revocations (service, node, epoch, created_at) \
     SELECT service, node, epoch, ? FROM node_epochs WHERE service = ? AND node = ?";
const REVOCATION_NODES: &str = "SELECT DISTINCT node FROM node_revocations WHERE service = ?";
/// Oldest first.
const PENDING_REVOCATIONS: &str = "SELECT id, uid, epoch, created_at FROM node_revocations \
     WHERE service = ? AND node = ? ORDER BY id LIMIT ?";
/// Binds: service, node.
const RAISE_EPOCH: &str = "INSERT INTO node_epochs (service, node, epoch) VALUES (?, ?, 1) \
     ON DUPLICATE KEY UPDATE epoch = epoch + 1";
const EPOCH: &str = "SELECT epoch FROM node_epochs WHERE service = ? AND node = ?";
const FORGET_REVOCATIONS: &str = "DELETE FROM node_revocations WHERE id IN (";

pub(super) const LOCK_NODES: Option<&str> = Some(LOCK_NODES_SQL);
pub(super) const LOCK_USER: Option<&str> = Some(LOCK_USER_SQL);

pub(super) type Service = i64;
pub(super) type Flag = i64;

pub(super) fn int(name: &str, value: i64) -> DbResult<i32> {
    session::int_column(name, value)
}

/// MySQL has no RETURNING: the uid is the statement's insert id.
pub(super) async fn inserted_uid(
    query: sqlx::query::Query<'_, MySql, MySqlArguments>,
    conn: &mut MySqlConnection,
) -> DbResult<i64> {
    let done = query.execute(conn).await.map_err(classify)?;
    i64::try_from(done.last_insert_id())
        .map_err(|_| DbError::Other("the new uid is out of range".into()))
}

// Who may sync (ADR 0014).
/// Accounts not deleted, as [`COUNT_ACCOUNTS`] counts them.
const ACCOUNTS: &str = concat!(
    "SELECT email FROM users WHERE service = ? AND email NOT LIKE '",
    staged_prefix!(),
    "%' \
     GROUP BY email HAVING MAX(generation) < ? ORDER BY email"
);
const ACCESS_ENTRIES: &str = "SELECT entry FROM access_entries WHERE service = ? ORDER BY entry";
/// Binds: service, entry, created_at; nothing when the entry exists.
const INSERT_ACCESS_ENTRY: &str =
    "INSERT IGNORE INTO access_entries (service, entry, created_at) VALUES (?, ?, ?)";
const DELETE_ACCESS_ENTRY: &str = "DELETE FROM access_entries WHERE service = ? AND entry = ?";
const MAX_USERS: &str = "SELECT max_users FROM access_limits WHERE service = ?";
const FORGET_MAX_USERS: &str = "DELETE FROM access_limits WHERE service = ?";
const SET_MAX_USERS: &str = "INSERT INTO access_limits (service, max_users) VALUES (?, ?)";

sql_session!(MySqlSession, MySql, self);

/// Lock wait timeouts and deadlocks (another writer), pool timeouts, lost
/// connections and a full disk are an outage (503); anything else is a
/// bug (500).
pub(super) fn classify(err: sqlx::Error) -> DbError {
    match sync_common::mysql::failure(&err) {
        Failure::Busy | Failure::Outage => DbError::Unavailable(Box::new(err)),
        Failure::Other => DbError::Other(Box::new(err)),
    }
}
