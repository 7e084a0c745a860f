//! The store's operations as transaction scripts, written once for every
//! backend over [`Connector`] and [`Session`]: which records win a race,
//! which node a user gets, what one transaction covers. The backends only
//! say how each step is spelled.

use async_trait::async_trait;
use sync_common::db_url::Backend;
use sync_common::telemetry::db::wait_for_connection;

use super::session::{count, Connector, Session};
use super::{
    now_ms, staged_email, Adopted, AdoptedRecord, DbError, DbResult, Node, NodeUpdate,
    PendingRevocation, StoredAccess, TokenStore, UserCap, UserHistory, UserRecord,
};
use crate::model::health::{CheckPolicy, NodeHealth};
use crate::model::keys::ClientState;
use crate::model::node::{self, NodeLoad};
use crate::model::user::KeyState;

/// The pool's name in metrics (each backend has one).
pub const POOL: &str = "tokenserver";

/// A [`TokenStore`] on any SQL backend.
pub struct SqlStore {
    db: Box<dyn Connector>,
}

impl SqlStore {
    pub fn new(db: impl Connector + 'static) -> Self {
        Self { db: Box::new(db) }
    }

    /// A connection outside any transaction (its wait measured).
    async fn plain(&self) -> DbResult<Box<dyn Session>> {
        wait_for_connection(POOL, self.db.plain()).await
    }

    /// A write transaction (its wait measured).
    async fn write(&self) -> DbResult<Box<dyn Session>> {
        wait_for_connection(POOL, self.db.write()).await
    }
}

#[async_trait]
impl TokenStore for SqlStore {
    fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// The schema answers, and a write transaction can take the lock
    /// every allocation needs: a writer that cannot write fails the
    /// heartbeat instead of every new user.
    async fn check(&self) -> DbResult<()> {
        self.plain().await?.check().await?;
        let mut probe = self.write().await?;
        probe.lock_nodes().await
        // Dropped uncommitted: rolled back.
    }

    async fn user(&self, email: &str) -> DbResult<Option<UserHistory>> {
        let mut conn = self.plain().await?;
        let records = conn.records(email).await?;
        let Some((current, older)) = records.split_first() else {
            return Ok(None);
        };
        if older.iter().any(|r| r.replaced_at.is_none()) {
            // A race left two live records: the older ones lose (only
            // older: a record committed since this read stays live), and
            // so do any tokens handed out for them.
            conn.revoke_user(email, Some(current.uid), now_ms()).await?;
            conn.replace_others(email, current.uid, current.created_at)
                .await?;
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
        self.plain().await?.records(email).await
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
        let mut tx = self.write().await?;
        // Nodes before the user, in every script: no two wait on each other.
        // The lock on nodes also keeps racing first requests (no rows to
        // lock yet) apart: the later ones find the first one's record.
        tx.lock_nodes().await?;
        tx.lock_user(email).await?;
        if let Some(winner) = live_record(tx.as_mut(), email).await? {
            if Some(winner.uid) != replacing {
                return Ok(winner);
            }
        } else if replacing.is_none() {
            // A new account: counted under the nodes' lock, so racing
            // first requests cannot both take the last place.
            check_cap(tx.as_mut(), cap).await?;
        }
        let node_id = match node {
            Some(url) => node_named(tx.as_mut(), url).await?.id,
            None => best_node(tx.as_mut(), release_rate).await?,
        };
        tx.add_load(node_id).await?;
        let now = now_ms();
        tx.revoke_user(email, None, now).await?;
        tx.replace_live(email, now).await?;
        let uid = tx.insert_user(email, keys, node_id, now).await?;
        let record = tx.record(uid).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn replace_keys(&self, current: &UserRecord, keys: &KeyState) -> DbResult<UserRecord> {
        let mut tx = self.write().await?;
        // The service row first (the one lock order): a node being
        // unassigned or removed meanwhile then sees the new record.
        tx.lock_nodes().await?;
        tx.lock_user(&current.email).await?;
        if let Some(winner) = live_record(tx.as_mut(), &current.email).await? {
            if winner.uid != current.uid && winner.keys.client_state == keys.client_state {
                return Ok(winner);
            }
        }
        let now = now_ms();
        tx.revoke_user(&current.email, None, now).await?;
        tx.replace_live(&current.email, now).await?;
        let uid = tx
            .insert_user(&current.email, keys, current.node_id, now)
            .await?;
        let record = tx.record(uid).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn raise_keys(&self, uid: i64, keys: &KeyState) -> DbResult<()> {
        self.plain().await?.raise_keys(uid, keys).await
    }

    /// Under the user's lock, so a record a racing key change inserts is
    /// raised too (an unlocked UPDATE would not see it on PostgreSQL).
    async fn raise_generation(&self, email: &str, generation: i64) -> DbResult<u64> {
        let mut tx = self.write().await?;
        tx.lock_user(email).await?;
        let raised = tx.raise_generation(email, generation).await?;
        tx.commit().await?;
        Ok(raised)
    }

    /// Under the user's lock, as [`Self::raise_generation`].
    async fn retire_user(&self, email: &str) -> DbResult<u64> {
        let mut tx = self.write().await?;
        tx.lock_user(email).await?;
        let now = now_ms();
        tx.revoke_user(email, None, now).await?;
        let retired = tx.retire(email, now).await?;
        tx.commit().await?;
        Ok(retired)
    }

    async fn nodes(&self) -> DbResult<Vec<Node>> {
        self.plain().await?.nodes().await
    }

    async fn add_node(
        &self,
        url: &str,
        capacity: i64,
        downed: bool,
        backoff: bool,
    ) -> DbResult<Node> {
        let mut tx = self.write().await?;
        tx.lock_nodes().await?;
        if tx.node(url).await?.is_some() {
            return Err(DbError::Invalid(format!("node {url} already exists")));
        }
        tx.insert_node(url, capacity, downed, backoff).await?;
        let node = node_named(tx.as_mut(), url).await?;
        tx.commit().await?;
        Ok(node)
    }

    async fn update_node(&self, url: &str, update: &NodeUpdate) -> DbResult<Node> {
        let mut tx = self.write().await?;
        tx.lock_nodes().await?;
        let node = node_named(tx.as_mut(), url).await?;
        if let Some(new_url) = update.node.as_deref().filter(|u| *u != url) {
            if tx.node(new_url).await?.is_some() {
                return Err(DbError::Invalid(format!("node {new_url} already exists")));
            }
        }
        tx.update_node(node.id, update).await?;
        if update.downed == Some(true) && !node.downed {
            // Its users hold tokens for it: they must come for new ones.
            tx.raise_epoch(url, now_ms()).await?;
        }
        let url = update.node.as_deref().unwrap_or(url);
        let node = node_named(tx.as_mut(), url).await?;
        tx.commit().await?;
        Ok(node)
    }

    async fn unassign_node(&self, url: &str) -> DbResult<u64> {
        let mut tx = self.write().await?;
        tx.lock_nodes().await?;
        let node = node_named(tx.as_mut(), url).await?;
        let moved = unassign(tx.as_mut(), node.id).await?;
        tx.commit().await?;
        Ok(moved)
    }

    async fn remove_node(&self, url: &str) -> DbResult<u64> {
        let mut tx = self.write().await?;
        tx.lock_nodes().await?;
        let node = node_named(tx.as_mut(), url).await?;
        let moved = unassign(tx.as_mut(), node.id).await?;
        tx.delete_node(node.id).await?;
        tx.forget_health(node.id).await?;
        tx.commit().await?;
        Ok(moved)
    }

    async fn count_users(&self, node: Option<&str>) -> DbResult<u64> {
        let mut conn = self.plain().await?;
        match node {
            // On a node: the users with a live record there.
            Some(url) => {
                let id = node_named(conn.as_mut(), url).await?.id;
                conn.count_on_node(id).await
            }
            // Overall: every account not deleted (a deleted account has a
            // retired record; users waiting to move after a drain count).
            None => conn.count_accounts().await,
        }
    }

    async fn replaced_records(&self, before_ms: i64, limit: u64) -> DbResult<Vec<UserRecord>> {
        self.db
            .plain()
            .await?
            .replaced_records(before_ms, limit)
            .await
    }

    async fn reserve_uids_through(&self, uid: i64) -> DbResult<bool> {
        self.db.reserve_uids_through(uid).await
    }

    async fn delete_record(&self, uid: i64) -> DbResult<()> {
        self.plain().await?.delete_record(uid).await
    }

    async fn users_on_node(&self, url: &str, limit: u64) -> DbResult<Vec<UserRecord>> {
        let mut conn = self.plain().await?;
        let node = node_named(conn.as_mut(), url).await?;
        conn.live_on_node(node.id, limit).await
    }

    async fn switch_node(&self, uid: i64, from: &str, to: &str) -> DbResult<UserRecord> {
        let mut tx = self.write().await?;
        tx.lock_nodes().await?;
        let record = tx.record(uid).await?;
        tx.lock_user(&record.email).await?;
        let record = tx.record(uid).await?;
        if record.replaced_at.is_some() || record.node.as_deref() != Some(from) {
            return Err(DbError::Invalid(format!(
                "uid {uid} is no longer a live user of {from}"
            )));
        }
        let target = node_named(tx.as_mut(), to).await?;
        tx.revoke_user(&record.email, None, now_ms()).await?;
        tx.drop_revocations(to, uid).await?;
        tx.move_record(uid, target.id).await?;
        tx.add_load(target.id).await?;
        let moved = tx.record(uid).await?;
        tx.commit().await?;
        Ok(moved)
    }

    async fn adopt_records(&self, records: &[AdoptedRecord], node: &str) -> DbResult<Adopted> {
        let mut tx = self.write().await?;
        tx.lock_nodes().await?;
        let node_id = node_named(tx.as_mut(), node).await?.id;
        let mut adopted = Adopted::default();
        for record in records {
            if tx.adopt_record(record, node_id).await? {
                adopted.added += 1;
                if record.replaced_at.is_none() {
                    tx.add_load(node_id).await?;
                }
                continue;
            }
            let here = tx.record(record.uid).await?;
            if here.email != record.email {
                return Err(DbError::Invalid(format!(
                    "uid {} is {} here, not {}: import into a new server",
                    record.uid, here.email, record.email
                )));
            }
            adopted.present += 1;
        }
        tx.commit().await?;
        if let Some(highest) = records.iter().map(|r| r.uid).max() {
            self.reserve_uids_through(highest).await?;
        }
        Ok(adopted)
    }

    async fn stage_record(
        &self,
        email: &str,
        keys: &KeyState,
        node: Option<&str>,
        release_rate: f64,
    ) -> DbResult<UserRecord> {
        let mut tx = self.write().await?;
        tx.lock_nodes().await?;
        let node_id = match node {
            Some(url) => node_named(tx.as_mut(), url).await?.id,
            None => best_node(tx.as_mut(), release_rate).await?,
        };
        let now = now_ms();
        let staged = staged_email(email);
        let uid = tx.insert_user(&staged, keys, node_id, now).await?;
        tx.set_record(uid, &staged, Some(now), now).await?;
        let record = tx.record(uid).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn promote_record(
        &self,
        uid: i64,
        email: &str,
        replacing: Option<i64>,
    ) -> DbResult<UserRecord> {
        let mut tx = self.write().await?;
        tx.lock_nodes().await?;
        tx.lock_user(email).await?;
        let staged = tx.record(uid).await?;
        if staged.email != staged_email(email) {
            return Err(DbError::Invalid(format!(
                "uid {uid} is not staged for {email}"
            )));
        }
        if staged.node.is_none() {
            return Err(DbError::Invalid(format!("the node of uid {uid} is gone")));
        }
        let records = tx.records(email).await?;
        if records.iter().any(|r| r.keys.is_retired()) {
            return Err(DbError::Invalid(format!(
                "{email}'s account was deleted meanwhile"
            )));
        }
        let live = records.into_iter().find(|r| r.replaced_at.is_none());
        if live.as_ref().map(|r| r.uid) != replacing {
            return Err(DbError::Invalid(format!(
                "{email} got another record meanwhile; run the import again"
            )));
        }
        let now = now_ms();
        if let Some(live) = &live {
            if live.keys.client_state != staged.keys.client_state {
                return Err(DbError::Invalid(format!(
                    "{email}'s keys changed meanwhile; the imported data is not theirs to read"
                )));
            }
            tx.raise_keys(uid, &live.keys).await?;
            tx.revoke_user(email, None, now).await?;
            tx.replace_live(email, now).await?;
        }
        tx.set_record(uid, email, None, now).await?;
        tx.add_load(staged.node_id).await?;
        let record = tx.record(uid).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn record_node_check(
        &self,
        node_id: i64,
        outcome: Result<(), String>,
        at: i64,
        policy: CheckPolicy,
    ) -> DbResult<NodeHealth> {
        // No lock on the nodes: a check racing another process's check of
        // the same node may lose one count, never an allocation's lock.
        let mut tx = self.write().await?;
        let nodes = tx.nodes().await?;
        let node = nodes
            .iter()
            .find(|n| n.id == node_id)
            .ok_or_else(|| DbError::NotFound(format!("no node {node_id}")))?;
        let health = node.health.after(outcome, at, policy);
        tx.save_health(node_id, &health).await?;
        tx.commit().await?;
        Ok(health)
    }

    async fn revoke_node_tokens(&self, url: &str) -> DbResult<i64> {
        let mut tx = self.write().await?;
        tx.lock_nodes().await?;
        node_named(tx.as_mut(), url).await?;
        tx.raise_epoch(url, now_ms()).await?;
        let epoch = tx.epoch(url).await?;
        tx.commit().await?;
        Ok(epoch)
    }

    async fn revocation_nodes(&self) -> DbResult<Vec<String>> {
        self.plain().await?.revocation_nodes().await
    }

    async fn pending_revocations(
        &self,
        node: &str,
        limit: u64,
    ) -> DbResult<Vec<PendingRevocation>> {
        self.plain().await?.pending_revocations(node, limit).await
    }

    async fn forget_revocations(&self, ids: &[i64]) -> DbResult<()> {
        self.plain().await?.forget_revocations(ids).await
    }

    async fn accounts(&self) -> DbResult<Vec<String>> {
        self.plain().await?.accounts().await
    }

    async fn access(&self) -> DbResult<StoredAccess> {
        let mut conn = self.plain().await?;
        let entries = conn.access_entries().await?;
        let max_users = conn.max_users().await?.map(|cap| cap.map(count));
        Ok(StoredAccess { entries, max_users })
    }

    async fn allow_accounts(&self, entries: &[String]) -> DbResult<Vec<String>> {
        let mut tx = self.write().await?;
        tx.lock_nodes().await?;
        let now = now_ms();
        let mut present = Vec::new();
        for entry in entries {
            if !tx.insert_access_entry(entry, now).await? {
                present.push(entry.clone());
            }
        }
        tx.commit().await?;
        Ok(present)
    }

    async fn disallow_account(&self, entry: &str) -> DbResult<bool> {
        self.plain().await?.delete_access_entry(entry).await
    }

    async fn set_max_users(&self, max_users: Option<Option<u64>>) -> DbResult<()> {
        let stored = max_users.map(|cap| cap.map(|n| i64::try_from(n).unwrap_or(i64::MAX)));
        let mut tx = self.write().await?;
        tx.lock_nodes().await?;
        tx.set_max_users(stored).await?;
        tx.commit().await
    }
}

/// Refuses a new account when the accounts already fill the cap.
async fn check_cap(tx: &mut dyn Session, cap: UserCap) -> DbResult<()> {
    let UserCap::Configured(configured) = cap else {
        return Ok(());
    };
    let set = tx.max_users().await?.map(|cap| cap.map(count));
    let Some(max) = set.unwrap_or(configured) else {
        return Ok(());
    };
    if tx.count_accounts().await? < max {
        Ok(())
    } else {
        Err(DbError::Full(max))
    }
}

/// Replaces the node's live records, and revokes their tokens.
async fn unassign(tx: &mut dyn Session, node_id: i64) -> DbResult<u64> {
    let now = now_ms();
    tx.revoke_node_users(node_id, now).await?;
    tx.unassign(node_id, now).await
}

/// The newest live record of `email`, if any.
async fn live_record(conn: &mut dyn Session, email: &str) -> DbResult<Option<UserRecord>> {
    let records = conn.records(email).await?;
    Ok(records.into_iter().find(|r| r.replaced_at.is_none()))
}

async fn node_named(conn: &mut dyn Session, url: &str) -> DbResult<Node> {
    conn.node(url)
        .await?
        .ok_or_else(|| DbError::NotFound(format!("no node {url}")))
}

/// The best node for a new user, releasing capacity if none has room.
async fn best_node(conn: &mut dyn Session, release_rate: f64) -> DbResult<i64> {
    let loads = node_loads(conn).await?;
    if let Some(id) = node::pick(&loads) {
        return Ok(id);
    }
    for (id, available) in node::release(&loads, release_rate) {
        conn.set_available(id, available).await?;
    }
    node::pick(&node_loads(conn).await?).ok_or(DbError::NoNode)
}

async fn node_loads(conn: &mut dyn Session) -> DbResult<Vec<NodeLoad>> {
    let nodes = conn.nodes().await?;
    Ok(nodes
        .into_iter()
        .map(|n| NodeLoad {
            id: n.id,
            available: n.available,
            current_load: n.current_load,
            capacity: n.capacity,
            downed: !n.usable(),
            backoff: n.backoff,
        })
        .collect())
}
