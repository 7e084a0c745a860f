//! The names of the metrics both services record, after OpenTelemetry's
//! semantic conventions. Prometheus sees them with dots as underscores,
//! the unit as a suffix and `_total` on counters
//! (`http.server.request.duration` → `http_server_request_duration_seconds`).
//! Every metric is documented in `docs/observability.md`.

/// Histogram (s): time from a request's headers to the end of its response
/// body. Attributes: `http.request.method`, `http.route`, and
/// `http.response.status_code` (or `error.type = cancelled` for a request
/// dropped before its answer).
pub const HTTP_SERVER_DURATION: &str = "http.server.request.duration";
/// Histogram (By): request body bytes read, same attributes.
pub const HTTP_SERVER_REQUEST_SIZE: &str = "http.server.request.body.size";
/// Histogram (By): response body bytes sent, same attributes.
pub const HTTP_SERVER_RESPONSE_SIZE: &str = "http.server.response.body.size";
/// Up-down counter: requests being answered, by `http.request.method`.
pub const HTTP_SERVER_ACTIVE: &str = "http.server.active_requests";
/// Histogram (s): outgoing calls (FxA's verifier and keys), by
/// `server.address`, `http.request.method`, `http.response.status_code` or
/// `error.type`.
pub const HTTP_CLIENT_DURATION: &str = "http.client.request.duration";

/// Histogram (s): a storage or token operation, start to commit, by
/// `db.namespace`, `db.system.name`, `db.operation.name` and `outcome`.
pub const DB_OPERATION_DURATION: &str = "db.client.operation.duration";
/// Gauge: pool connections by `db.client.connection.state` (`idle`,
/// `used`) and `db.client.connection.pool.name`. (Not the conventions'
/// `db.client.connection.count`: Prometheus reserves `_count` for
/// histograms.)
pub const DB_CONNECTION_COUNT: &str = "db.client.connections.usage";
/// Gauge: the pool's most connections.
pub const DB_CONNECTION_MAX: &str = "db.client.connection.max";
/// Gauge: requests waiting for a connection.
pub const DB_CONNECTION_PENDING: &str = "db.client.connection.pending_requests";
/// Histogram (s): time spent waiting for a connection.
pub const DB_CONNECTION_WAIT: &str = "db.client.connection.wait_time";
/// Gauge: 1 when the last health check of the database passed, else 0.
pub const DB_HEALTH: &str = "sync.db.healthy";

/// Gauge (s): time since the process started.
pub const PROCESS_UPTIME: &str = "process.uptime";
/// Gauge (By): resident memory.
pub const PROCESS_MEMORY: &str = "process.memory.usage";
/// Gauge: open file descriptors.
pub const PROCESS_OPEN_FILES: &str = "process.open_file_descriptors";
/// Gauge, always 1: `service.name` and `service.version` as attributes.
pub const BUILD_INFO: &str = "sync.build.info";

/// Histogram bounds for durations (s): the semantic conventions' advice,
/// with finer steps below 5 ms, where most Sync requests end.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Histogram bounds for sizes (By): from one record to a full upload.
pub const BYTES_BUCKETS: &[f64] = &[
    0.0,
    100.0,
    1_000.0,
    10_000.0,
    100_000.0,
    1_000_000.0,
    10_000_000.0,
    100_000_000.0,
];
