//! Users and nodes behind one trait, in Mozilla's `services`/`nodes`/`users`
//! schema. Each method is one unit of work (one transaction); the rules
//! they apply (which node, what may change) live in [`crate::model`], the
//! transaction scripts once in `store`, so backends differ only in SQL
//! (the steps of their `session::Session`) and in how they keep
//! transactions apart (SQLite's single writer, the servers' row locks).

use std::sync::Arc;

use async_trait::async_trait;
use sync_common::db_url::{Backend, DatabaseUrl};

use crate::model::health::{CheckPolicy, NodeHealth};
use crate::model::keys::ClientState;
use crate::model::user::KeyState;

/// Operations that run to their end whatever the request does.
mod detached;
/// The seam between the scripts and a backend's SQL.
mod session;
/// The session's steps, written once for every dialect.
mod sql_session;
/// The operations as transaction scripts, for every backend.
mod store;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

/// The service every record belongs to.
pub const SYNC_SERVICE: &str = "sync-1.5";
/// How Mozilla's schema spells the endpoint of that service.
pub const SYNC_PATTERN: &str = "{node}/1.5/{uid}";

/// One row of `users`, with its node's URL and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub uid: i64,
    pub email: String,
    pub keys: KeyState,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub replaced_at: Option<i64>,
    pub node_id: i64,
    /// `None` when the node row no longer exists.
    pub node: Option<String>,
    pub node_downed: bool,
    /// The node's token epoch, minted into the user's tokens (ADR 0012).
    pub node_epoch: i64,
}

impl UserRecord {
    /// The node this record can be served from, if it is still usable.
    pub fn live_node(&self) -> Option<&str> {
        self.node.as_deref().filter(|_| !self.node_downed)
    }
}

/// A user record taken over from another deployment (`import`), uid and
/// all, so its data and its devices' tokens keep meaning the same user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptedRecord {
    pub uid: i64,
    pub email: String,
    pub keys: KeyState,
    pub created_at: i64,
    pub replaced_at: Option<i64>,
}

/// What adopting records did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Adopted {
    pub added: u64,
    /// Already here, from an earlier run.
    pub present: u64,
}

/// A user's current record and the client states of their older ones.
#[derive(Debug, Clone)]
pub struct UserHistory {
    pub current: UserRecord,
    /// States of replaced records that differ from the current one.
    pub old_client_states: Vec<ClientState>,
}

/// A storage node (a row of `nodes`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    pub id: i64,
    pub node: String,
    pub available: i64,
    pub current_load: i64,
    pub capacity: i64,
    pub downed: bool,
    pub backoff: bool,
    /// What the checks of its heartbeat found.
    pub health: NodeHealth,
}

impl Node {
    /// Whether the node may get users: not downed by the operator, and not
    /// down by the checks.
    pub fn usable(&self) -> bool {
        !self.downed && !self.health.down
    }
}

/// Changes to a node; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct NodeUpdate {
    pub node: Option<String>,
    pub capacity: Option<i64>,
    pub available: Option<i64>,
    pub downed: Option<bool>,
    pub backoff: Option<bool>,
}

/// A revocation waiting to reach its node (ADR 0012): every token of
/// `uid`, or every token minted before `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRevocation {
    pub id: i64,
    pub uid: Option<i64>,
    pub epoch: Option<i64>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// Whether an allocation that makes a new account respects the cap on
/// accounts (ADR 0014).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserCap {
    /// An operator's own placement: no cap.
    Ignored,
    /// The cap set at run time, else this configured one (`None`: none).
    Configured(Option<u64>),
}

/// Who may sync, as stored: run-time allowlist entries and cap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredAccess {
    pub entries: Vec<String>,
    /// `None`: the configured cap holds; `Some(None)`: no cap.
    pub max_users: Option<Option<u64>>,
}

impl StoredAccess {
    /// The cap in force: the one set at run time, else `configured`.
    pub fn cap(&self, configured: Option<u64>) -> Option<u64> {
        self.max_users.unwrap_or(configured)
    }
}

/// A storage failure, free of HTTP.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No node can take a new user, even after releasing capacity.
    #[error("no storage node has capacity for a new user")]
    NoNode,
    /// The server holds as many accounts as its cap allows (ADR 0014).
    #[error("the server has reached its cap of {0} users")]
    Full(u64),
    /// An operator named something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An operator asked for something the data forbids.
    #[error("{0}")]
    Invalid(String),
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("database error: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type DbResult<T> = Result<T, DbError>;

/// The tokenserver's storage operations.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Which backend this is (for logs and heartbeats).
    fn backend(&self) -> Backend;

    /// Succeeds when the database answers.
    async fn check(&self) -> DbResult<()>;

    /// The user's current record and history, or `None` for a new account.
    /// Older records left unreplaced by a race are marked replaced.
    async fn user(&self, email: &str) -> DbResult<Option<UserHistory>>;

    /// Every record of `email`, newest first (for operators).
    async fn user_records(&self, email: &str) -> DbResult<Vec<UserRecord>>;

    /// Creates a record for `email` on the best node (or on `node`, if
    /// given) and replaces the user's older records. `replacing` is the
    /// live record the caller saw (if any): when another request has made a
    /// different live record meanwhile, that one is returned instead, so
    /// racing first requests share one uid and no upload is orphaned.
    async fn allocate_user(
        &self,
        email: &str,
        keys: &KeyState,
        node: Option<&str>,
        replacing: Option<i64>,
        release_rate: f64,
        cap: UserCap,
    ) -> DbResult<UserRecord>;

    /// The user reset their keys: a new record on the same node as
    /// `current`, which is replaced along with any older ones. If a racing
    /// request already made a live record with these keys, that one is
    /// returned.
    async fn replace_keys(&self, current: &UserRecord, keys: &KeyState) -> DbResult<UserRecord>;

    /// Raises generation and keys_changed_at of one record; never lowers them.
    async fn raise_keys(&self, uid: i64, keys: &KeyState) -> DbResult<()>;

    /// Raises the generation of the user's live records (a password change).
    async fn raise_generation(&self, email: &str, generation: i64) -> DbResult<u64>;

    /// The account was deleted: its live records get the largest generation
    /// and are marked replaced.
    async fn retire_user(&self, email: &str) -> DbResult<u64>;

    /// Every node of the service.
    async fn nodes(&self) -> DbResult<Vec<Node>>;

    /// Adds a node with `capacity` slots (all available).
    async fn add_node(
        &self,
        url: &str,
        capacity: i64,
        downed: bool,
        backoff: bool,
    ) -> DbResult<Node>;

    /// Changes a node's settings.
    async fn update_node(&self, url: &str, update: &NodeUpdate) -> DbResult<Node>;

    /// Marks every live record on the node replaced, so its users get a
    /// new node at their next token request. Returns how many moved.
    async fn unassign_node(&self, url: &str) -> DbResult<u64>;

    /// Unassigns the node's users, then deletes the node.
    async fn remove_node(&self, url: &str) -> DbResult<u64>;

    /// Accounts not deleted; or, for one node, users with a live record there.
    async fn count_users(&self, node: Option<&str>) -> DbResult<u64>;

    /// Up to `limit` records replaced before `before_ms`, oldest first.
    async fn replaced_records(&self, before_ms: i64, limit: u64) -> DbResult<Vec<UserRecord>>;

    /// Makes sure no new record gets a uid at or below `uid` (a storage
    /// database may hold data of uids this database has forgotten).
    /// Returns whether the next uid had to move.
    async fn reserve_uids_through(&self, uid: i64) -> DbResult<bool>;

    /// Deletes one (replaced) record.
    async fn delete_record(&self, uid: i64) -> DbResult<()>;

    /// Up to `limit` users with a live record on the node, by uid.
    async fn users_on_node(&self, url: &str, limit: u64) -> DbResult<Vec<UserRecord>>;

    /// The user's data was copied to node `to` (ADR 0013): their live
    /// record `uid` points there from now on, its tokens for the old node
    /// are revoked, and any revocation of it waiting for `to` is dropped.
    /// `Invalid` if `uid` is no longer live on `from`.
    async fn switch_node(&self, uid: i64, from: &str, to: &str) -> DbResult<UserRecord>;

    /// Takes over `records` (another deployment's, uids kept) onto node
    /// `node`, in one transaction, and reserves their uids; a record whose
    /// uid is here already must be the same user's (a re-run), else
    /// `Invalid` and nothing is added.
    async fn adopt_records(&self, records: &[AdoptedRecord], node: &str) -> DbResult<Adopted>;

    /// A record for `email` that serves nobody yet, for an import to fill
    /// before it goes live: under [`staged_email`], already replaced (so
    /// no token request and no count sees it), on node `node` or the one
    /// an allocation would pick.
    async fn stage_record(
        &self,
        email: &str,
        keys: &KeyState,
        node: Option<&str>,
        release_rate: f64,
    ) -> DbResult<UserRecord>;

    /// Makes the staged record `uid` the live record of `email`, raised to
    /// the live one's generation: the live record is replaced and its
    /// tokens revoked. `Invalid` unless the live record is still
    /// `replacing` (`None`: still none) with the staged one's keys.
    async fn promote_record(
        &self,
        uid: i64,
        email: &str,
        replacing: Option<i64>,
    ) -> DbResult<UserRecord>;

    /// Records a check of node `node_id`'s heartbeat at `at`, judged by
    /// `policy`; returns what the node's health is now.
    async fn record_node_check(
        &self,
        node_id: i64,
        outcome: Result<(), String>,
        at: i64,
        policy: CheckPolicy,
    ) -> DbResult<NodeHealth>;

    /// Raises the node's token epoch: every token minted for it so far is
    /// refused once the node hears of it. Returns the new epoch.
    async fn revoke_node_tokens(&self, url: &str) -> DbResult<i64>;

    /// Node URLs with revocations waiting to reach them.
    async fn revocation_nodes(&self) -> DbResult<Vec<String>>;

    /// Up to `limit` of the node's waiting revocations, oldest first.
    async fn pending_revocations(&self, node: &str, limit: u64)
        -> DbResult<Vec<PendingRevocation>>;

    /// Drops delivered revocations.
    async fn forget_revocations(&self, ids: &[i64]) -> DbResult<()>;

    /// The emails of every account not deleted, sorted.
    async fn accounts(&self) -> DbResult<Vec<String>>;

    /// The allowlist entries and cap set at run time (ADR 0014).
    async fn access(&self) -> DbResult<StoredAccess>;

    /// Adds allowlist entries (normalised) in one transaction, so a
    /// server never reads half of them; returns those that were there.
    async fn allow_accounts(&self, entries: &[String]) -> DbResult<Vec<String>>;

    /// Removes an allowlist entry; false if it was not there.
    async fn disallow_account(&self, entry: &str) -> DbResult<bool>;

    /// Sets the run-time cap: `Some(Some(n))` n accounts, `Some(None)` no
    /// cap, `None` the configured one.
    async fn set_max_users(&self, max_users: Option<Option<u64>>) -> DbResult<()>;
}

/// What the email of a staged record starts with until it goes live: no
/// FxA account's (those have no `:`); the account counts leave it out.
macro_rules! staged_prefix {
    () => {
        "staged-import:"
    };
}
pub(crate) use staged_prefix;

/// The email of a staged record for `email`.
pub fn staged_email(email: &str) -> String {
    format!(concat!(staged_prefix!(), "{}"), email)
}

/// How the store uses its database.
#[derive(Debug, Clone, Copy)]
pub struct StoreSettings {
    /// Most open connections.
    pub max_connections: u32,
    /// How long a write waits for a lock held elsewhere (SQLite: the
    /// database's; PostgreSQL and MySQL: a row's, MySQL in whole seconds)
    /// before the request gets 503.
    pub busy_timeout_ms: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout_ms: 5_000,
        }
    }
}

/// Opens the database named by `url` and applies its dialect's migrations
/// (an SQLite file is created if missing; a server's database must exist).
/// This is the only place that chooses a backend.
pub async fn open(url: &DatabaseUrl, settings: StoreSettings) -> DbResult<Arc<dyn TokenStore>> {
    let backend = url.backend().map_err(|e| DbError::Other(e.into()))?;
    let store: store::SqlStore = match backend {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => {
            store::SqlStore::new(sqlite::SqliteConnector::open(url, settings).await?)
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            store::SqlStore::new(postgres::PgConnector::open(url, settings).await?)
        }
        #[cfg(feature = "mysql")]
        Backend::MySql => store::SqlStore::new(mysql::MySqlConnector::open(url, settings).await?),
        #[allow(unreachable_patterns)]
        other => return Err(DbError::Other(other.not_built(url).into())),
    };
    Ok(Arc::new(detached::Detached::new(Arc::new(store))))
}

/// Milliseconds since the epoch, as the schema stores times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
