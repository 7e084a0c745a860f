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
        operations: meter
            .f64_histogram(names::DB_OPERATION_DURATION)
            .with_unit("s")
            .with_description("Time of a storage or token operation, from its start to its commit.")
            .with_boundaries(names::SECONDS_BUCKETS.to_vec())
            .build(),
        wait: meter
            .f64_histogram(names::DB_CONNECTION_WAIT)
            .with_unit("s")
            .with_description("Time waited for a connection and the start of a transaction.")
            .with_boundaries(names::SECONDS_BUCKETS.to_vec())
            .build(),
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
    attributes: Arc<[KeyValue; 2]>,
    healthy: Arc<AtomicI64>,
}

impl Database {
    /// Also reports its health (`sync.db.healthy`): 1 until an operation
    /// finds it unavailable, 1 again when one succeeds.
    pub fn new(name: &'static str, system: &'static str) -> Self {
        let attributes = Arc::new([
            KeyValue::new("db.namespace", name),
            KeyValue::new("db.system.name", system),
        ]);
        let healthy = Arc::new(AtomicI64::new(1));
        let (observed, labels) = (healthy.clone(), attributes.clone());
        super::meter()
            .i64_observable_gauge(names::DB_HEALTH)
            .with_description("1 when the database answered its last operation, else 0.")
            .with_callback(move |o| o.observe(observed.load(Ordering::Relaxed), &labels[..]))
            .build();
        Self {
            attributes,
            healthy,
        }
    }

    /// Runs `operation` in a span of its own and records its time and
    /// outcome (`outcome` tells what a result means).
    pub async fn operation<T, E, F>(
        &self,
        name: &'static str,
        operation: F,
        outcome: impl FnOnce(&Result<T, E>) -> Outcome,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let span = tracing::info_span!(
            "db",
            otel.name = name,
            otel.kind = "client",
            db.operation.name = name,
            db.namespace = self.attributes[0].value.as_str().as_ref(),
            db.system.name = self.attributes[1].value.as_str().as_ref(),
        );
        let started = Instant::now();
        let result = operation.instrument(span).await;
        let outcome = outcome(&result);
        match outcome {
            Outcome::Ok | Outcome::Rejected => self.healthy.store(1, Ordering::Relaxed),
            Outcome::Unavailable => self.healthy.store(0, Ordering::Relaxed),
            Outcome::Failed => {}
        }
        let [namespace, system] = &*self.attributes;
        let attributes = [
            namespace.clone(),
            system.clone(),
            KeyValue::new("db.operation.name", name),
            KeyValue::new("outcome", outcome.label()),
        ];
        INSTRUMENTS
            .operations
            .record(started.elapsed().as_secs_f64(), &attributes);
        result
    }

    /// Marks the database healthy or not after a health check.
    pub fn checked(&self, healthy: bool) {
        self.healthy.store(i64::from(healthy), Ordering::Relaxed);
    }
}

/// Times how long `begin` (taking a connection and starting a transaction
/// on the pool `pool`) waits, and counts the waiters meanwhile.
pub async fn wait_for_connection<F: Future>(pool: &'static str, begin: F) -> F::Output {
    let attributes = [KeyValue::new("db.client.connection.pool.name", pool)];
    let instruments = &*INSTRUMENTS;
    instruments.pending.add(1, &attributes);
    let started = Instant::now();
    let connection = begin.await;
    instruments
        .wait
        .record(started.elapsed().as_secs_f64(), &attributes);
    instruments.pending.add(-1, &attributes);
    connection
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
