//! The operator's drill: Firefox-like clients sync without pause while a
//! deployment of one tokenserver and three storage nodes unassigns a node,
//! migrates one, drains one and loses one to SIGKILL. After every step,
//! every client's node holds exactly the records it was told it stored; the
//! old node refuses moved tokens within the promised delay; and a migration
//! makes nobody upload again: the target's own count of records written
//! equals the new records clients wrote there.
//!
//! The same drill runs on local processes (`tests/multinode/drill.rs`) and
//! on separate network addresses (`examples/drill.rs`, driven by
//! `integration-tests/netns-drill.sh`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::cluster::within;
use crate::fxa::access_token;
use crate::process::key_id;
use crate::prometheus::records_written;
use crate::sync_client::{get_token, Reply, SyncClient};

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

#[derive(Default)]
struct State {
    /// The current token; `None` once refused or unanswered.
    token: Option<SyncClient>,
    /// Whether its data was found (or uploaded again) on the token's node.
    checked: bool,
    /// The node had no `meta/global`: everything must be uploaded again.
    reupload: bool,
    /// Every acknowledged record: id → payload.
    local: BTreeMap<String, String>,
    /// The number in the last record id used.
    next: u64,
    /// New records acknowledged, by node (re-uploads not included).
    wrote: BTreeMap<String, u64>,
    /// Records (`meta/global` too) uploaded again after a fresh start.
    reuploaded: u64,
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
    /// In a sync (see `keep_syncing`).
    busy: AtomicBool,
    state: Mutex<State>,
}

/// What a client does next.
enum Step {
    Go,
    Wait(Duration),
}

impl Client {
    /// The node whose data it syncs with now.
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

    async fn sync(&self) -> Result<Step, Step> {
        let Some(client) = self.token().await else {
            return Err(Step::Wait(Duration::from_millis(200)));
        };
        if !self.state.lock().unwrap().checked {
            self.check(&client).await?;
        }
        self.call(&client, Method::GET, "/info/collections", None)
            .await?;
        let batch = self.new_records();
        let reply = self
            .call(&client, Method::POST, "/storage/bookmarks", Some(&batch))
            .await?;
        stored_all(&reply, &batch);
        let mut state = self.state.lock().unwrap();
        for record in batch.as_array().unwrap() {
            let (id, payload) = (record["id"].as_str(), record["payload"].as_str());
            state
                .local
                .insert(id.unwrap().to_owned(), payload.unwrap().to_owned());
        }
        *state.wrote.entry(node_of(&client)).or_default() += PER_SYNC as u64;
        Ok(Step::Wait(Duration::from_millis(
            50 + rand::random::<u64>() % 100,
        )))
    }

    /// Looks for its data on a newly reached node; starts afresh there if
    /// `meta/global` is missing.
    async fn check(&self, client: &SyncClient) -> Result<(), Step> {
        let meta = self
            .call(client, Method::GET, "/storage/meta/global", None)
            .await?;
        if meta.status == 404 {
            let global = json!({"payload": "{\"syncID\":\"drill\",\"storageVersion\":5}"});
            self.call(client, Method::PUT, "/storage/meta/global", Some(&global))
                .await?;
            let mut state = self.state.lock().unwrap();
            state.reupload = true;
            state.reuploaded += 1;
        }
        if self.state.lock().unwrap().reupload {
            self.reupload_all(client).await?;
        }
        self.state.lock().unwrap().checked = true;
        Ok(())
    }

    /// Uploads every record it holds, as Firefox does after a fresh start.
    async fn reupload_all(&self, client: &SyncClient) -> Result<(), Step> {
        let all: Vec<(String, String)> = self
            .state
            .lock()
            .unwrap()
            .local
            .clone()
            .into_iter()
            .collect();
        for chunk in all.chunks(100) {
            let batch: Value = chunk
                .iter()
                .map(|(id, payload)| json!({"id": id, "payload": payload}))
                .collect();
            let reply = self
                .call(client, Method::POST, "/storage/bookmarks", Some(&batch))
                .await?;
            stored_all(&reply, &batch);
            self.state.lock().unwrap().reuploaded += chunk.len() as u64;
        }
        self.state.lock().unwrap().reupload = false;
        Ok(())
    }

    /// One request. A 401 drops the token, and so does no answer (the node
    /// may be gone); a 503 or 409 waits. Any other error fails the drill.
    async fn call(
        &self,
        client: &SyncClient,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, Step> {
        let reply = client
            .try_send(method.clone(), path, body, REQUEST_LIMIT)
            .await;
        let node = node_of(client);
        let Some(reply) = reply else {
            self.forget(None);
            return Err(Step::Wait(Duration::from_millis(200)));
        };
        match reply.status {
            200 => Ok(reply),
            404 if path == "/storage/meta/global" => Ok(reply),
            401 => {
                self.forget(Some(node));
                Err(Step::Go)
            }
            503 => {
                self.state.lock().unwrap().unavailable += 1;
                let after = reply.header("retry-after").and_then(|s| s.parse().ok());
                let after = Duration::from_secs(after.unwrap_or(1));
                Err(Step::Wait(after.min(Duration::from_secs(1))))
            }
            409 => Err(Step::Wait(Duration::from_millis(50))),
            status => panic!("{node} {method} {path}: {status} {}", reply.text),
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

    fn new_records(&self) -> Value {
        let mut state = self.state.lock().unwrap();
        (0..PER_SYNC)
            .map(|_| {
                state.next += 1;
                let id = format!("r{:06}", state.next);
                json!({"id": id, "payload": format!("{} {id}", self.fxa_uid)})
            })
            .collect()
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

    /// Fails unless its node holds exactly the records it was told it
    /// stored; how many that is. Call it paused, on a checked node.
    async fn assert_stored(&self) -> usize {
        let token = self.state.lock().unwrap().token.clone().unwrap();
        let reply = token.get("/storage/bookmarks?full=1").await;
        assert_eq!(reply.status, 200);
        assert!(
            reply.header("x-weave-next-offset").is_none(),
            "more than one page"
        );
        let stored: BTreeMap<String, String> = reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let (id, payload) = (b["id"].as_str(), b["payload"].as_str());
                (id.unwrap().to_owned(), payload.unwrap().to_owned())
            })
            .collect();
        let local = self.state.lock().unwrap().local.clone();
        let node = node_of(&token);
        let lost: Vec<&String> = local
            .keys()
            .filter(|id| stored.get(*id) != local.get(*id))
            .collect();
        assert!(
            lost.is_empty(),
            "{}: acknowledged writes lost on {node}: {lost:?}",
            self.fxa_uid
        );
        assert_eq!(
            stored.len(),
            local.len(),
            "{}: records on {node} no client acknowledged",
            self.fxa_uid
        );
        local.len()
    }
}

/// The node answered a POST with every record of `batch` stored.
fn stored_all(reply: &Reply, batch: &Value) {
    let success = reply.json()["success"].clone();
    for record in batch.as_array().unwrap() {
        assert!(
            success.as_array().unwrap().contains(&record["id"]),
            "{}",
            reply.text
        );
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

    /// Fails the drill at once if a client failed (its panic is printed
    /// above).
    fn all_alive(&self) {
        assert!(
            !self.tasks.iter().any(|t| t.is_finished()),
            "a client failed"
        );
    }

    /// Waits until `check` holds, failing if a client fails meanwhile.
    async fn until(&self, what: &str, check: impl Fn() -> bool) -> Duration {
        within(SETTLE, what, || {
            self.all_alive();
            let holds = check();
            async move { holds }
        })
        .await
    }

    /// Pauses every client between syncs once each syncs with one of
    /// `nodes`; how long they took to get there.
    async fn pause_on(&self, nodes: &[String], what: &str) -> Duration {
        let started = Instant::now();
        let settled = || {
            self.all
                .iter()
                .all(|c| c.node().is_some_and(|n| nodes.contains(&n)))
        };
        loop {
            assert!(
                started.elapsed() < SETTLE * 2,
                "{what}: clients keep moving"
            );
            self.until(what, &settled).await;
            self.paused.store(true, Ordering::SeqCst);
            self.until("clients pausing", || {
                self.all.iter().all(|c| !c.busy.load(Ordering::SeqCst))
            })
            .await;
            // A client may have moved between the two looks.
            if settled() {
                return started.elapsed();
            }
            self.resume();
        }
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// The clients syncing with `node` now.
    fn syncing_with(&self, node: &str) -> Vec<Arc<Client>> {
        let on_node = |c: &&Arc<Client>| c.node().as_deref() == Some(node);
        self.all.iter().filter(on_node).cloned().collect()
    }

    /// The same, for a step that must move someone.
    fn on(&self, node: &str) -> Vec<Arc<Client>> {
        let on = self.syncing_with(node);
        assert!(
            !on.is_empty(),
            "no client syncs with {node}: the step would prove nothing"
        );
        on
    }

    /// Paused: every client's node holds exactly its records; how many.
    async fn assert_stored(&self) -> usize {
        let mut records = 0;
        for client in &self.all {
            records += client.assert_stored().await;
        }
        records
    }

    /// New records acknowledged by `node`, from all clients.
    fn wrote_to(&self, node: &str) -> u64 {
        let wrote = |c: &Arc<Client>| c.state.lock().unwrap().wrote.get(node).copied();
        self.all.iter().filter_map(wrote).sum()
    }

    fn reuploaded(clients: &[Arc<Client>]) -> u64 {
        clients
            .iter()
            .map(|c| c.state.lock().unwrap().reuploaded)
            .sum()
    }

    /// The longest any of `clients` took to be refused by `node` after
    /// `since`; waits for all of them.
    async fn refused(&self, clients: &[Arc<Client>], node: &str, since: Instant) -> Duration {
        self.until("every moved client refused by the old node", || {
            clients
                .iter()
                .all(|c| c.refused_after(node, since).is_some())
        })
        .await;
        let took = |c: &Arc<Client>| c.refused_after(node, since).unwrap() - since;
        clients.iter().map(took).max().unwrap_or_default()
    }

    async fn stop(self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.resume();
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

/// Clears a client's busy flag however its sync ends (a panic included,
/// so that a pause never waits for a client that is gone).
struct Busy<'a>(&'a AtomicBool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

async fn keep_syncing(client: Arc<Client>, paused: Arc<AtomicBool>, stopped: Arc<AtomicBool>) {
    while !stopped.load(Ordering::SeqCst) {
        // Busy first, then look at the switch: `pause_on` sets the switch,
        // then waits for busy to clear, so neither misses the other.
        client.busy.store(true, Ordering::SeqCst);
        let busy = Busy(&client.busy);
        let step = if paused.load(Ordering::SeqCst) {
            Step::Wait(Duration::from_millis(20))
        } else {
            client.sync().await.unwrap_or_else(|step| step)
        };
        drop(busy);
        if let Step::Wait(d) = step {
            tokio::time::sleep(d).await;
        }
    }
}

/// What the drill measured.
#[derive(Debug, Default)]
pub struct Report {
    /// Longest time from `node unassign` to a moved client's 401.
    pub unassign_refused: Duration,
    /// Records uploaded again by clients the unassign moved.
    pub unassign_reuploaded: u64,
    pub migrated_users: usize,
    /// Longest time from the start of `node migrate` to a moved client's
    /// 401 (the copy included).
    pub migration_refused: Duration,
    pub migration_output: String,
    /// Records the migrated clients uploaded again (must be 0).
    pub migration_reuploaded: u64,
    /// Records written on the target while the migration ran, by its own
    /// count, and new records clients wrote there (must be equal).
    pub migration_target_written: f64,
    pub migration_target_new_records: u64,
    /// Longest time from `node drain --now` to a client's 401.
    pub drain_refused: Duration,
    pub drain_reuploaded: u64,
    /// From the SIGKILL until every client synced with the survivor.
    pub kill_reassigned: Duration,
    pub kill_reuploaded: u64,
    /// Records held at the end, all clients together.
    pub records: usize,
    /// 503s clients met (the migration's fence among them).
    pub unavailable: u64,
}

/// Runs the drill with `count` clients on a deployment of three nodes
/// (the first is migrated from, the second drained, the busier of the
/// first and third killed); fails on any broken promise.
pub async fn run(deployment: &mut impl Deployment, count: usize) -> Report {
    let nodes = deployment.nodes();
    assert_eq!(nodes.len(), 3, "the drill needs three nodes");
    let clients = Clients::start(&deployment.tokenserver(), count);
    let mut report = Report::default();
    clients.pause_on(&nodes, "every client syncing").await;
    clients.resume();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 1. Unassign the third node: its clients are refused, fetch a new
    // token and start afresh on an empty storage.
    clients.pause_on(&nodes, "every client syncing").await;
    let unassign = ["node", "unassign", &nodes[2]];
    (report.unassign_refused, report.unassign_reuploaded) =
        move_away(&clients, deployment, &nodes[2], &unassign, &nodes).await;

    // 2. Migrate the first node to the second while everyone syncs.
    migrate(&clients, deployment, &mut report).await;

    // 3. Drain the second node at once: every token for it is refused.
    let drain = ["node", "drain", &nodes[1], "--now"];
    let open = [nodes[0].clone(), nodes[2].clone()];
    (report.drain_refused, report.drain_reuploaded) =
        move_away(&clients, deployment, &nodes[1], &drain, &open).await;

    // 4. Kill the busier open node: it is noticed, its users move to the
    // other one.
    kill(&clients, deployment, &mut report).await;
    report.records = clients.assert_stored().await;
    report.unavailable = clients
        .all
        .iter()
        .map(|c| c.state.lock().unwrap().unavailable)
        .sum();
    clients.stop().await;
    report
}

/// From paused clients: moves those of `node` with the operator's
/// `command`, then pauses them again once all sync with `open`. Each moved
/// client is refused within the deadline and starts afresh; the longest
/// refusal, and the records they uploaded again.
async fn move_away(
    clients: &Clients,
    deployment: &impl Deployment,
    node: &str,
    command: &[&str],
    open: &[String],
) -> (Duration, u64) {
    let moved = clients.on(node);
    let before = Clients::reuploaded(&moved);
    clients.resume();
    let since = Instant::now();
    admin(deployment, command);
    let refused = clients.refused(&moved, node, since).await;
    assert!(
        refused <= MOVE_DEADLINE,
        "{command:?}: refused after {refused:?}"
    );
    clients.pause_on(open, "every client off the node").await;
    let reuploaded = Clients::reuploaded(&moved) - before;
    // Each started afresh: `meta/global` at least.
    assert!(
        reuploaded >= moved.len() as u64,
        "{command:?}: {reuploaded} uploaded again"
    );
    clients.assert_stored().await;
    (refused, reuploaded)
}

/// From paused clients: migrates the first node to the second while
/// everyone syncs. Its clients land on the second node and upload
/// nothing again, and the second node's own count of records written
/// equals the new records clients wrote there.
async fn migrate(clients: &Clients, deployment: &impl Deployment, report: &mut Report) {
    let (nodes, metrics) = (deployment.nodes(), deployment.metrics());
    let movers = clients.on(&nodes[0]);
    report.migrated_users = movers.len();
    let written_before = records_written(&metrics[1]).await;
    let wrote_before = clients.wrote_to(&nodes[1]);
    let reuploaded_before = Clients::reuploaded(&movers);
    clients.resume();
    let since = Instant::now();
    report.migration_output = admin(deployment, &["node", "migrate", &nodes[0], &nodes[1]]);
    report.migration_refused = clients.refused(&movers, &nodes[0], since).await;
    let open = [nodes[1].clone(), nodes[2].clone()];
    clients
        .pause_on(&open, "every client off the migrated node")
        .await;
    for mover in &movers {
        assert_eq!(
            mover.node().as_deref(),
            Some(nodes[1].as_str()),
            "{}",
            mover.fxa_uid
        );
    }
    report.migration_reuploaded = Clients::reuploaded(&movers) - reuploaded_before;
    report.migration_target_written = records_written(&metrics[1]).await - written_before;
    report.migration_target_new_records = clients.wrote_to(&nodes[1]) - wrote_before;
    assert_eq!(
        report.migration_reuploaded, 0,
        "migrated clients uploaded again: {report:?}"
    );
    assert_eq!(
        report.migration_target_written, report.migration_target_new_records as f64,
        "the migration target stored uploads beyond the clients' new records: {report:?}"
    );
    clients.assert_stored().await;
}

/// From paused clients: kills the busier of the first and third nodes and
/// pauses the clients again once every one syncs with the other.
async fn kill(clients: &Clients, deployment: &mut impl Deployment, report: &mut Report) {
    let nodes = deployment.nodes();
    let busier = |a: usize, b: usize| {
        clients.syncing_with(&nodes[a]).len() >= clients.syncing_with(&nodes[b]).len()
    };
    let (victim, survivor) = if busier(0, 2) { (0, 2) } else { (2, 0) };
    let lost = clients.on(&nodes[victim]);
    let before = Clients::reuploaded(&clients.all);
    clients.resume();
    let killed = Instant::now();
    deployment.kill(victim);
    clients
        .pause_on(
            std::slice::from_ref(&nodes[survivor]),
            "every client on the surviving node",
        )
        .await;
    report.kill_reassigned = killed.elapsed();
    report.kill_reuploaded = Clients::reuploaded(&clients.all) - before;
    assert!(report.kill_reuploaded >= lost.len() as u64, "{report:?}");
}

/// The operator command, run without stopping the clients.
fn admin(deployment: &impl Deployment, args: &[&str]) -> String {
    tokio::task::block_in_place(|| deployment.admin(args))
}
