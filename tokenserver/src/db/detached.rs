//! Every store operation on a task of its own, so it runs to its end
//! whatever the request does: a client that disconnects or a request that
//! hits its deadline drops only its wait for the answer, never a
//! transaction half-way (which would hand a connection back to the pool
//! inside a transaction and stop every later write).

use std::sync::Arc;

use async_trait::async_trait;
use sync_common::db_url::Backend;
use sync_common::telemetry::db::{Database, Outcome};

use super::{
    Adopted, AdoptedRecord, DbError, DbResult, Node, NodeUpdate, PendingRevocation, StoredAccess,
    TokenStore, UserCap, UserHistory, UserRecord,
};
use crate::model::health::{CheckPolicy, NodeHealth};
use crate::model::user::KeyState;

/// A [`TokenStore`] whose operations cannot be cancelled once started.
pub struct Detached {
    store: Arc<dyn TokenStore>,
    telemetry: Database,
}

impl Detached {
    pub fn new(store: Arc<dyn TokenStore>) -> Self {
        let telemetry = Database::new("tokenserver", store.backend().name());
        Self { store, telemetry }
    }

    /// Runs `operation` (named `name` in traces and metrics) on the inner
    /// store, on its own task.
    async fn run<T, F, Fut>(&self, name: &'static str, operation: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn TokenStore>) -> Fut,
        Fut: std::future::Future<Output = DbResult<T>> + Send + 'static,
    {
        let work = operation(self.store.clone());
        self.telemetry
            .detached(name, work, outcome, |e| DbError::Other(Box::new(e)))
            .await
    }
}

/// What an operation's result says about the database.
fn outcome<T>(result: &DbResult<T>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(e) => match e {
            DbError::Unavailable(_) => Outcome::Unavailable,
            DbError::Other(_) => Outcome::Failed,
            DbError::NoNode | DbError::Full(_) | DbError::NotFound(_) | DbError::Invalid(_) => {
                Outcome::Rejected
            }
        },
    }
}

#[async_trait]
impl TokenStore for Detached {
    fn backend(&self) -> Backend {
        self.store.backend()
    }

    async fn check(&self) -> DbResult<()> {
        self.run("check", |s| async move { s.check().await }).await
    }

    async fn user(&self, email: &str) -> DbResult<Option<UserHistory>> {
        let email = email.to_owned();
        self.run("user", |s| async move { s.user(&email).await })
            .await
    }

    async fn user_records(&self, email: &str) -> DbResult<Vec<UserRecord>> {
        let email = email.to_owned();
        self.run(
            "user_records",
            |s| async move { s.user_records(&email).await },
        )
        .await
    }

    async fn allocate_user(
        &self,
        email: &str,
        keys: &KeyState,
        node: Option<&str>,
        replacing: Option<i64>,
        release_rate: f64,
        cap: UserCap,
    ) -> DbResult<UserRecord> {
        let (email, keys, node) = (email.to_owned(), keys.clone(), node.map(str::to_owned));
        self.run("allocate_user", |s| async move {
            s.allocate_user(&email, &keys, node.as_deref(), replacing, release_rate, cap)
                .await
        })
        .await
    }

    async fn replace_keys(&self, current: &UserRecord, keys: &KeyState) -> DbResult<UserRecord> {
        let (current, keys) = (current.clone(), keys.clone());
        self.run("replace_keys", |s| async move {
            s.replace_keys(&current, &keys).await
        })
        .await
    }

    async fn raise_keys(&self, uid: i64, keys: &KeyState) -> DbResult<()> {
        let keys = keys.clone();
        self.run(
            "raise_keys",
            |s| async move { s.raise_keys(uid, &keys).await },
        )
        .await
    }

    async fn raise_generation(&self, email: &str, generation: i64) -> DbResult<u64> {
        let email = email.to_owned();
        self.run("raise_generation", |s| async move {
            s.raise_generation(&email, generation).await
        })
        .await
    }

    async fn retire_user(&self, email: &str) -> DbResult<u64> {
        let email = email.to_owned();
        self.run(
            "retire_user",
            |s| async move { s.retire_user(&email).await },
        )
        .await
    }

    async fn nodes(&self) -> DbResult<Vec<Node>> {
        self.run("nodes", |s| async move { s.nodes().await }).await
    }

    async fn add_node(
        &self,
        url: &str,
        capacity: i64,
        downed: bool,
        backoff: bool,
    ) -> DbResult<Node> {
        let url = url.to_owned();
        self.run("add_node", |s| async move {
            s.add_node(&url, capacity, downed, backoff).await
        })
        .await
    }

    async fn update_node(&self, url: &str, update: &NodeUpdate) -> DbResult<Node> {
        let (url, update) = (url.to_owned(), update.clone());
        self.run("update_node", |s| async move {
            s.update_node(&url, &update).await
        })
        .await
    }

    async fn unassign_node(&self, url: &str) -> DbResult<u64> {
        let url = url.to_owned();
        self.run(
            "unassign_node",
            |s| async move { s.unassign_node(&url).await },
        )
        .await
    }

    async fn remove_node(&self, url: &str) -> DbResult<u64> {
        let url = url.to_owned();
        self.run("remove_node", |s| async move { s.remove_node(&url).await })
            .await
    }

    async fn count_users(&self, node: Option<&str>) -> DbResult<u64> {
        let node = node.map(str::to_owned);
        self.run("count_users", |s| async move {
            s.count_users(node.as_deref()).await
        })
        .await
    }

    async fn replaced_records(&self, before_ms: i64, limit: u64) -> DbResult<Vec<UserRecord>> {
        self.run("replaced_records", |s| async move {
            s.replaced_records(before_ms, limit).await
        })
        .await
    }

    async fn reserve_uids_through(&self, uid: i64) -> DbResult<bool> {
        self.run("reserve_uids_through", |s| async move {
            s.reserve_uids_through(uid).await
        })
        .await
    }

    async fn delete_record(&self, uid: i64) -> DbResult<()> {
        self.run(
            "delete_record",
            |s| async move { s.delete_record(uid).await },
        )
        .await
    }

    async fn users_on_node(&self, url: &str, limit: u64) -> DbResult<Vec<UserRecord>> {
        let url = url.to_owned();
        self.run("users_on_node", |s| async move {
            s.users_on_node(&url, limit).await
        })
        .await
    }

    async fn switch_node(&self, uid: i64, from: &str, to: &str) -> DbResult<UserRecord> {
        let (from, to) = (from.to_owned(), to.to_owned());
        self.run("switch_node", |s| async move {
            s.switch_node(uid, &from, &to).await
        })
        .await
    }

    async fn adopt_records(&self, records: &[AdoptedRecord], node: &str) -> DbResult<Adopted> {
        let (records, node) = (records.to_vec(), node.to_owned());
        self.run("adopt_records", |s| async move {
            s.adopt_records(&records, &node).await
        })
        .await
    }

    async fn stage_record(
        &self,
        email: &str,
        keys: &KeyState,
        node: Option<&str>,
        release_rate: f64,
    ) -> DbResult<UserRecord> {
        let (email, keys, node) = (email.to_owned(), keys.clone(), node.map(str::to_owned));
        self.run("stage_record", |s| async move {
            s.stage_record(&email, &keys, node.as_deref(), release_rate)
                .await
        })
        .await
    }

    async fn promote_record(
        &self,
        uid: i64,
        email: &str,
        replacing: Option<i64>,
    ) -> DbResult<UserRecord> {
        let email = email.to_owned();
        self.run("promote_record", |s| async move {
            s.promote_record(uid, &email, replacing).await
        })
        .await
    }

    async fn record_node_check(
        &self,
        node_id: i64,
        outcome: Result<(), String>,
        at: i64,
        policy: CheckPolicy,
    ) -> DbResult<NodeHealth> {
        self.run("record_node_check", |s| async move {
            s.record_node_check(node_id, outcome, at, policy).await
        })
        .await
    }

    async fn revoke_node_tokens(&self, url: &str) -> DbResult<i64> {
        let url = url.to_owned();
        self.run("revoke_node_tokens", |s| async move {
            s.revoke_node_tokens(&url).await
        })
        .await
    }

    async fn revocation_nodes(&self) -> DbResult<Vec<String>> {
        self.run(
            "revocation_nodes",
            |s| async move { s.revocation_nodes().await },
        )
        .await
    }

    async fn pending_revocations(
        &self,
        node: &str,
        limit: u64,
    ) -> DbResult<Vec<PendingRevocation>> {
        let node = node.to_owned();
        self.run("pending_revocations", |s| async move {
            s.pending_revocations(&node, limit).await
        })
        .await
    }

    async fn forget_revocations(&self, ids: &[i64]) -> DbResult<()> {
        let ids = ids.to_vec();
        self.run("forget_revocations", |s| async move {
            s.forget_revocations(&ids).await
        })
        .await
    }

    async fn accounts(&self) -> DbResult<Vec<String>> {
        self.run("accounts", |s| async move { s.accounts().await })
            .await
    }

    async fn access(&self) -> DbResult<StoredAccess> {
        self.run("access", |s| async move { s.access().await })
            .await
    }

    async fn allow_accounts(&self, entries: &[String]) -> DbResult<Vec<String>> {
        let entries = entries.to_vec();
        self.run("allow_accounts", |s| async move {
            s.allow_accounts(&entries).await
        })
        .await
    }

    async fn disallow_account(&self, entry: &str) -> DbResult<bool> {
        let entry = entry.to_owned();
        self.run("disallow_account", |s| async move {
            s.disallow_account(&entry).await
        })
        .await
    }

    async fn set_max_users(&self, max_users: Option<Option<u64>>) -> DbResult<()> {
        self.run("set_max_users", |s| async move {
            s.set_max_users(max_users).await
        })
        .await
    }
}
