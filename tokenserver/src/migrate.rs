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

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sync_common::migration::{
    Fence, Finish, Import, Record, Records, UserState, MAX_RECORDS, PAGE_BYTES, PREFIX,
};
use sync_common::revocation::TOKENSERVER_UID;

use crate::db::{DbError, TokenStore, UserRecord};
use crate::node_client::{JsonBody, NodeClient};
use crate::revocations::Courier;

/// How long the old node refuses a user's writes while their last changes
/// are copied; a cut-over that takes longer is abandoned (the user stays).
const CUT_OVER_SECONDS: u64 = 120;

/// Bytes of records per import request, well under a node's request limit.
const IMPORT_BYTES: usize = 1024 * 1024;

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

type Result<T> = std::result::Result<T, MigrateError>;

/// Moves users between nodes.
pub struct Migrator {
    store: Arc<dyn TokenStore>,
    nodes: NodeClient,
    courier: Arc<Courier>,
    /// The longest a token lives, in seconds.
    token_seconds: u64,
}

impl Migrator {
    pub fn new(
        store: Arc<dyn TokenStore>,
        nodes: NodeClient,
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
        let user_path = format!("{PREFIX}/{uid}");
        // Whatever an earlier attempt left on the target goes first.
        self.call(to, Method::DELETE, &user_path, None).await?;
        // Everything, while the clients keep writing to the old node.
        let before: UserState = self.get(from, &user_path).await?;
        let mut copied = 0;
        for (coll, modified) in &before.collections {
            copied += self.copy(from, to, uid, coll, *modified).await?;
        }
        // The last changes, with the old node refusing writes.
        let fenced = Instant::now();
        self.fence(from, uid, CUT_OVER_SECONDS).await?;
        let cut_over = self.cut_over(from, to, uid, &before, fenced).await;
        match cut_over {
            Ok(more) => Ok(copied + more),
            Err(e) => {
                // The user stays: their writes resume on the old node now.
                if let Err(lift) = self.fence(from, uid, 0).await {
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
        let user_path = format!("{PREFIX}/{uid}");
        let mut copied = 0;
        let after: UserState = self.get(from, &user_path).await?;
        for (coll, modified) in &after.collections {
            if before.collections.get(coll) != Some(modified) {
                copied += self.copy(from, to, uid, coll, *modified).await?;
            }
        }
        for coll in before.collections.keys() {
            if !after.collections.contains_key(coll) {
                self.call(to, Method::DELETE, &format!("{user_path}/{coll}"), None)
                    .await?;
            }
        }
        let finish = Finish {
            modified: after.modified,
        };
        self.put(to, &user_path, &finish).await?;
        // Still fenced, and nothing written since: the fence was in force
        // all along (it lapses by the old node's clock, not ours).
        if fenced.elapsed() >= Duration::from_secs(CUT_OVER_SECONDS - 10) {
            return Err(MigrateError::TooSlow);
        }
        self.fence(from, uid, CUT_OVER_SECONDS).await?;
        let last: UserState = self.get(from, &user_path).await?;
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
        let user_path = format!("{PREFIX}/{uid}");
        self.call(to, Method::PATCH, &user_path, None).await?;
        let delivery = self.courier.deliver().await?;
        self.fence(from, uid, self.token_seconds + 60).await?;
        if let Some((_, why)) = delivery.failed.iter().find(|(node, _)| node == from) {
            return Err(MigrateError::Node(format!("the revocation waits: {why}")));
        }
        self.call(from, Method::DELETE, &user_path, None)
            .await
            .map(drop)
    }

    /// Copies one collection whole, replacing what `to` holds of it.
    async fn copy(&self, from: &str, to: &str, uid: u64, coll: &str, modified: i64) -> Result<u64> {
        let path = format!("{PREFIX}/{uid}/{coll}");
        let mut after = String::new();
        let mut first = true;
        let mut copied = 0;
        loop {
            let page: Records = self
                .get(
                    from,
                    &format!("{path}?after={}&limit={MAX_RECORDS}", encode(&after)),
                )
                .await?;
            // A page ends at MAX_RECORDS, or early past a byte budget.
            let bytes: usize = page.records.iter().map(|r| r.payload.len()).sum();
            let full = page.records.len() == MAX_RECORDS || bytes >= PAGE_BYTES / 4;
            if let Some(last) = page.records.last() {
                after = last.id.clone();
            }
            copied += u64::try_from(page.records.len()).unwrap_or(0);
            for records in by_size(page.records) {
                let import = Import {
                    modified,
                    replace: first,
                    records,
                };
                self.put(to, &path, &import).await?;
                first = false;
            }
            if first {
                // An empty collection still has its timestamp.
                self.put(
                    to,
                    &path,
                    &Import {
                        modified,
                        replace: true,
                        records: Vec::new(),
                    },
                )
                .await?;
                first = false;
            }
            if !full {
                return Ok(copied);
            }
        }
    }

    async fn fence(&self, node: &str, uid: u64, seconds: u64) -> Result<()> {
        let fence = Fence { seconds };
        let body = JsonBody(serde_json::to_vec(&fence).map_err(node_error)?);
        self.call(node, Method::POST, &format!("{PREFIX}/{uid}"), Some(body))
            .await
            .map(drop)
    }

    async fn get<T: DeserializeOwned>(&self, node: &str, path: &str) -> Result<T> {
        let response = self.call(node, Method::GET, path, None).await?;
        response.json().await.map_err(node_error)
    }

    async fn put<T: Serialize>(&self, node: &str, path: &str, body: &T) -> Result<()> {
        let body = JsonBody(serde_json::to_vec(body).map_err(node_error)?);
        self.call(node, Method::PUT, path, Some(body))
            .await
            .map(drop)
    }

    async fn call(
        &self,
        node: &str,
        method: Method,
        path: &str,
        body: Option<JsonBody>,
    ) -> Result<reqwest::Response> {
        let response = self
            .nodes
            .send("storage node", node, TOKENSERVER_UID, method, path, body)
            .await
            .map_err(MigrateError::Node)?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(MigrateError::Node(format!(
                "{node}{path} answered {}",
                response.status()
            )))
        }
    }
}

/// Records in groups of at most [`IMPORT_BYTES`] of payload (one record
/// alone may be larger).
fn by_size(records: Vec<Record>) -> Vec<Vec<Record>> {
    let mut groups: Vec<Vec<Record>> = Vec::new();
    let mut bytes = 0;
    for record in records {
        let len = record.payload.len() + record.id.len();
        match groups.last_mut() {
            Some(group) if bytes + len <= IMPORT_BYTES => {
                bytes += len;
                group.push(record);
            }
            _ => {
                bytes = len;
                groups.push(vec![record]);
            }
        }
    }
    groups
}

/// A BSO id as a query value (ids are printable ASCII).
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn node_error(e: impl std::fmt::Display) -> MigrateError {
    MigrateError::Node(e.to_string())
}
