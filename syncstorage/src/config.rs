//! The storage node's settings: one typed struct whose `Default` is the
//! single source of defaults. Loaded by `sync_common::config::load` from a
//! TOML file and `SYNC_` variables (`SYNC_SYNCSTORAGE__LIMITS__MAX_POST_RECORDS`).
//! Every setting is documented in `docs/configuration.md`.

use serde::{Deserialize, Serialize};
use sync_common::db_url::DatabaseUrl;
use sync_common::secret::Secret;
use sync_common::server::ConnectionLimits;

use crate::model::limits::Limits;

/// Top-level settings (shared key names with Mozilla's syncstorage-rs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on.
    pub port: u16,
    /// The URL clients use to reach this node, e.g. `https://sync.example.com`.
    /// Tokens must name it as their node, and HAWK signatures cover its host
    /// and port. Unset: taken from each request's `Host` header.
    pub public_url: Option<String>,
    /// Trust `X-Forwarded-Proto`/`-Host`/`-Port` (only behind your own proxy).
    pub trust_forwarded_headers: bool,
    /// The secret shared with the tokenserver. REQUIRED.
    pub master_secret: Secret,
    /// Older master secrets still accepted while tokens made with them live.
    pub previous_master_secrets: Vec<Secret>,
    /// Human-readable logs (true) or JSON lines (false).
    pub human_logs: bool,
    /// Default log filter when `RUST_LOG` is unset.
    pub log_level: String,
    /// `host:port` of the metrics listener (`GET /metrics`, Prometheus text),
    /// e.g. `127.0.0.1:9464`. Unset: off. Keep it off the public network.
    pub metrics_address: Option<String>,
    /// Client connections: timeouts and how many at once.
    pub connections: ConnectionLimits,
    /// Storage-node settings.
    pub syncstorage: StorageConfig,
}

/// Settings of the storage service itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// `sqlite:<path>` (default `sqlite:./data/syncstorage.db`).
    pub database_url: DatabaseUrl,
    /// Most open database connections for readers.
    pub database_max_connections: u32,
    /// How long a write waits for a locked database before answering 409.
    pub database_busy_timeout_ms: u64,
    /// How far a HAWK timestamp may be from the server clock, in seconds.
    pub hawk_skew_seconds: u64,
    /// `redis://host:port[/db]`: the replay cache every replica of this
    /// node shares, kept across restarts. Unset: in the process.
    pub replay_cache_url: Option<DatabaseUrl>,
    /// Enforce a per-user storage quota.
    pub enable_quota: bool,
    /// The quota, in payload bytes, when `enable_quota` is set.
    pub max_quota_limit: u64,
    /// Protocol limits, reported by `/info/configuration`.
    pub limits: Limits,
    /// How long an uncommitted batch lives, in seconds.
    pub batch_ttl_seconds: u64,
    /// Seconds between purges of expired BSOs and batches (0: never).
    pub purge_interval_seconds: u64,
    /// Rows removed per purge step, so purges never hold the database long.
    pub purge_chunk_rows: u64,
    /// Requests taking longer get 503.
    pub request_timeout_seconds: u64,
    /// Allowed CORS origins; `["*"]` allows any.
    pub cors_allowed_origins: Vec<String>,
    /// Send `X-Weave-Backoff` with this many seconds on every response.
    pub backoff_seconds: Option<u64>,
    /// Send this `X-Weave-Alert` on every response (text or JSON).
    pub alert: Option<String>,
    /// Answer every storage request with 513 and a hard end-of-life alert.
    pub decommissioned: bool,
    /// How often each process rereads the tokens the tokenserver revoked
    /// from the database (a notice takes effect at once on the process
    /// that takes it; on its replicas within this many seconds).
    pub revocation_refresh_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8000,
            public_url: None,
            trust_forwarded_headers: false,
            master_secret: Secret::default(),
            previous_master_secrets: Vec::new(),
            human_logs: true,
            log_level: "info".into(),
            metrics_address: None,
            connections: ConnectionLimits::default(),
            syncstorage: StorageConfig::default(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            database_url: DatabaseUrl::new("sqlite:./data/syncstorage.db"),
            database_max_connections: 8,
            database_busy_timeout_ms: 5_000,
            hawk_skew_seconds: 60,
            replay_cache_url: None,
            enable_quota: false,
            max_quota_limit: 2_097_152_000,
            limits: Limits::default(),
            batch_ttl_seconds: 2 * 60 * 60,
            purge_interval_seconds: 15 * 60,
            purge_chunk_rows: 1_000,
            request_timeout_seconds: 60,
            cors_allowed_origins: vec!["*".into()],
            backoff_seconds: None,
            alert: None,
            decommissioned: false,
            revocation_refresh_seconds: 2,
        }
    }
}

impl Config {
    /// Every problem with the settings, as sentences; empty when usable.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.master_secret.is_empty() {
            problems.push(
                "master_secret is required (SYNC_MASTER_SECRET, or SYNC_MASTER_SECRET_FILE); \
                 for a throw-away development server pass --dev"
                    .to_owned(),
            );
        }
        if let Some(url) = &self.public_url {
            if let Err(e) = crate::api::auth::Origin::parse(url) {
                problems.push(format!("public_url {url:?} is not usable: {e}"));
            }
        }
        if let Err(e) = self.syncstorage.database_url.backend() {
            problems.push(e);
        }
        let s = &self.syncstorage;
        if !(1..=3600).contains(&s.hawk_skew_seconds) {
            problems.push("syncstorage.hawk_skew_seconds must be between 1 and 3600".into());
        }
        if let Some(url) = &s.replay_cache_url {
            if !url.expose().starts_with("redis://") {
                problems.push(format!(
                    "syncstorage.replay_cache_url {url} must be a redis:// URL"
                ));
            }
        }
        if s.revocation_refresh_seconds == 0 {
            problems.push("syncstorage.revocation_refresh_seconds must be greater than 0".into());
        }
        if s.request_timeout_seconds == 0 {
            problems.push("syncstorage.request_timeout_seconds must be greater than 0".into());
        }
        if s.enable_quota && s.max_quota_limit == 0 {
            problems.push("syncstorage.max_quota_limit must be greater than 0".into());
        }
        problems.extend(s.limits.problems());
        problems.extend(self.connections.problems());
        if let Some(address) = &self.metrics_address {
            problems.extend(sync_common::telemetry::parse_address(address).err());
        }
        problems
    }

    /// The master secrets, newest (signing) first.
    pub fn secrets(&self) -> Vec<&str> {
        Secret::rotation(&self.master_secret, &self.previous_master_secrets)
    }
}

impl sync_common::cli::TelemetrySettings for Config {
    fn human_logs(&self) -> bool {
        self.human_logs
    }

    fn log_level(&self) -> &str {
        &self.log_level
    }

    fn metrics_address(&self) -> Option<&str> {
        self.metrics_address.as_deref()
    }
}
