//! Database telemetry both services share: a span and a latency per
//! operation, the database's health, and each pool's connections and waits.

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use opentelemetry::metrics::{Histogram, UpDownCounter};
use opentelemetry::KeyValue;
use tracing::Instrument;

use super::names;

/// How an operation ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused by a protocol rule (not found, precondition, conflict,
    /// quota): the database worked.
    Rejected,
    /// The database could not be reached or used: unhealthy.
    Unavailable,
    /// Anything else that failed.
    Failed,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Rejected => "rejected",
            Outcome::Unavailable => "unavailable",
            Outcome::Failed => "failed",
        }
    }
}

struct Instruments {
    operations: Histogram<f64>,
    wait: Histogram<f64>,
    pending: UpDownCounter<i64>,
}

static INSTRUMENTS: LazyLock<Instruments> = LazyLock::new(|| {
    let meter = super::meter();
    Instruments {
        operations: super::seconds_histogram(
            names::DB_OPERATION_DURATION,
            "Time of a storage or token operation, from its start to its commit.",
        ),
        wait: super::seconds_histogram(
            names::DB_CONNECTION_WAIT,
            "Time waited for a connection and the start of a transaction.",
        ),
        pending: meter
            .i64_up_down_counter(names::DB_CONNECTION_PENDING)
            .with_unit("{request}")
            .with_description("Operations waiting for a connection.")
            .build(),
    }
});

/// One service's database (`syncstorage`, `tokenserver`) on one backend.
#[derive(Clone)]
pub struct Database {
    namespace: &'static str,
    system: &'static str,
    healthy: Arc<AtomicI64>,
}

impl Database {
    /// Also reports its health (`sync.db.healthy`): 1 until an operation
    /// finds it unavailable, 1 again when one succeeds.
    pub fn new(namespace: &'static str, backend: &'static str) -> Self {
        // The semantic conventions' names of the systems.
        let system = match backend {
            "postgres" => "postgresql",
            other => other,
        };
        let healthy = Arc::new(AtomicI64::new(1));
        let observed = healthy.clone();
        let labels = [
            KeyValue::new("db.namespace", namespace),
            KeyValue::new("db.system.name", system),
        ];
        super::meter()
            .i64_observable_gauge(names::DB_HEALTH)
            .with_description("1 when the database answered its last operation, else 0.")
            .with_callback(move |o| o.observe(observed.load(Ordering::Relaxed), &labels))
            .build();
        Self {
            namespace,
            system,
            healthy,
        }
    }

    /// Runs `operation` to its end on a task of its own (see
    /// [`crate::task::to_completion`]) in a span of its own, and records
    /// its time and `outcome` there: a caller that gives up (its client
    /// left, its deadline passed) changes neither. `lost` turns a panic of
    /// the task into the caller's error.
    pub async fn detached<T, E, F>(
        &self,
        name: &'static str,
        operation: F,
        outcome: fn(&Result<T, E>) -> Outcome,
        lost: fn(tokio::task::JoinError) -> E,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let span = tracing::info_span!(
            "db",
            otel.name = name,
            otel.kind = "client",
            db.operation.name = name,
            db.namespace = self.namespace,
            db.system.name = self.system,
        );
        let database = self.clone();
        let measured = async move {
            let started = Instant::now();
            let result = operation.await;
            database.record(name, started, outcome(&result));
            result
        };
        crate::task::to_completion(measured.instrument(span))
            .await
            .unwrap_or_else(|e| Err(lost(e)))
    }

    fn record(&self, name: &'static str, started: Instant, outcome: Outcome) {
        match outcome {
            Outcome::Ok | Outcome::Rejected => self.healthy.store(1, Ordering::Relaxed),
            Outcome::Unavailable => self.healthy.store(0, Ordering::Relaxed),
            Outcome::Failed => {}
        }
        let attributes = [
            KeyValue::new("db.namespace", self.namespace),
            KeyValue::new("db.system.name", self.system),
            KeyValue::new("db.operation.name", name),
            KeyValue::new("outcome", outcome.label()),
        ];
        INSTRUMENTS
            .operations
            .record(started.elapsed().as_secs_f64(), &attributes);
    }
}

/// Times how long `begin` (taking a connection from the pool `pool` and
/// starting a transaction) waits, and counts the waiters meanwhile.
pub async fn wait_for_connection<F: Future>(pool: &'static str, begin: F) -> F::Output {
    let waiting = Waiting::start(pool);
    let connection = begin.await;
    drop(waiting);
    connection
}

/// One waiter for a connection, until dropped (however the wait ends).
struct Waiting {
    attributes: [KeyValue; 1],
    started: Instant,
}

impl Waiting {
    fn start(pool: &'static str) -> Self {
        let attributes = [KeyValue::new("db.client.connection.pool.name", pool)];
        INSTRUMENTS.pending.add(1, &attributes);
        Self {
            attributes,
            started: Instant::now(),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        INSTRUMENTS
            .wait
            .record(self.started.elapsed().as_secs_f64(), &self.attributes);
        INSTRUMENTS.pending.add(-1, &self.attributes);
    }
}

/// Reports the pool's connections (idle and used) and its maximum.
pub fn observe_pool<DB: sqlx::Database>(pool_name: &'static str, pool: &sqlx::Pool<DB>) {
    let meter = super::meter();
    let observed = pool.clone();
    meter
        .u64_observable_gauge(names::DB_CONNECTION_COUNT)
        .with_unit("{connection}")
        .with_description("Open connections of the pool, by state.")
        .with_callback(move |o| {
            let idle = observed.num_idle() as u64;
            let open = u64::from(observed.size());
            let name = KeyValue::new("db.client.connection.pool.name", pool_name);
            o.observe(
                idle,
                &[
                    name.clone(),
                    KeyValue::new("db.client.connection.state", "idle"),
                ],
            );
            o.observe(
                open.saturating_sub(idle),
                &[name, KeyValue::new("db.client.connection.state", "used")],
            );
        })
        .build();
    let max = u64::from(pool.options().get_max_connections());
    meter
        .u64_observable_gauge(names::DB_CONNECTION_MAX)
        .with_unit("{connection}")
        .with_description("The most connections the pool opens.")
        .with_callback(move |o| {
            o.observe(
                max,
                &[KeyValue::new("db.client.connection.pool.name", pool_name)],
            );
        })
        .build();
}
