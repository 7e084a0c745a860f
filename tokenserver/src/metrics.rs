//! The tokenserver's own metrics: token outcomes, FxA, allocations, nodes.
//! Names after OpenTelemetry's conventions (Prometheus adds `_total` and
//! the unit); every one is in `docs/observability.md`.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::KeyValue;
use tokio::task::JoinHandle;

use crate::db::TokenStore;

/// Counter: token requests by `outcome`: `ok`, or the error body's status
/// (`invalid-credentials`, `invalid-generation`, …).
pub const TOKEN_REQUESTS: &str = "sync.tokenserver.token.requests";
/// Histogram (s): verifying an OAuth token, by `method` (`local` JWT,
/// `remote` at FxA) and `outcome` (`ok`, `invalid`, `unavailable`).
pub const VERIFICATIONS: &str = "sync.tokenserver.fxa.verification.duration";
/// Counter: fetches of FxA's signing keys, by `outcome` (`ok`, `failed`).
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
        verifications: meter
            .f64_histogram(VERIFICATIONS)
            .with_unit("s")
            .with_description("Time to verify an OAuth token.")
            .with_boundaries(sync_common::telemetry::names::SECONDS_BUCKETS.to_vec())
            .build(),
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

/// A token request ended with `outcome` (`ok` or an error status).
pub fn token_request(outcome: &'static str) {
    INSTRUMENTS
        .tokens
        .add(1, &[KeyValue::new("outcome", outcome)]);
}

/// A verification by `method` that took since `started` and ended so.
pub fn verified(method: &'static str, started: Instant, outcome: &'static str) {
    INSTRUMENTS.verifications.record(
        started.elapsed().as_secs_f64(),
        &[
            KeyValue::new("method", method),
            KeyValue::new("outcome", outcome),
        ],
    );
}

/// Starts the counters of rare events at 0, so that their rates and
/// alerts have a series before the first one happens.
pub fn init() {
    for outcome in ["ok", "failed"] {
        INSTRUMENTS
            .jwks
            .add(0, &[KeyValue::new("outcome", outcome)]);
    }
    for kind in ["delete", "password-change"] {
        INSTRUMENTS.webhook.add(0, &[KeyValue::new("type", kind)]);
    }
}

pub fn jwks_refreshed(ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    INSTRUMENTS
        .jwks
        .add(1, &[KeyValue::new("outcome", outcome)]);
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
/// callback cannot wait for the database). Only started when metrics are
/// on; aborted on drop.
pub struct NodeGauges(JoinHandle<()>);

impl NodeGauges {
    pub fn start(store: Arc<dyn TokenStore>) -> Self {
        let readings: Arc<Mutex<Vec<NodeReading>>> = Arc::default();
        register_node_gauges(&readings);
        Self(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(NODES_REFRESH);
            loop {
                ticker.tick().await;
                match read_nodes(store.as_ref()).await {
                    Ok(now) => *readings.lock().unwrap_or_else(|e| e.into_inner()) = now,
                    Err(e) => tracing::debug!(error = %e, "cannot read the nodes for metrics"),
                }
            }
        }))
    }
}

impl Drop for NodeGauges {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn read_nodes(store: &dyn TokenStore) -> crate::db::DbResult<Vec<NodeReading>> {
    let mut readings = Vec::new();
    for node in store.nodes().await? {
        let users = store.count_users(Some(&node.node)).await?;
        readings.push(NodeReading {
            node: KeyValue::new("node", node.node),
            capacity: node.capacity,
            load: node.current_load,
            available: node.available,
            users: i64::try_from(users).unwrap_or(i64::MAX),
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
