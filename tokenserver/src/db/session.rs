//! The seam between the shared transaction scripts ([`super::store`]) and a
//! backend: a backend opens sessions ([`Connector`]) and runs its own SQL
//! for each small step inside one ([`Session`]). Nothing here knows a
//! protocol rule; nothing in the scripts knows a dialect.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Row, Type};
use sync_common::db_url::Backend;

use super::{AdoptedRecord, DbResult, Node, NodeUpdate, PendingRevocation, UserRecord};
use crate::model::health::NodeHealth;
use crate::model::keys::ClientState;
use crate::model::user::KeyState;

/// Opens sessions on one database.
#[async_trait]
pub trait Connector: Send + Sync {
    fn backend(&self) -> Backend;

    /// Steps on one pooled connection, each committed on its own.
    async fn plain(&self) -> DbResult<Box<dyn Session>>;

    /// One transaction, committed by [`Session::commit`] (dropped, it rolls
    /// back). SQLite's holds the database's write lock from the start; the
    /// servers' take row locks with [`Session::lock_nodes`] and
    /// [`Session::lock_user`].
    async fn write(&self) -> DbResult<Box<dyn Session>>;

    /// Makes sure no new record gets a uid at or below `uid`; says whether
    /// the next uid had to move. Each dialect keeps its counter elsewhere.
    async fn reserve_uids_through(&self, uid: i64) -> DbResult<bool>;
}

/// The steps of the scripts, each one statement of the backend's dialect.
/// Every step is scoped to the service the session was opened for.
#[async_trait]
pub trait Session: Send {
    /// Commits a transaction (nothing to do on a plain connection).
    async fn commit(self: Box<Self>) -> DbResult<()>;

    /// Waits until no other transaction allocates users or changes nodes,
    /// and keeps them waiting until commit, as SQLite's single writer does:
    /// node choice and `current_load` never work from a stale read.
    async fn lock_nodes(&mut self) -> DbResult<()>;

    /// Waits until no other transaction changes `email`'s records, and
    /// keeps them waiting until commit. Later steps see what the previous
    /// holder committed (the servers run these at READ COMMITTED).
    async fn lock_user(&mut self, email: &str) -> DbResult<()>;

    /// Touches the schema, not just the connection.
    async fn check(&mut self) -> DbResult<()>;

    /// Every record of `email`, newest first (the current record first).
    async fn records(&mut self, email: &str) -> DbResult<Vec<UserRecord>>;

    async fn record(&mut self, uid: i64) -> DbResult<UserRecord>;

    /// Marks `email`'s live records older than `keep` (smaller uids)
    /// replaced at `at`.
    async fn replace_others(&mut self, email: &str, keep: i64, at: i64) -> DbResult<()>;

    /// Marks `email`'s live records replaced at `at`.
    async fn replace_live(&mut self, email: &str, at: i64) -> DbResult<u64>;

    /// A new live record; returns its uid.
    async fn insert_user(
        &mut self,
        email: &str,
        keys: &KeyState,
        node_id: i64,
        created_at: i64,
    ) -> DbResult<i64>;

    /// Raises generation and keys_changed_at of one record, never lowers them.
    async fn raise_keys(&mut self, uid: i64, keys: &KeyState) -> DbResult<()>;

    /// Raises the generation of `email`'s live records.
    async fn raise_generation(&mut self, email: &str, generation: i64) -> DbResult<u64>;

    /// Gives `email`'s live records the largest generation and replaces them.
    async fn retire(&mut self, email: &str, at: i64) -> DbResult<u64>;

    async fn delete_record(&mut self, uid: i64) -> DbResult<()>;

    /// Up to `limit` records replaced before `before_ms`, oldest first.
    async fn replaced_records(&mut self, before_ms: i64, limit: u64) -> DbResult<Vec<UserRecord>>;

    /// Accounts whose records are not all retired.
    async fn count_accounts(&mut self) -> DbResult<u64>;

    /// Users with a live record on the node.
    async fn count_on_node(&mut self, node_id: i64) -> DbResult<u64>;

    /// Every node, by id.
    async fn nodes(&mut self) -> DbResult<Vec<Node>>;

    async fn node(&mut self, url: &str) -> DbResult<Option<Node>>;

    /// One more user on the node, one fewer available slot (never below 0).
    async fn add_load(&mut self, node_id: i64) -> DbResult<()>;

    async fn set_available(&mut self, node_id: i64, available: i64) -> DbResult<()>;

    /// A node with all `capacity` slots available and no users.
    async fn insert_node(
        &mut self,
        url: &str,
        capacity: i64,
        downed: bool,
        backoff: bool,
    ) -> DbResult<()>;

    async fn update_node(&mut self, node_id: i64, update: &NodeUpdate) -> DbResult<()>;

    async fn delete_node(&mut self, node_id: i64) -> DbResult<()>;

    /// Stores what the checks found of the node (`health` from
    /// [`Session::nodes`] or [`Session::node`] before).
    async fn save_health(&mut self, node_id: i64, health: &NodeHealth) -> DbResult<()>;

    async fn forget_health(&mut self, node_id: i64) -> DbResult<()>;

    /// Marks the live records on the node replaced at `at`.
    async fn unassign(&mut self, node_id: i64, at: i64) -> DbResult<u64>;

    // Migration (ADR 0013).
    /// Up to `limit` live records on the node, by uid.
    async fn live_on_node(&mut self, node_id: i64, limit: u64) -> DbResult<Vec<UserRecord>>;

    /// Points record `uid` at another node (its data moved there).
    async fn move_record(&mut self, uid: i64, node_id: i64) -> DbResult<()>;

    /// Inserts a record taken over from another deployment, with its uid,
    /// on node `node_id`; false (and nothing changed) if the uid exists.
    async fn adopt_record(&mut self, record: &AdoptedRecord, node_id: i64) -> DbResult<bool>;

    /// Gives record `uid` another email, replacement time and creation
    /// time: how an import's staged record is hidden, then made live.
    async fn set_record(
        &mut self,
        uid: i64,
        email: &str,
        replaced_at: Option<i64>,
        created_at: i64,
    ) -> DbResult<()>;

    /// Drops the node URL's waiting revocations of `uid` (it moves back).
    async fn drop_revocations(&mut self, url: &str, uid: i64) -> DbResult<()>;

    // Revocations (ADR 0012): queued in the transaction that makes them.
    /// Queues the revocation of `email`'s live records (those with a uid
    /// below `below`, if given) on their nodes.
    async fn revoke_user(&mut self, email: &str, below: Option<i64>, at: i64) -> DbResult<()>;

    /// Queues the revocation of every live record on the node.
    async fn revoke_node_users(&mut self, node_id: i64, at: i64) -> DbResult<()>;

    /// Raises the node URL's token epoch and queues the news.
    async fn raise_epoch(&mut self, url: &str, at: i64) -> DbResult<()>;

    /// The node URL's token epoch (0 before the first rise).
    async fn epoch(&mut self, url: &str) -> DbResult<i64>;

    async fn revocation_nodes(&mut self) -> DbResult<Vec<String>>;

    async fn pending_revocations(
        &mut self,
        node: &str,
        limit: u64,
    ) -> DbResult<Vec<PendingRevocation>>;

    async fn forget_revocations(&mut self, ids: &[i64]) -> DbResult<()>;

    /// The emails of the accounts [`Session::count_accounts`] counts.
    async fn accounts(&mut self) -> DbResult<Vec<String>>;

    /// The allowlist entries added at run time (ADR 0014), sorted.
    async fn access_entries(&mut self) -> DbResult<Vec<String>>;

    /// Adds an entry; false if it was there already.
    async fn insert_access_entry(&mut self, entry: &str, at: i64) -> DbResult<bool>;

    /// Removes an entry; false if it was not there.
    async fn delete_access_entry(&mut self, entry: &str) -> DbResult<bool>;

    /// The cap set at run time: `None` when none was (the configured one
    /// holds), `Some(None)` when it was lifted.
    async fn max_users(&mut self) -> DbResult<Option<Option<i64>>>;

    /// Sets the run-time cap (`None`: back to the configured one).
    async fn set_max_users(&mut self, max_users: Option<Option<i64>>) -> DbResult<()>;
}

/// A session's connection: a transaction, or a pooled connection whose
/// statements each commit on their own.
pub enum Handle<DB: Database> {
    Tx(sqlx::Transaction<'static, DB>),
    Plain(sqlx::pool::PoolConnection<DB>),
}

impl<DB: Database> Handle<DB> {
    pub fn conn(&mut self) -> &mut DB::Connection {
        match self {
            Handle::Tx(tx) => tx,
            Handle::Plain(conn) => conn,
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Handle::Tx(tx) => tx.commit().await,
            Handle::Plain(_) => Ok(()),
        }
    }
}

/// A user row joined with its node, as every dialect's user SELECT names
/// the columns (integers as BIGINT; `node` and `downed` NULL without a node).
pub fn user_record<'r, R>(row: &'r R) -> Result<UserRecord, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
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
        node_epoch: row.try_get("node_epoch")?,
    })
}

/// A node row, as every dialect's node SELECT names the columns (integers
/// as BIGINT), with its health (all NULL before the first check).
pub fn node_row<'r, R>(row: &'r R) -> Result<Node, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Node {
        id: row.try_get("id")?,
        node: row.try_get("node")?,
        available: row.try_get("available")?,
        current_load: row.try_get("current_load")?,
        capacity: row.try_get("capacity")?,
        downed: row.try_get::<i64, _>("downed")? != 0,
        backoff: row.try_get::<i64, _>("backoff")? != 0,
        health: NodeHealth {
            down: row.try_get::<Option<i64>, _>("health_down")?.unwrap_or(0) != 0,
            failures: row
                .try_get::<Option<i64>, _>("health_failures")?
                .unwrap_or(0),
            last_check: row.try_get("health_last_check")?,
            last_ok: row.try_get("health_last_ok")?,
            down_since: row.try_get("health_down_since")?,
            last_error: row.try_get("health_last_error")?,
        },
    })
}

/// A value for one of Mozilla's INT columns on the servers (SQLite's
/// integers are 64-bit): too large is the operator's mistake, not a 500.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub fn int_column(name: &str, value: i64) -> DbResult<i32> {
    i32::try_from(value).map_err(|_| {
        super::DbError::Invalid(format!(
            "{name} {value} is out of range (at most {})",
            i32::MAX
        ))
    })
}

/// A count from the database, never negative.
pub fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
