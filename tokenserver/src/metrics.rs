//! The tokenserver's own metrics: token outcomes, FxA, allocations, nodes.
//! Names after OpenTelemetry's conventions (Prometheus adds `_total` and
//! the unit); every one is in `docs/observability.md`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::KeyValue;
use tokio::task::JoinHandle;

use crate::db::TokenStore;

/// Counter: token requests by `outcome`: `ok`, or the error body's status
/// (`invalid-credentials`, `invalid-generation`, …), or `cancelled`.
pub const TOKEN_REQUESTS: &str = "sync.tokenserver.token.requests";
/// Histogram (s): verifying an OAuth token, by `method` (`local` JWT,
/// `remote` at FxA) and `outcome` (`ok`, `invalid`, `unavailable`,
/// `cancelled`).
pub const VERIFICATIONS: &str = "sync.tokenserver.fxa.verification.duration";
/// Counter: fetches of FxA's signing keys, by `outcome` (`ok`, `failed`,
/// `cancelled`).
pub const JWKS_REFRESHES: &str = "sync.tokenserver.jwks.refreshes";
/// Counter: users placed on a node, by `node` and `kind` (`new`,
/// `reassigned`).
pub const ALLOCATIONS: &str = "sync.tokenserver.allocations";
/// Counter: FxA webhook events applied, by `type`.
pub const WEBHOOK_EVENTS: &str = "sync.tokenserver.webhook.events";
/// Gauges by `node`: its capacity, current load, room (`available`), its
/// users, and whether it is in service (1) or downed or backing off (0).
pub const NODE_CAPACITY: &str = "sync.tokenserver.node.capacity";
pub const NODE_LOAD: &str = "sync.tokenserver.node.load";
pub const NODE_AVAILABLE: &str = "sync.tokenserver.node.available";
pub const NODE_USERS: &str = "sync.tokenserver.node.users";
pub const NODE_UP: &str = "sync.tokenserver.node.up";

/// How often the node gauges are read from the database.
const NODES_REFRESH: Duration = Duration::from_secs(15);
/// Users per node are counted every this many refreshes (150 s).
const USERS_REFRESH_TICKS: u64 = 10;

struct Instruments {
    tokens: Counter<u64>,
    verifications: Histogram<f64>,
    jwks: Counter<u64>,
    allocations: Counter<u64>,
    webhook: Counter<u64>,
}

static INSTRUMENTS: LazyLock<Instruments> = LazyLock::new(|| {
    let meter = sync_common::telemetry::meter();
    Instruments {
        tokens: meter
            .u64_counter(TOKEN_REQUESTS)
            .with_unit("{request}")
            .with_description("Token requests by outcome.")
            .build(),
        verifications: sync_common::telemetry::seconds_histogram(
            VERIFICATIONS,
            "Time to verify an OAuth token.",
        ),
        jwks: meter
            .u64_counter(JWKS_REFRESHES)
            .with_unit("{fetch}")
            .with_description("Fetches of FxA's signing keys.")
            .build(),
        allocations: meter
            .u64_counter(ALLOCATIONS)
            .with_unit("{user}")
            .with_description("Users placed on a node.")
            .build(),
        webhook: meter
            .u64_counter(WEBHOOK_EVENTS)
            .with_unit("{event}")
            .with_description("FxA webhook events applied.")
            .build(),
    }
});

/// One token verification, recorded when dropped: by its `method`
/// (`local` until it turns to FxA) and its outcome, `cancelled` if it
/// never ended (the request gave up).
pub struct Verification {
    started: Instant,
    method: &'static str,
    outcome: &'static str,
}

impl Verification {
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            method: "local",
            outcome: "cancelled",
        }
    }

    /// FxA itself is asked.
    pub fn remote(&mut self) {
        self.method = "remote";
    }

    pub fn ended(&mut self, outcome: &'static str) {
        self.outcome = outcome;
    }
}

impl Drop for Verification {
    fn drop(&mut self) {
        INSTRUMENTS.verifications.record(
            self.started.elapsed().as_secs_f64(),
            &[
                KeyValue::new("method", self.method),
                KeyValue::new("outcome", self.outcome),
            ],
        );
    }
}

/// An event counted by its outcome when dropped: the one it ended with,
/// or `cancelled` (the request gave up before it ended).
pub struct Counted {
    counter: &'static Counter<u64>,
    outcome: &'static str,
}

impl Counted {
    fn on(counter: &'static Counter<u64>) -> Self {
        Self {
            counter,
            outcome: "cancelled",
        }
    }

    pub fn ended(&mut self, outcome: &'static str) {
        self.outcome = outcome;
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.counter
            .add(1, &[KeyValue::new("outcome", self.outcome)]);
    }
}

/// A token request: `ok`, or the error body's status.
pub fn token_request() -> Counted {
    Counted::on(&INSTRUMENTS.tokens)
}

/// A fetch of FxA's keys: `ok` or `failed`.
pub fn jwks_refresh() -> Counted {
    Counted::on(&INSTRUMENTS.jwks)
}

/// When metrics are on: the rare counters at 0 and the node gauges, which
/// read the nodes until dropped.
pub fn start(store: Arc<dyn TokenStore>) -> Option<NodeGauges> {
    if !sync_common::telemetry::metrics_enabled() {
        return None;
    }
    init();
    Some(NodeGauges::start(store))
}

/// Starts the counters of rare events at 0, so that their rates and
/// alerts have a series before the first one happens.
fn init() {
    for outcome in ["ok", "failed", "cancelled"] {
        INSTRUMENTS
            .jwks
            .add(0, &[KeyValue::new("outcome", outcome)]);
    }
    for kind in ["delete", "password-change"] {
        INSTRUMENTS.webhook.add(0, &[KeyValue::new("type", kind)]);
    }
}

/// A user placed on `node`: `new` or `reassigned`.
pub fn allocated(node: Option<&str>, kind: &'static str) {
    let node = node.unwrap_or("none").to_owned();
    INSTRUMENTS.allocations.add(
        1,
        &[KeyValue::new("node", node), KeyValue::new("kind", kind)],
    );
}

pub fn webhook_event(kind: &'static str) {
    INSTRUMENTS.webhook.add(1, &[KeyValue::new("type", kind)]);
}

/// One node as the gauges report it.
struct NodeReading {
    node: KeyValue,
    capacity: i64,
    load: i64,
    available: i64,
    users: i64,
    up: bool,
}

/// Reads the nodes every few seconds for the node gauges (a gauge's
/// callback cannot wait for the database); aborted on drop.
pub struct NodeGauges(JoinHandle<()>);

impl NodeGauges {
    fn start(store: Arc<dyn TokenStore>) -> Self {
        let readings: Arc<Mutex<Vec<NodeReading>>> = Arc::default();
        register_node_gauges(&readings);
        Self(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(NODES_REFRESH);
            let mut users = HashMap::new();
            for tick in 0u64.. {
                ticker.tick().await;
                // Counting users scans the users table: less often.
                let count_users = tick % USERS_REFRESH_TICKS == 0;
                let now = read_nodes(store.as_ref(), &mut users, count_users).await;
                if let Err(e) = &now {
                    tracing::debug!(error = %e, "cannot read the nodes for metrics");
                }
                // No readings rather than stale ones: a node last seen up
                // must not stay up while the database cannot say.
                *readings.lock().unwrap_or_else(|e| e.into_inner()) = now.unwrap_or_default();
            }
        }))
    }
}

impl Drop for NodeGauges {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The nodes now; `users` keeps each node's user count between counts.
async fn read_nodes(
    store: &dyn TokenStore,
    users: &mut HashMap<String, i64>,
    count_users: bool,
) -> crate::db::DbResult<Vec<NodeReading>> {
    let nodes = store.nodes().await?;
    users.retain(|url, _| nodes.iter().any(|n| &n.node == url));
    let mut readings = Vec::new();
    for node in nodes {
        if count_users || !users.contains_key(&node.node) {
            // A node removed meanwhile is simply not counted.
            if let Ok(count) = store.count_users(Some(&node.node)).await {
                users.insert(node.node.clone(), i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
        readings.push(NodeReading {
            users: users.get(&node.node).copied().unwrap_or_default(),
            node: KeyValue::new("node", node.node),
            capacity: node.capacity,
            load: node.current_load,
            available: node.available,
            up: !node.downed && !node.backoff,
        });
    }
    Ok(readings)
}

/// A node gauge: its name, description and reading.
type NodeGauge = (&'static str, &'static str, fn(&NodeReading) -> i64);

fn register_node_gauges(readings: &Arc<Mutex<Vec<NodeReading>>>) {
    let meter = sync_common::telemetry::meter();
    let gauges: [NodeGauge; 5] = [
        (NODE_CAPACITY, "Users the node may hold.", |r| r.capacity),
        (NODE_LOAD, "Users allocated to the node.", |r| r.load),
        (NODE_AVAILABLE, "Room for new users now.", |r| r.available),
        (NODE_USERS, "Live user records on the node.", |r| r.users),
        (NODE_UP, "1 in service, 0 downed or backing off.", |r| {
            i64::from(r.up)
        }),
    ];
    for (name, description, value) in gauges {
        let readings = readings.clone();
        meter
            .i64_observable_gauge(name)
            .with_description(description)
            .with_callback(move |o| {
                let readings = readings.lock().unwrap_or_else(|e| e.into_inner());
                for reading in readings.iter() {
                    o.observe(value(reading), std::slice::from_ref(&reading.node));
                }
            })
            .build();
    }
}
