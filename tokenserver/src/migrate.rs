//! Live migration (ADR 0013): a user's data is copied from one node to
//! another while their clients keep syncing, then their record is pointed
//! at the new node, so they land there and find everything as they left
//! it: no device uploads again.
//!
//! Per user: copy every collection; fence the user's writes on the old
//! node; copy again each collection whose timestamp moved meanwhile (and
//! drop those deleted); finish the import; switch the record (revoking the
//! old node's tokens); fence the old node for good and evict the data
//! there. Until the switch commits the user is wholly on the old node;
//! after it, wholly on the new one. A run stopped anywhere can be re-run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sync_common::migration::UserState;

use crate::db::{DbError, TokenStore, UserRecord};
use crate::node_data::{copy_collection, NodeData};
use crate::revocations::Courier;

/// How long the old node refuses a user's writes while their last changes
/// are copied; a cut-over that takes longer is abandoned (the user stays).
const CUT_OVER_SECONDS: u64 = 120;

/// What moving users did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Progress {
    pub users: u64,
    pub records: u64,
    pub failed: u64,
}

/// Why one user was not moved; they stay wholly on the old node.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0}")]
    Node(String),
    #[error("{0}")]
    Database(#[from] DbError),
    #[error("the cut-over took longer than {CUT_OVER_SECONDS} s")]
    TooSlow,
}

impl From<String> for MigrateError {
    fn from(e: String) -> Self {
        Self::Node(e)
    }
}

type Result<T> = std::result::Result<T, MigrateError>;

/// Moves users between nodes.
pub struct Migrator {
    store: Arc<dyn TokenStore>,
    nodes: Arc<dyn NodeData>,
    courier: Arc<Courier>,
    /// The longest a token lives, in seconds.
    token_seconds: u64,
}

impl Migrator {
    pub fn new(
        store: Arc<dyn TokenStore>,
        nodes: Arc<dyn NodeData>,
        courier: Arc<Courier>,
        token_seconds: u64,
    ) -> Self {
        Self {
            store,
            nodes,
            courier,
            token_seconds,
        }
    }

    /// Moves up to `limit` users from `from` to `to`, at most `rate` a
    /// second; `report` is called after each.
    pub async fn run(
        &self,
        from: &str,
        to: &str,
        limit: u64,
        rate: Option<f64>,
        mut report: impl FnMut(&Progress, u64),
    ) -> Result<Progress> {
        self.check_nodes(from, to).await?;
        let users = self.store.users_on_node(from, limit).await?;
        let total = u64::try_from(users.len()).unwrap_or(u64::MAX);
        let started = Instant::now();
        let mut progress = Progress::default();
        for user in users {
            match self.migrate_user(&user, to).await {
                Ok(records) => {
                    progress.users += 1;
                    progress.records += records;
                }
                Err(e) => {
                    tracing::warn!(uid = user.uid, error = %e, "user not moved; they stay on the old node");
                    progress.failed += 1;
                }
            }
            report(&progress, total);
            if let Some(rate) = rate.filter(|r| *r > 0.0) {
                let done = (progress.users + progress.failed) as f64;
                let due = Duration::try_from_secs_f64(done / rate).unwrap_or(Duration::MAX);
                tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
            }
        }
        Ok(progress)
    }

    /// Two different nodes, the target registered and taking users.
    async fn check_nodes(&self, from: &str, to: &str) -> Result<()> {
        if from == to {
            return Err(MigrateError::Node(format!(
                "{from} is both source and target"
            )));
        }
        let nodes = self.store.nodes().await?;
        match nodes.iter().find(|n| n.node == to) {
            Some(target) if target.usable() => Ok(()),
            Some(_) => Err(MigrateError::Node(format!("{to} is down"))),
            None => Err(MigrateError::Node(format!("no node {to}"))),
        }
    }

    /// Moves one user; returns the records copied.
    pub async fn migrate_user(&self, user: &UserRecord, to: &str) -> Result<u64> {
        let from = user
            .node
            .as_deref()
            .ok_or_else(|| MigrateError::Node("the user's node is gone".into()))?;
        let uid = u64::try_from(user.uid).map_err(|e| MigrateError::Node(e.to_string()))?;
        let nodes = self.nodes.as_ref();
        // Whatever an earlier attempt left on the target goes first.
        nodes.evict(to, uid).await?;
        // Everything, while the clients keep writing to the old node.
        let before = nodes.state(from, uid).await?;
        let mut copied = 0;
        for (coll, modified) in &before.collections {
            copied += copy_collection(nodes, from, to, uid, coll, *modified).await?;
        }
        // The last changes, with the old node refusing writes.
        let fenced = Instant::now();
        nodes.fence(from, uid, CUT_OVER_SECONDS).await?;
        let cut_over = self.cut_over(from, to, uid, &before, fenced).await;
        match cut_over {
            Ok(more) => Ok(copied + more),
            Err(e) => {
                // The user stays: their writes resume on the old node now.
                if let Err(lift) = nodes.fence(from, uid, 0).await {
                    tracing::warn!(uid, error = %lift, "the fence lapses by itself");
                }
                Err(e)
            }
        }
    }

    /// Under the fence: copies what changed, switches the user and retires
    /// the old copy; returns the records copied.
    async fn cut_over(
        &self,
        from: &str,
        to: &str,
        uid: u64,
        before: &UserState,
        fenced: Instant,
    ) -> Result<u64> {
        let nodes = self.nodes.as_ref();
        let mut copied = 0;
        let after = nodes.state(from, uid).await?;
        for (coll, modified) in &after.collections {
            if before.collections.get(coll) != Some(modified) {
                copied += copy_collection(nodes, from, to, uid, coll, *modified).await?;
            }
        }
        for coll in before.collections.keys() {
            if !after.collections.contains_key(coll) {
                nodes.drop_collection(to, uid, coll).await?;
            }
        }
        nodes.finish(to, uid, after.modified).await?;
        // Still fenced, and nothing written since: the fence was in force
        // all along (it lapses by the old node's clock, not ours).
        if fenced.elapsed() >= Duration::from_secs(CUT_OVER_SECONDS - 10) {
            return Err(MigrateError::TooSlow);
        }
        nodes.fence(from, uid, CUT_OVER_SECONDS).await?;
        let last = nodes.state(from, uid).await?;
        if last != after {
            return Err(MigrateError::Node(
                "the user wrote during the cut-over".into(),
            ));
        }
        // The switch: from here on the user is on the new node.
        let record = i64::try_from(uid).map_err(node_error)?;
        self.store.switch_node(record, from, to).await?;
        if let Err(e) = self.retire(from, to, uid).await {
            tracing::warn!(uid, node = %from, error = %e, "moved; the old node keeps a copy it no longer serves");
        }
        Ok(copied)
    }

    /// After the switch: the new node serves the uid (lifting any old
    /// revocation of it there); the old node refuses the user's old tokens,
    /// keeps refusing writes while any of its tokens lives, and, once it
    /// has the revocation, drops its copy.
    async fn retire(&self, from: &str, to: &str, uid: u64) -> Result<()> {
        let nodes = self.nodes.as_ref();
        nodes.serve(to, uid).await?;
        let delivery = self.courier.deliver().await?;
        nodes.fence(from, uid, self.token_seconds + 60).await?;
        if let Some((_, why)) = delivery.failed.iter().find(|(node, _)| node == from) {
            return Err(MigrateError::Node(format!("the revocation waits: {why}")));
        }
        Ok(nodes.evict(from, uid).await?)
    }
}

fn node_error(e: impl std::fmt::Display) -> MigrateError {
    MigrateError::Node(e.to_string())
}
