//! The operator's drill: Firefox-like clients sync without pause while a
//! deployment of one tokenserver and three storage nodes unassigns a node,
//! migrates one, drains one and loses one to SIGKILL. Checked: every
//! acknowledged write survives, every client ends on a live node holding
//! all its records, the old node refuses moved tokens within the promised
//! delay, and a migration makes nobody upload again (counted on the node).
//!
//! The same drill runs on local processes (`tests/multinode/drill.rs`) and
//! on separate network addresses (`examples/drill.rs`, driven by
//! `integration-tests/netns-drill.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::cluster::within;
use crate::fxa::access_token;
use crate::process::key_id;
use crate::prometheus::Scrape;
use crate::sync_client::{get_token, SyncClient};

/// The default configuration's promise: a move reaches the old node within
/// 10 s.
pub const MOVE_DEADLINE: Duration = Duration::from_secs(10);
/// How long clients may take to settle after a step.
const SETTLE: Duration = Duration::from_secs(90);
/// Longest a client waits for one answer.
const REQUEST_LIMIT: Duration = Duration::from_secs(20);
/// Records a client writes per sync.
const PER_SYNC: usize = 3;

/// What the drill needs of a deployment.
pub trait Deployment {
    /// The tokenserver's base URL.
    fn tokenserver(&self) -> String;
    /// Each storage node's URL, as registered.
    fn nodes(&self) -> Vec<String>;
    /// Each node's metrics listener (`http://host:port`).
    fn metrics(&self) -> Vec<String>;
    /// Runs the operator command `tokenserver <args>`; its output. Fails
    /// the drill if it fails.
    fn admin(&self, args: &[&str]) -> String;
    /// Kills node `i` with SIGKILL.
    fn kill(&mut self, i: usize);
}

/// Records clients have written to each collection since the node's
/// process started (migration imports are not counted: no client wrote
/// them).
pub async fn uploads(metrics: &str) -> BTreeMap<String, f64> {
    let scrape = Scrape::get(metrics).await;
    let mut uploads = BTreeMap::new();
    for sample in scrape.matching("sync_storage_records_written_total", &[]) {
        let collection = sample.labels["collection"].clone();
        *uploads.entry(collection).or_default() += sample.value;
    }
    uploads
}

async fn uploads_total(metrics: &str) -> f64 {
    uploads(metrics).await.values().sum()
}

#[derive(Default)]
struct State {
    token: Option<SyncClient>,
    /// Whether this node's `meta/global` was checked.
    checked: bool,
    /// The node had no `meta/global`: everything must be uploaded again.
    reupload: bool,
    /// Every acknowledged record: id → payload.
    local: BTreeMap<String, String>,
    next: u64,
    /// Records acknowledged, by node (every collection).
    written: BTreeMap<String, u64>,
    /// Records uploaded again after a fresh start, by node.
    reuploaded: BTreeMap<String, u64>,
    /// Answers 503 (fenced for a cut-over, or the node busy).
    unavailable: u64,
    /// When which node answered 401 to its token.
    refusals: Vec<(Instant, String)>,
}

/// A Firefox-like client: it writes a few bookmarks per sync, follows 401s
/// to a new token, and starts afresh (uploading everything it holds) on a
/// node without its `meta/global`, as Firefox does.
struct Client {
    fxa_uid: String,
    tokenserver: String,
    busy: AtomicBool,
    state: Mutex<State>,
}

enum Step {
    Go,
    Wait(Duration),
}

impl Client {
    fn node(&self) -> Option<String> {
        let state = self.state.lock().unwrap();
        state.token.as_ref().filter(|_| state.checked).map(node_of)
    }

    async fn token(&self) -> Option<SyncClient> {
        if let Some(t) = self.state.lock().unwrap().token.clone() {
            return Some(t);
        }
        let reply = get_token(
            &format!("{}/1.0/sync/1.5", self.tokenserver),
            &access_token(&self.fxa_uid, Some(1)),
            &key_id(1, &[7; 16]),
        )
        .await;
        if reply.status != 200 {
            return None;
        }
        let token = SyncClient::from_token(&reply.json());
        let mut state = self.state.lock().unwrap();
        state.token = Some(token.clone());
        state.checked = false;
        Some(token)
    }

    async fn sync(&self) -> Step {
        let Some(client) = self.token().await else {
            return Step::Wait(Duration::from_millis(200));
        };
        let node = node_of(&client);
        if !self.state.lock().unwrap().checked {
            if let Step::Wait(d) = self.check(&client, &node).await {
                return Step::Wait(d);
            }
        }
        match self
            .call(&client, Method::GET, "/info/collections", None)
            .await
        {
            Ok(_) => {}
            Err(step) => return step,
        }
        let (ids, batch) = self.new_records();
        match self
            .call(&client, Method::POST, "/storage/bookmarks", Some(&batch))
            .await
        {
            Ok(reply) => self.acknowledged(&node, &ids, &batch, &reply),
            Err(step) => return step,
        }
        Step::Wait(Duration::from_millis(50 + rand::random::<u64>() % 100))
    }

    /// Looks for its data on a newly reached node; starts afresh there if
    /// `meta/global` is missing.
    async fn check(&self, client: &SyncClient, node: &str) -> Step {
        let meta = match self
            .call(client, Method::GET, "/storage/meta/global", None)
            .await
        {
            Ok(reply) => reply,
            Err(step) => return step,
        };
        if meta.status == 404 {
            let global = json!({"payload": "{\"syncID\":\"drill\",\"storageVersion\":5}"});
            if let Err(step) = self
                .call(client, Method::PUT, "/storage/meta/global", Some(&global))
                .await
            {
                return step;
            }
            let mut state = self.state.lock().unwrap();
            state.reupload = true;
            *state.written.entry(node.to_owned()).or_default() += 1;
        }
        if self.state.lock().unwrap().reupload {
            let all: Vec<(String, String)> = self
                .state
                .lock()
                .unwrap()
                .local
                .clone()
                .into_iter()
                .collect();
            for chunk in all.chunks(100) {
                let batch: Vec<Value> = chunk
                    .iter()
                    .map(|(id, p)| json!({"id": id, "payload": p}))
                    .collect();
                if let Err(step) = self
                    .call(
                        client,
                        Method::POST,
                        "/storage/bookmarks",
                        Some(&json!(batch)),
                    )
                    .await
                {
                    return step;
                }
                let mut state = self.state.lock().unwrap();
                *state.written.entry(node.to_owned()).or_default() += chunk.len() as u64;
                *state.reuploaded.entry(node.to_owned()).or_default() += chunk.len() as u64;
            }
        }
        let mut state = self.state.lock().unwrap();
        state.reupload = false;
        state.checked = true;
        Step::Go
    }

    /// One request; a 401 drops the token, no answer drops it too (the
    /// node may be gone), a 503 or 409 waits. Any other error fails the
    /// drill.
    async fn call(
        &self,
        client: &SyncClient,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<crate::sync_client::Reply, Step> {
        let reply = client
            .try_send(method.clone(), path, body, REQUEST_LIMIT)
            .await;
        let node = node_of(client);
        match reply {
            None => {
                self.forget(None);
                Err(Step::Wait(Duration::from_millis(200)))
            }
            Some(r) if r.status == 401 => {
                self.forget(Some(node));
                Err(Step::Go)
            }
            Some(r) if r.status == 503 => {
                self.state.lock().unwrap().unavailable += 1;
                let after = r
                    .header("retry-after")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1);
                Err(Step::Wait(
                    Duration::from_secs(after).min(Duration::from_secs(1)),
                ))
            }
            Some(r) if r.status == 409 => Err(Step::Wait(Duration::from_millis(50))),
            Some(r) if r.status == 200 || (r.status == 404 && path == "/storage/meta/global") => {
                Ok(r)
            }
            Some(r) => panic!("{} {method} {path}: {} {}", node, r.status, r.text),
        }
    }

    fn forget(&self, refused_by: Option<String>) {
        let mut state = self.state.lock().unwrap();
        state.token = None;
        state.checked = false;
        if let Some(node) = refused_by {
            state.refusals.push((Instant::now(), node));
        }
    }

    fn new_records(&self) -> (Vec<String>, Value) {
        let mut state = self.state.lock().unwrap();
        let ids: Vec<String> = (0..PER_SYNC)
            .map(|_| {
                state.next += 1;
                format!("r{:06}", state.next)
            })
            .collect();
        let batch = ids
            .iter()
            .map(|id| json!({"id": id, "payload": format!("{} {id}", self.fxa_uid)}))
            .collect();
        (ids, Value::Array(batch))
    }

    fn acknowledged(
        &self,
        node: &str,
        ids: &[String],
        batch: &Value,
        reply: &crate::sync_client::Reply,
    ) {
        let success = reply.json()["success"].clone();
        for id in ids {
            assert!(
                success.as_array().unwrap().contains(&json!(id)),
                "{node}: {}",
                reply.text
            );
        }
        let mut state = self.state.lock().unwrap();
        for record in batch.as_array().unwrap() {
            let id = record["id"].as_str().unwrap().to_owned();
            state
                .local
                .insert(id, record["payload"].as_str().unwrap().to_owned());
        }
        *state.written.entry(node.to_owned()).or_default() += ids.len() as u64;
    }

    /// When it was first refused by `node` at or after `since`.
    fn refused_after(&self, node: &str, since: Instant) -> Option<Instant> {
        let state = self.state.lock().unwrap();
        state
            .refusals
            .iter()
            .find(|(at, n)| n == node && *at >= since)
            .map(|(at, _)| *at)
    }
}

/// The node part of a token's endpoint (`<node>/1.5/<uid>`).
fn node_of(client: &SyncClient) -> String {
    client.endpoint.split("/1.5/").next().unwrap().to_owned()
}

/// The clients and the switch that pauses them between syncs.
struct Clients {
    all: Vec<Arc<Client>>,
    paused: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Clients {
    fn start(tokenserver: &str, count: usize) -> Self {
        let paused = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let run = hex::encode(rand::random::<[u8; 4]>());
        let all: Vec<Arc<Client>> = (0..count)
            .map(|i| {
                Arc::new(Client {
                    fxa_uid: format!("drill-{run}-{i}"),
                    tokenserver: tokenserver.to_owned(),
                    busy: AtomicBool::new(false),
                    state: Mutex::default(),
                })
            })
            .collect();
        let tasks = all
            .iter()
            .map(|c| tokio::spawn(keep_syncing(c.clone(), paused.clone(), stopped.clone())))
            .collect();
        Self {
            all,
            paused,
            stopped,
            tasks,
        }
    }

    /// Waits until no client is in the middle of a sync, and keeps them so.
    async fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        while self.all.iter().any(|c| c.busy.load(Ordering::SeqCst)) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// The clients on `node` now (their data found there).
    fn on(&self, node: &str) -> Vec<Arc<Client>> {
        self.all
            .iter()
            .filter(|c| c.node().as_deref() == Some(node))
            .cloned()
            .collect()
    }

    /// Waits until every client syncs with one of `nodes`.
    async fn settle_on(&self, nodes: &[String], what: &str) -> Duration {
        within(SETTLE, what, || async {
            self.all
                .iter()
                .all(|c| c.node().is_some_and(|n| nodes.contains(&n)))
        })
        .await
    }

    /// Records acknowledged by `node`, by all clients.
    fn written_to(&self, node: &str) -> u64 {
        self.all
            .iter()
            .map(|c| {
                c.state
                    .lock()
                    .unwrap()
                    .written
                    .get(node)
                    .copied()
                    .unwrap_or(0)
            })
            .sum()
    }

    fn reuploaded_by(clients: &[Arc<Client>]) -> u64 {
        clients
            .iter()
            .map(|c| c.state.lock().unwrap().reuploaded.values().sum::<u64>())
            .sum()
    }

    /// The longest any of `clients` took to be refused by `node` after
    /// `since`; waits for all of them.
    async fn refused(clients: &[Arc<Client>], node: &str, since: Instant) -> Duration {
        within(
            SETTLE,
            "every moved client refused by the old node",
            || async {
                clients
                    .iter()
                    .all(|c| c.refused_after(node, since).is_some())
            },
        )
        .await;
        clients
            .iter()
            .map(|c| c.refused_after(node, since).unwrap() - since)
            .max()
            .unwrap_or_default()
    }

    async fn stop(self) {
        self.stopped.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

async fn keep_syncing(client: Arc<Client>, paused: Arc<AtomicBool>, stopped: Arc<AtomicBool>) {
    while !stopped.load(Ordering::SeqCst) {
        // Busy first, then look at the switch: `pause` sets the switch,
        // then waits for busy to clear, so neither misses the other.
        client.busy.store(true, Ordering::SeqCst);
        let step = if paused.load(Ordering::SeqCst) {
            Step::Wait(Duration::from_millis(20))
        } else {
            client.sync().await
        };
        client.busy.store(false, Ordering::SeqCst);
        if let Step::Wait(d) = step {
            tokio::time::sleep(d).await;
        }
    }
}

/// What the drill measured.
#[derive(Debug, Default)]
pub struct Report {
    pub unassign_refused: Duration,
    pub drain_refused: Duration,
    pub migrated_users: usize,
    pub migration_output: String,
    pub migration_reuploaded: u64,
    pub migration_target_uploads: f64,
    pub migration_target_acknowledged: u64,
    pub reuploaded_after_unassign: u64,
    pub reuploaded_after_drain: u64,
    pub kill_reassigned: Duration,
    pub reuploaded_after_kill: u64,
    pub records: usize,
    /// 503s clients met (the migration's fence among them).
    pub unavailable: u64,
}

/// Runs the drill with `count` clients on a deployment of three nodes
/// (the first is migrated from, the second drained, the busier of the
/// first and third killed); fails on any broken promise.
pub async fn run(deployment: &mut impl Deployment, count: usize) -> Report {
    let nodes = deployment.nodes();
    let metrics = deployment.metrics();
    assert_eq!(nodes.len(), 3, "the drill needs three nodes");
    let clients = Clients::start(&deployment.tokenserver(), count);
    let mut report = Report::default();
    clients.settle_on(&nodes, "every client syncing").await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 1. Unassign the third node: its clients are refused, fetch a new
    // token and start afresh on an empty storage.
    let moved = clients.on(&nodes[2]);
    let before = Clients::reuploaded_by(&clients.all);
    let since = Instant::now();
    admin(deployment, &["node", "unassign", &nodes[2]]);
    report.unassign_refused = Clients::refused(&moved, &nodes[2], since).await;
    clients
        .settle_on(&nodes, "every client syncing after the unassign")
        .await;
    report.reuploaded_after_unassign = Clients::reuploaded_by(&clients.all) - before;

    // 2. Migrate the first node to the second while everyone syncs: its
    // clients land on the second node and upload nothing again.
    clients.pause().await;
    let movers = clients.on(&nodes[0]);
    report.migrated_users = movers.len();
    let uploads_before = uploads_total(&metrics[1]).await;
    let written_before = clients.written_to(&nodes[1]);
    let reuploaded_before = Clients::reuploaded_by(&movers);
    clients.resume();
    report.migration_output = admin(deployment, &["node", "migrate", &nodes[0], &nodes[1]]);
    within(
        SETTLE,
        "every migrated client on the second node",
        || async {
            movers
                .iter()
                .all(|c| c.node().as_deref() == Some(nodes[1].as_str()))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    clients.pause().await;
    report.migration_reuploaded = Clients::reuploaded_by(&movers) - reuploaded_before;
    report.migration_target_uploads = uploads_total(&metrics[1]).await - uploads_before;
    report.migration_target_acknowledged = clients.written_to(&nodes[1]) - written_before;
    clients.resume();
    assert_eq!(
        report.migration_reuploaded, 0,
        "migrated clients uploaded again"
    );
    assert_eq!(
        report.migration_target_uploads, report.migration_target_acknowledged as f64,
        "the migration target stored uploads no client made"
    );

    // 3. Drain the second node at once: every token for it is refused.
    let drained = clients.on(&nodes[1]);
    let before = Clients::reuploaded_by(&clients.all);
    let since = Instant::now();
    admin(deployment, &["node", "drain", &nodes[1], "--now"]);
    report.drain_refused = Clients::refused(&drained, &nodes[1], since).await;
    let open = [nodes[0].clone(), nodes[2].clone()];
    clients
        .settle_on(&open, "every client off the drained node")
        .await;
    report.reuploaded_after_drain = Clients::reuploaded_by(&clients.all) - before;

    // 4. Kill the busier open node: it is noticed, its users move to the
    // other one.
    let (victim, survivor) = if clients.on(&nodes[0]).len() >= clients.on(&nodes[2]).len() {
        (0, 2)
    } else {
        (2, 0)
    };
    let before = Clients::reuploaded_by(&clients.all);
    deployment.kill(victim);
    report.kill_reassigned = clients
        .settle_on(
            std::slice::from_ref(&nodes[survivor]),
            "every client on the surviving node",
        )
        .await;
    report.reuploaded_after_kill = Clients::reuploaded_by(&clients.all) - before;

    // Every client: on the survivor, holding exactly what it was told it
    // stored.
    clients.pause().await;
    for client in &clients.all {
        let token = client.token().await.expect("a token");
        assert_eq!(node_of(&token), nodes[survivor]);
        let stored = token.get("/storage/bookmarks?full=1").await;
        assert_eq!(stored.status, 200);
        let stored: BTreeMap<String, String> = stored
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["id"].as_str().unwrap().to_owned(),
                    b["payload"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let local = client.state.lock().unwrap().local.clone();
        let lost: BTreeSet<&String> = local
            .keys()
            .filter(|id| stored.get(*id) != local.get(*id))
            .collect();
        assert!(
            lost.is_empty(),
            "{}: acknowledged writes lost: {lost:?}",
            client.fxa_uid
        );
        assert_eq!(
            stored.len(),
            local.len(),
            "{}: records no client wrote",
            client.fxa_uid
        );
        report.records += local.len();
        report.unavailable += client.state.lock().unwrap().unavailable;
    }
    clients.stop().await;
    assert!(report.unassign_refused <= MOVE_DEADLINE, "{report:?}");
    assert!(report.drain_refused <= MOVE_DEADLINE, "{report:?}");
    report
}

/// The operator command, run without stopping the clients.
fn admin(deployment: &impl Deployment, args: &[&str]) -> String {
    tokio::task::block_in_place(|| deployment.admin(args))
}
