//! Dead nodes are noticed: every tokenserver process checks each node's
//! `/__heartbeat__`. A node failing `node_check_failures` checks in a row
//! gets no new users until a check succeeds again (the operator's
//! `downed` is never touched); one down longer than
//! `node_down_grace_seconds` (if set) has its users moved.

use std::sync::Arc;
use std::time::Duration;

use sync_common::task::Background;

use crate::config::TokenserverConfig;
use crate::db::{now_ms, DbResult, Node, TokenStore};
use crate::model::health::{CheckPolicy, NodeHealth};

/// Checks the nodes.
pub struct Checker {
    store: Arc<dyn TokenStore>,
    http: reqwest::Client,
    policy: CheckPolicy,
}

impl Checker {
    pub fn new(
        store: Arc<dyn TokenStore>,
        settings: &TokenserverConfig,
    ) -> Result<Arc<Self>, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.node_timeout_seconds))
            .build()
            .map_err(|e| e.to_string())?;
        let grace = settings.node_down_grace_seconds;
        Ok(Arc::new(Self {
            store,
            http,
            policy: CheckPolicy {
                failures_to_down: i64::from(settings.node_check_failures.max(1)),
                grace_ms: (grace > 0)
                    .then(|| i64::try_from(grace.saturating_mul(1000)).unwrap_or(i64::MAX)),
            },
        }))
    }

    /// Checks every node once, all at once.
    pub async fn check_all(self: &Arc<Self>) -> DbResult<()> {
        let mut checks = tokio::task::JoinSet::new();
        for node in self.store.nodes().await? {
            let checker = self.clone();
            checks.spawn(async move { checker.check(node).await });
        }
        let mut checked = Vec::new();
        while let Some(done) = checks.join_next().await {
            match done {
                Ok(Ok(node)) => checked.push(node),
                Ok(Err(e)) => return Err(e),
                Err(_) => {}
            }
        }
        // Every node down at once says more about this process (its
        // network, its resolver) than about the nodes: nobody moves.
        if checked.iter().all(|(_, health)| health.down) {
            if !checked.is_empty() {
                tracing::warn!("every node fails its checks: no user is moved");
            }
            return Ok(());
        }
        for (node, health) in checked {
            if health.users_must_move(now_ms(), self.policy) {
                let moved = self.store.unassign_node(&node.node).await?;
                if moved > 0 {
                    tracing::warn!(node = %node.node, users = moved, "the node stayed down past the grace period: its users move");
                }
            }
        }
        Ok(())
    }

    async fn check(&self, node: Node) -> DbResult<(Node, NodeHealth)> {
        let outcome = self.probe(&node.node).await;
        let health = self
            .store
            .record_node_check(node.id, outcome, now_ms(), self.policy)
            .await?;
        match (node.health.down, health.down) {
            (false, true) => tracing::warn!(
                node = %node.node,
                error = health.last_error.as_deref().unwrap_or(""),
                "the node is down: no new users until it answers again"
            ),
            (true, false) => tracing::info!(node = %node.node, "the node is back"),
            _ => {}
        }
        Ok((node, health))
    }

    /// One heartbeat: 200 is healthy, anything else (an answer, no answer
    /// in time, no connection) a failure.
    async fn probe(&self, node: &str) -> Result<(), String> {
        let request = self.http.get(format!("{node}/__heartbeat__"));
        let response = sync_common::telemetry::client::send("storage node", &self.http, request)
            .await
            .map_err(|e| e.to_string())?;
        if response.status() == reqwest::StatusCode::OK {
            Ok(())
        } else {
            Err(format!("the heartbeat answered {}", response.status()))
        }
    }

    /// Checks every `every` until dropped.
    pub fn spawn(self: &Arc<Self>, every: Duration) -> Background {
        let checker = self.clone();
        Background::every(every, move || {
            let checker = checker.clone();
            async move {
                if let Err(e) = checker.check_all().await {
                    tracing::warn!(error = %e, "cannot record the node checks");
                }
            }
        })
    }
}
