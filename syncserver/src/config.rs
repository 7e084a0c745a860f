//! The all-in-one's settings: the shared top-level keys, plus the
//! `syncstorage` and `tokenserver` sections of the two services (the same
//! keys and `SYNC_` variables as their own binaries).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sync_common::db_url::DatabaseUrl;
use sync_common::secret::Secret;
use sync_common::server::ConnectionLimits;
use syncstorage::config::StorageConfig;
use tokenserver::TokenserverConfig;

/// Top-level settings of the `syncserver` binary.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on (`0.0.0.0` to accept other machines).
    pub host: String,
    /// Port to listen on.
    pub port: u16,
    /// The URL Firefox reaches this server at, e.g. `https://sync.example.com`.
    /// Unset: `http://localhost:<port>` (or `http://<host>:<port>`).
    pub public_url: Option<String>,
    /// Signs tokens. Unset: generated once and kept in `<data_dir>/master_secret`.
    pub master_secret: Secret,
    /// Older master secrets still accepted.
    pub previous_master_secrets: Vec<Secret>,
    /// Where the SQLite files and the generated master secret live.
    pub data_dir: PathBuf,
    /// Human-readable logs (true) or JSON lines (false).
    pub human_logs: bool,
    /// Default log filter when `RUST_LOG` is unset.
    pub log_level: String,
    /// `host:port` of the metrics listener (`GET /metrics`, Prometheus text),
    /// e.g. `127.0.0.1:9464`. Unset: off. Keep it off the public network.
    pub metrics_address: Option<String>,
    /// Client connections: timeouts and how many at once.
    pub connections: ConnectionLimits,
    /// The storage node.
    pub syncstorage: StorageConfig,
    /// The tokenserver.
    pub tokenserver: TokenserverConfig,
}

impl Default for Config {
    fn default() -> Self {
        let storage = syncstorage::Config::default();
        Self {
            host: storage.host,
            port: storage.port,
            public_url: None,
            master_secret: Secret::default(),
            previous_master_secrets: Vec::new(),
            data_dir: PathBuf::from("./data"),
            human_logs: true,
            log_level: "info".into(),
            metrics_address: None,
            connections: storage.connections,
            syncstorage: storage.syncstorage,
            tokenserver: TokenserverConfig::default(),
        }
    }
}

impl Config {
    /// The URL clients reach the server at, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let host = match self.host.as_str() {
                    "127.0.0.1" | "0.0.0.0" | "::" | "::1" | "localhost" => "localhost".to_owned(),
                    ipv6 if ipv6.contains(':') => format!("[{ipv6}]"),
                    other => other.to_owned(),
                };
                format!("http://{host}:{}", self.port)
            }
        }
    }

    /// The storage and tokenserver database URLs: those left at their
    /// defaults follow `data_dir`.
    pub fn database_urls(&self) -> (DatabaseUrl, DatabaseUrl) {
        let in_data_dir = |current: &DatabaseUrl, default: &DatabaseUrl, file: &str| {
            if current == default {
                DatabaseUrl::new(format!("sqlite:{}", self.data_dir.join(file).display()))
            } else {
                current.clone()
            }
        };
        let storage = in_data_dir(
            &self.syncstorage.database_url,
            &StorageConfig::default().database_url,
            "syncstorage.db",
        );
        let tokens = in_data_dir(
            &self.tokenserver.database_url,
            &TokenserverConfig::default().database_url,
            "tokenserver.db",
        );
        (storage, tokens)
    }

    /// The storage node's own settings.
    pub fn storage(&self) -> syncstorage::Config {
        let mut syncstorage = self.syncstorage.clone();
        syncstorage.database_url = self.database_urls().0;
        syncstorage::Config {
            host: self.host.clone(),
            port: self.port,
            public_url: Some(self.public_url()),
            // HAWK is checked against `public_url`, so proxies need no
            // forwarded headers.
            trust_forwarded_headers: false,
            master_secret: self.master_secret.clone(),
            previous_master_secrets: self.previous_master_secrets.clone(),
            human_logs: self.human_logs,
            log_level: self.log_level.clone(),
            metrics_address: self.metrics_address.clone(),
            connections: self.connections.clone(),
            syncstorage,
        }
    }

    /// The tokenserver's own settings.
    pub fn tokens(&self) -> tokenserver::Config {
        let mut settings = self.tokenserver.clone();
        settings.database_url = self.database_urls().1;
        // The node is this server, registered at start (see `register_node`).
        settings.init_node_url = None;
        tokenserver::Config {
            host: self.host.clone(),
            port: self.port,
            master_secret: self.master_secret.clone(),
            previous_master_secrets: self.previous_master_secrets.clone(),
            human_logs: self.human_logs,
            log_level: self.log_level.clone(),
            metrics_address: self.metrics_address.clone(),
            connections: self.connections.clone(),
            tokenserver: settings,
        }
    }

    /// Every problem with the settings, as sentences; empty when usable.
    /// (A missing master secret is not one: `serve` generates it.)
    pub fn problems(&self) -> Vec<String> {
        let mut with_secret = self.clone();
        if with_secret.master_secret.is_empty() {
            with_secret.master_secret = Secret::new("generated at start");
        }
        let mut problems = with_secret.storage().problems();
        problems.extend(self.tokenserver.problems());
        if let Err(e) = tokenserver::config::check_node_url(&self.public_url()) {
            problems.push(format!("public_url: {e}"));
        }
        let dir = self.data_dir.to_string_lossy();
        if dir.contains(['?', '#', '%']) {
            problems.push(format!(
                "data_dir {dir:?} must not contain ?, # or % (they end an SQLite URL)"
            ));
        }
        problems.dedup();
        problems
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
