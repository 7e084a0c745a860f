//! Delivering revocations to storage nodes (ADR 0012). The transaction
//! that moves or retires a user queues them in the tokenserver's database
//! (`node_revocations`); a courier sends each node its own as one signed
//! notice and drops them once the node recorded them. Every tokenserver
//! process runs one, and so does every admin command that queued some:
//! delivering twice is harmless, and a queued revocation survives a
//! restart of either side.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sync_common::task::Background;

use reqwest::Method;
use sync_common::revocation::{Notice, MAX_UIDS, PATH, TOKENSERVER_UID};

use sync_common::token::TokenSecrets;

use crate::config::TokenserverConfig;
use crate::db::{now_ms, DbResult, PendingRevocation, TokenStore};
use crate::node_client::{JsonBody, NodeClient};

/// Seconds added to a revocation's lifetime for tokens minted while it was
/// being queued, and for clocks that differ.
const SLACK_SECONDS: u64 = 60;

/// Where notices go: a node over HTTP, or (the all-in-one) its own storage.
#[async_trait::async_trait]
pub trait Postbox: Send + Sync {
    /// Has the node named in `notice` record it.
    async fn post(&self, notice: &Notice) -> Result<(), String>;
}

/// Nodes reached over HTTP: `POST /__revocations__`, signed as the
/// tokenserver's own uid on that node.
pub struct OverHttp {
    nodes: NodeClient,
}

impl OverHttp {
    /// Signs with `secrets` (the signing one first), as `settings` say.
    pub fn new(settings: &TokenserverConfig, secrets: &[&str]) -> Result<Self, String> {
        let secrets = TokenSecrets::new(secrets).map_err(|e| e.to_string())?;
        let timeout = Duration::from_secs(settings.node_timeout_seconds);
        Ok(Self {
            nodes: NodeClient::new(secrets, timeout)?,
        })
    }
}

#[async_trait::async_trait]
impl Postbox for OverHttp {
    async fn post(&self, notice: &Notice) -> Result<(), String> {
        let body = JsonBody(serde_json::to_vec(notice).map_err(|e| e.to_string())?);
        let node = &notice.node;
        let response = self
            .nodes
            .send(
                "storage node",
                node,
                TOKENSERVER_UID,
                Method::POST,
                PATH,
                Some(body),
            )
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the node answered {}", response.status()))
        }
    }
}

/// What one round of deliveries did.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Revocations the nodes recorded.
    pub delivered: u64,
    /// Revocations dropped undelivered: every token they refuse has expired.
    pub expired: u64,
    /// Nodes that could not be reached, with why; their revocations wait.
    pub failed: Vec<(String, String)>,
}

/// Sends the queued revocations.
pub struct Courier {
    store: Arc<dyn TokenStore>,
    postbox: Arc<dyn Postbox>,
    /// The longest a token lives (`token_duration`), in seconds.
    token_seconds: u64,
}

impl Courier {
    pub fn new(
        store: Arc<dyn TokenStore>,
        postbox: Arc<dyn Postbox>,
        settings: &TokenserverConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            postbox,
            token_seconds: settings.token_duration,
        })
    }

    /// Delivers everything queued, every node at once (a node that hangs
    /// delays only its own).
    pub async fn deliver(self: &Arc<Self>) -> DbResult<Delivery> {
        let mut nodes = tokio::task::JoinSet::new();
        for node in self.store.revocation_nodes().await? {
            let courier = self.clone();
            nodes.spawn(async move {
                let result = courier.deliver_to(&node).await;
                (node, result)
            });
        }
        let mut delivery = Delivery::default();
        while let Some(done) = nodes.join_next().await {
            let Ok((node, result)) = done else { continue };
            match result {
                Ok(Ok((delivered, expired))) => {
                    delivery.delivered += delivered;
                    delivery.expired += expired;
                }
                Ok(Err(why)) => delivery.failed.push((node, why)),
                Err(e) => return Err(e),
            }
        }
        Ok(delivery)
    }

    /// Delivers `node`'s revocations, a notice at a time. The outer error
    /// is the tokenserver database's; the inner, the node's.
    async fn deliver_to(&self, node: &str) -> DbResult<Result<(u64, u64), String>> {
        let (mut delivered, mut expired) = (0, 0);
        loop {
            let limit = u64::try_from(MAX_UIDS).unwrap_or(u64::MAX);
            let pending = self.store.pending_revocations(node, limit).await?;
            if pending.is_empty() {
                return Ok(Ok((delivered, expired)));
            }
            let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
            let (live, stale): (Vec<_>, Vec<_>) = pending.iter().partition(|r| self.until(r) > now);
            if !live.is_empty() {
                if let Err(why) = self.postbox.post(&self.notice(node, &live)).await {
                    self.store.forget_revocations(&ids(&stale)).await?;
                    return Ok(Err(why));
                }
            }
            self.store
                .forget_revocations(&ids(&pending.iter().collect::<Vec<_>>()))
                .await?;
            delivered += count(live.len());
            expired += count(stale.len());
            if pending.len() < MAX_UIDS {
                return Ok(Ok((delivered, expired)));
            }
        }
    }

    /// Unix seconds by which every token `revocation` refuses has expired.
    fn until(&self, revocation: &PendingRevocation) -> u64 {
        let queued = u64::try_from(revocation.created_at / 1000).unwrap_or(0);
        queued + self.token_seconds + SLACK_SECONDS
    }

    fn notice(&self, node: &str, revocations: &[&PendingRevocation]) -> Notice {
        let uid = |r: &&PendingRevocation| r.uid.and_then(|u| u64::try_from(u).ok());
        let epoch = |r: &&PendingRevocation| r.epoch.and_then(|e| u64::try_from(e).ok());
        Notice {
            node: node.to_owned(),
            epoch: revocations.iter().filter_map(epoch).max(),
            uids: revocations
                .iter()
                .filter_map(uid)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            until: revocations.iter().map(|r| self.until(r)).max().unwrap_or(0),
        }
    }

    /// Delivers every `every` until dropped; a failure is logged and the
    /// revocations wait for the next round.
    pub fn spawn(self: &Arc<Self>, every: Duration) -> Background {
        let courier = self.clone();
        let failing = Arc::new(std::sync::Mutex::new(HashSet::new()));
        Background::every(every, move || {
            let (courier, failing) = (courier.clone(), failing.clone());
            async move {
                match courier.deliver().await {
                    Ok(delivery) => log(
                        &delivery,
                        &mut failing.lock().unwrap_or_else(|e| e.into_inner()),
                    ),
                    Err(e) => tracing::warn!(error = %e, "cannot read the revocations to deliver"),
                }
            }
        })
    }
}

/// Logs deliveries, and each node once when it starts failing.
fn log(delivery: &Delivery, failing: &mut HashSet<String>) {
    if delivery.delivered > 0 {
        tracing::info!(revocations = delivery.delivered, "delivered revocations");
    }
    let now_failing: HashSet<String> = delivery.failed.iter().map(|(n, _)| n.clone()).collect();
    for (node, why) in &delivery.failed {
        if !failing.contains(node) {
            tracing::warn!(%node, error = %why, "revocations wait: the node does not take them");
        }
    }
    *failing = now_failing;
}

fn ids(revocations: &[&PendingRevocation]) -> Vec<i64> {
    revocations.iter().map(|r| r.id).collect()
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
