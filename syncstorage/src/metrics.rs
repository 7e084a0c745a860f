//! The storage node's own metrics: what was synced, and the protocol's
//! refusals. Names after OpenTelemetry's conventions (Prometheus adds
//! `_total` and the unit); every one is in `docs/observability.md`.

use std::sync::LazyLock;

use opentelemetry::metrics::Counter;
use opentelemetry::KeyValue;

use crate::model::bso::{Bso, BsoInput, CollectionName};

/// Counter: BSOs written (POST, PUT, batch commits), by `collection`.
pub const RECORDS_WRITTEN: &str = "sync.storage.records.written";
/// Counter (By): payload bytes written, by `collection`.
pub const PAYLOAD_WRITTEN: &str = "sync.storage.payload.written";
/// Counter: BSOs returned by GETs, by `collection`.
pub const RECORDS_READ: &str = "sync.storage.records.read";
/// Counter (By): payload bytes returned by GETs, by `collection`.
pub const PAYLOAD_READ: &str = "sync.storage.payload.read";
/// Counter: batches by `event`: `opened`, `committed`, `expired` (purged
/// unapplied), `discarded` (the oldest of a user's open batches, dropped
/// for a new one).
pub const BATCHES: &str = "sync.storage.batches";
/// Counter: writes refused with 409 because another write held the user.
pub const CONFLICTS: &str = "sync.storage.conflicts";
/// Counter: requests answered by their precondition, by `status` (304, 412).
pub const PRECONDITIONS: &str = "sync.storage.preconditions";
/// Counter: writes refused for the user's quota.
pub const QUOTA_REJECTIONS: &str = "sync.storage.quota.rejections";
/// Counter: purge runs of expired data, by `outcome` (`ok`, `failed`).
pub const PURGE_RUNS: &str = "sync.storage.purge.runs";
/// Counter: rows the purge removed, by `kind` (`records`, `batch_items`,
/// `batches`).
pub const PURGED_ROWS: &str = "sync.storage.purge.rows";

/// Collections Firefox and the mobile clients use; any other name is
/// `other`, so that a client cannot make labels without bound.
const STANDARD_COLLECTIONS: &[&str] = &[
    "addons",
    "addresses",
    "bookmarks",
    "clients",
    "creditcards",
    "crypto",
    "forms",
    "history",
    "keys",
    "meta",
    "passwords",
    "prefs",
    "tabs",
];

struct Instruments {
    records_written: Counter<u64>,
    payload_written: Counter<u64>,
    records_read: Counter<u64>,
    payload_read: Counter<u64>,
    batches: Counter<u64>,
    conflicts: Counter<u64>,
    preconditions: Counter<u64>,
    quota_rejections: Counter<u64>,
    purge_runs: Counter<u64>,
    purged_rows: Counter<u64>,
}

static INSTRUMENTS: LazyLock<Instruments> = LazyLock::new(|| {
    let meter = sync_common::telemetry::meter();
    let counter = |name: &'static str, unit: &'static str, description: &'static str| {
        meter
            .u64_counter(name)
            .with_unit(unit)
            .with_description(description)
            .build()
    };
    Instruments {
        records_written: counter(RECORDS_WRITTEN, "{record}", "BSOs written."),
        payload_written: counter(PAYLOAD_WRITTEN, "By", "Payload bytes written."),
        records_read: counter(RECORDS_READ, "{record}", "BSOs returned by GETs."),
        payload_read: counter(PAYLOAD_READ, "By", "Payload bytes returned by GETs."),
        batches: counter(BATCHES, "{batch}", "Batches opened, committed and expired."),
        conflicts: counter(CONFLICTS, "{request}", "Writes refused with 409."),
        preconditions: counter(PRECONDITIONS, "{request}", "Requests answered 304 or 412."),
        quota_rejections: counter(QUOTA_REJECTIONS, "{request}", "Writes refused for quota."),
        purge_runs: counter(PURGE_RUNS, "{run}", "Purges of expired data."),
        purged_rows: counter(PURGED_ROWS, "{row}", "Rows the purge removed."),
    }
});

fn collection(name: &CollectionName) -> [KeyValue; 1] {
    let name = name.as_str();
    let label = STANDARD_COLLECTIONS
        .iter()
        .find(|standard| **standard == name)
        .copied()
        .unwrap_or("other");
    [KeyValue::new("collection", label)]
}

/// `writes` committed to `coll`.
pub fn written(coll: &CollectionName, writes: &[BsoInput]) {
    let labels = collection(coll);
    let bytes: usize = writes.iter().map(BsoInput::payload_len).sum();
    INSTRUMENTS
        .records_written
        .add(writes.len() as u64, &labels);
    INSTRUMENTS.payload_written.add(bytes as u64, &labels);
}

/// BSOs sent to a client from one collection, counted when done (a page
/// cut short counts what was sent).
pub struct Read {
    labels: [KeyValue; 1],
    records: u64,
    bytes: u64,
}

impl Read {
    pub fn of(coll: &CollectionName) -> Self {
        Self {
            labels: collection(coll),
            records: 0,
            bytes: 0,
        }
    }

    pub fn add(&mut self, bso: &Bso) {
        self.records += 1;
        self.bytes += bso.payload.len() as u64;
    }
}

impl Drop for Read {
    fn drop(&mut self) {
        INSTRUMENTS.records_read.add(self.records, &self.labels);
        INSTRUMENTS.payload_read.add(self.bytes, &self.labels);
    }
}

/// A batch event: `opened`, `committed`, `expired` or `discarded`
/// (`count` of them).
pub fn batches(event: &'static str, count: u64) {
    INSTRUMENTS
        .batches
        .add(count, &[KeyValue::new("event", event)]);
}

/// Starts the counters of rare events at 0, so that their rates and
/// alerts have a series before the first one happens.
pub fn init() {
    let m = &*INSTRUMENTS;
    m.conflicts.add(0, &[]);
    m.quota_rejections.add(0, &[]);
    for status in [304, 412] {
        m.preconditions
            .add(0, &[KeyValue::new("status", i64::from(status))]);
    }
    for event in ["opened", "committed", "expired", "discarded"] {
        batches(event, 0);
    }
    for outcome in ["ok", "failed"] {
        m.purge_runs.add(0, &[KeyValue::new("outcome", outcome)]);
    }
}

pub fn conflict() {
    INSTRUMENTS.conflicts.add(1, &[]);
}

/// A request answered by its precondition with `status` (304 or 412).
pub fn precondition(status: u16) {
    INSTRUMENTS
        .preconditions
        .add(1, &[KeyValue::new("status", i64::from(status))]);
}

pub fn quota_rejection() {
    INSTRUMENTS.quota_rejections.add(1, &[]);
}

/// A purge run, whether it ran to its end, and what it removed.
pub fn purged(purged: &crate::db::Purged, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    INSTRUMENTS
        .purge_runs
        .add(1, &[KeyValue::new("outcome", outcome)]);
    for (kind, rows) in [
        ("records", purged.records),
        ("batch_items", purged.batch_items),
        ("batches", purged.batches),
    ] {
        INSTRUMENTS
            .purged_rows
            .add(rows, &[KeyValue::new("kind", kind)]);
    }
    batches("expired", purged.batches);
}
