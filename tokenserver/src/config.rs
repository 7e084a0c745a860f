//! The tokenserver's settings: one typed struct whose `Default` is the
//! single source of defaults, loaded by `sync_common::config::load` from a
//! TOML file and `SYNC_` variables (`SYNC_TOKENSERVER__FXA_OAUTH_SERVER_URL`).
//! Key names follow Mozilla's syncstorage-rs, so an operator's environment
//! carries over. Every setting is listed in `docs/configuration.md`.

use serde::{Deserialize, Serialize};
use sync_common::db_url::DatabaseUrl;
use sync_common::secret::Secret;
use sync_common::server::ConnectionLimits;

use crate::auth::keys::{deserialize_jwk, RsaJwk};
use crate::model::access::Entry;

/// Mozilla's FxA profile server.
const MOZILLA_PROFILE_SERVER: &str = "https://profile.accounts.firefox.com";

/// Top-level settings of the `tokenserver` binary.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on.
    pub port: u16,
    /// The secret shared with the storage nodes. REQUIRED.
    pub master_secret: Secret,
    /// Older master secrets (tokens are always signed with `master_secret`).
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
    /// The tokenserver itself.
    pub tokenserver: TokenserverConfig,
}

/// Settings of the token service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenserverConfig {
    /// `sqlite:<path>`, `postgres://…` or `mysql://…` (default
    /// `sqlite:./data/tokenserver.db`).
    pub database_url: DatabaseUrl,
    /// Most open database connections.
    pub database_max_connections: u32,
    /// How long a write waits for a database locked by another process
    /// before the request gets 503.
    pub database_busy_timeout_ms: u64,
    /// FxA's OAuth server: `/v1/verify` and, unless keys are configured, `/v1/jwks`.
    pub fxa_oauth_server_url: String,
    /// Seconds a whole OAuth verification may take before the client gets 503.
    pub fxa_oauth_request_timeout: u64,
    /// FxA's token-signing key (a JWK table, or a JSON string). Unset: FxA's JWKS is fetched.
    #[serde(deserialize_with = "deserialize_jwk")]
    pub fxa_oauth_primary_jwk: Option<RsaJwk>,
    /// The next (or previous) signing key, so a rotation never locks users out.
    #[serde(deserialize_with = "deserialize_jwk")]
    pub fxa_oauth_secondary_jwk: Option<RsaJwk>,
    /// Where FxA's JWKS is fetched from. Unset: `<fxa_oauth_server_url>/v1/jwks`.
    pub fxa_oauth_jwks_url: Option<String>,
    /// Seconds a fetched JWKS is trusted before it is fetched again.
    pub fxa_oauth_jwks_cache_seconds: u64,
    /// Accounts are stored as `<fxa uid>@<this domain>`.
    pub fxa_email_domain: String,
    /// Key of the `hashed_fxa_uid` metrics hash. Unset: derived from the master secret.
    pub fxa_metrics_hash_secret: Secret,
    /// Lifetime of the tokens handed out, in seconds (`?duration=` may ask for less).
    pub token_duration: u64,
    /// `node_type` in token responses (telemetry only).
    pub node_type: String,
    /// Share of a full node's capacity released when every node is full.
    pub node_capacity_release_rate: f64,
    /// Give unknown accounts a record (false: they get 403).
    pub allow_new_users: bool,
    /// Who may sync (ADR 0014): FxA uids (32 hex digits), email addresses
    /// and `@domain`s. Empty (and none added with `access allow`): everyone.
    pub allowed_accounts: Vec<String>,
    /// At most this many accounts (existing users are never refused for
    /// it). Unset: no cap. `access cap` overrides it at run time.
    pub max_users: Option<u64>,
    /// Seconds between rereads of what `access` commands changed.
    pub access_refresh_seconds: u64,
    /// FxA's profile server, asked for an account's email (with the
    /// client's own token) only when an email or domain entry could admit
    /// it. Unset: Mozilla's, when `fxa_oauth_server_url` is Mozilla's; else
    /// none (email and domain entries then admit nobody).
    pub fxa_profile_server_url: Option<String>,
    /// Accept FxA's account events at `POST /1.0/webhooks/fxa/events`.
    pub fxa_webhook_enabled: bool,
    /// The client id event tokens are addressed to (their `aud`).
    pub fxa_webhook_set_client_id: String,
    /// The issuer of event tokens (their `iss`).
    pub fxa_webhook_set_issuer: String,
    /// Requests taking longer get 503.
    pub request_timeout_seconds: u64,
    /// A storage node registered at start if absent (`init_node_capacity` slots).
    pub init_node_url: Option<String>,
    /// Capacity of `init_node_url`.
    pub init_node_capacity: i64,
    /// Seconds between deliveries of queued revocations to the nodes (a
    /// move reaches its old node within about this long plus the node's
    /// `revocation_refresh_seconds`).
    pub revocation_interval_seconds: u64,
    /// Calls to storage nodes (heartbeat checks, revocations) give up after
    /// this many seconds.
    pub node_timeout_seconds: u64,
    /// Seconds between checks of every node's `/__heartbeat__` (0: none).
    pub node_check_interval_seconds: u64,
    /// Failed checks in a row after which a node gets no new users.
    pub node_check_failures: u32,
    /// Seconds a node may stay down before its users move to other nodes
    /// (0: they stay, however long it is down).
    pub node_down_grace_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8000,
            master_secret: Secret::default(),
            previous_master_secrets: Vec::new(),
            human_logs: true,
            log_level: "info".into(),
            metrics_address: None,
            connections: ConnectionLimits::default(),
            tokenserver: TokenserverConfig::default(),
        }
    }
}

impl Default for TokenserverConfig {
    fn default() -> Self {
        Self {
            database_url: DatabaseUrl::new("sqlite:./data/tokenserver.db"),
            database_max_connections: 8,
            database_busy_timeout_ms: 5_000,
            fxa_oauth_server_url: "https://oauth.accounts.firefox.com".into(),
            fxa_oauth_request_timeout: 10,
            fxa_oauth_primary_jwk: None,
            fxa_oauth_secondary_jwk: None,
            fxa_oauth_jwks_url: None,
            fxa_oauth_jwks_cache_seconds: 3600,
            fxa_email_domain: "api.accounts.firefox.com".into(),
            fxa_metrics_hash_secret: Secret::default(),
            token_duration: 3600,
            node_type: "sqlite".into(),
            node_capacity_release_rate: 0.1,
            allow_new_users: true,
            allowed_accounts: Vec::new(),
            max_users: None,
            access_refresh_seconds: 2,
            fxa_profile_server_url: None,
            fxa_webhook_enabled: false,
            fxa_webhook_set_client_id: String::new(),
            fxa_webhook_set_issuer: "https://accounts.firefox.com/".into(),
            request_timeout_seconds: 30,
            init_node_url: None,
            init_node_capacity: 100_000,
            revocation_interval_seconds: 1,
            node_timeout_seconds: 5,
            node_check_interval_seconds: 10,
            node_check_failures: 3,
            node_down_grace_seconds: 0,
        }
    }
}

impl Config {
    /// Every problem with the settings, as sentences; empty when usable.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.master_secret.is_empty() {
            problems.push(
                "master_secret is required (SYNC_MASTER_SECRET, or SYNC_MASTER_SECRET_FILE), \
                 and must be the storage nodes' secret"
                    .to_owned(),
            );
        }
        problems.extend(self.tokenserver.problems());
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

    /// The key of the metrics hashes.
    pub fn metrics_hash_secret(&self) -> &str {
        let configured = &self.tokenserver.fxa_metrics_hash_secret;
        if configured.is_empty() {
            self.master_secret.expose()
        } else {
            configured.expose()
        }
    }
}

impl TokenserverConfig {
    /// Problems with the token service's own settings.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.database_url.backend() {
            problems.push(format!("tokenserver.database_url: {e}"));
        }
        let urls = [
            ("fxa_oauth_server_url", Some(&self.fxa_oauth_server_url)),
            ("fxa_oauth_jwks_url", self.fxa_oauth_jwks_url.as_ref()),
            (
                "fxa_profile_server_url",
                self.fxa_profile_server_url.as_ref(),
            ),
        ];
        for (name, url) in urls {
            if let Some(url) =
                url.filter(|u| !(u.starts_with("https://") || u.starts_with("http://")))
            {
                problems.push(format!("tokenserver.{name} {url:?} must be an http(s) URL"));
            }
        }
        for (name, jwk) in [
            ("primary", &self.fxa_oauth_primary_jwk),
            ("secondary", &self.fxa_oauth_secondary_jwk),
        ] {
            if let Some(Err(e)) = jwk.as_ref().map(RsaJwk::decoding_key) {
                problems.push(format!("tokenserver.fxa_oauth_{name}_jwk is unusable: {e}"));
            }
        }
        if self.fxa_oauth_request_timeout == 0 {
            problems.push("tokenserver.fxa_oauth_request_timeout must be greater than 0".into());
        }
        if self.fxa_oauth_jwks_cache_seconds == 0 {
            problems.push("tokenserver.fxa_oauth_jwks_cache_seconds must be greater than 0".into());
        }
        for (name, value) in [
            ("token_duration", self.token_duration),
            (
                "revocation_interval_seconds",
                self.revocation_interval_seconds,
            ),
            ("node_timeout_seconds", self.node_timeout_seconds),
            ("node_check_failures", u64::from(self.node_check_failures)),
            ("access_refresh_seconds", self.access_refresh_seconds),
        ] {
            if value == 0 {
                problems.push(format!("tokenserver.{name} must be greater than 0"));
            }
        }
        if !(self.node_capacity_release_rate > 0.0 && self.node_capacity_release_rate <= 1.0) {
            problems.push("tokenserver.node_capacity_release_rate must be in (0, 1]".into());
        }
        if self.fxa_email_domain.is_empty() {
            problems.push("tokenserver.fxa_email_domain must not be empty".into());
        }
        if self.fxa_webhook_enabled && self.fxa_webhook_set_client_id.is_empty() {
            problems.push(
                "tokenserver.fxa_webhook_set_client_id is required when fxa_webhook_enabled is set"
                    .into(),
            );
        }
        if self.request_timeout_seconds == 0 {
            problems.push("tokenserver.request_timeout_seconds must be greater than 0".into());
        }
        if let Some(url) = &self.init_node_url {
            if let Err(e) = check_node_url(url) {
                problems.push(format!("tokenserver.init_node_url: {e}"));
            }
        }
        if self.init_node_url.is_some() && self.init_node_capacity <= 0 {
            problems.push("tokenserver.init_node_capacity must be greater than 0".into());
        }
        for entry in &self.allowed_accounts {
            if let Err(e) = Entry::parse(entry) {
                problems.push(format!("tokenserver.allowed_accounts: {e}"));
            }
        }
        problems
    }

    /// Where emails are asked for: never a server of another FxA than
    /// the one that issued the tokens, which would receive them.
    pub fn profile_server_url(&self) -> Option<String> {
        if let Some(url) = &self.fxa_profile_server_url {
            return Some(url.clone());
        }
        self.mozilla_fxa()
            .then(|| MOZILLA_PROFILE_SERVER.to_owned())
    }

    /// Whether the tokens come from Mozilla's FxA, whose Sync tokens may
    /// not read the account's email.
    pub fn mozilla_fxa(&self) -> bool {
        self.fxa_oauth_server_url.trim_end_matches('/') == Self::default().fxa_oauth_server_url
    }

    /// The configured allowlist (the entries [`Self::problems`] accepts).
    pub fn allowlist(&self) -> Vec<Entry> {
        let parsed = self.allowed_accounts.iter().map(|e| Entry::parse(e));
        parsed.filter_map(Result::ok).collect()
    }

    /// Where FxA's signing keys are published.
    pub fn jwks_url(&self) -> String {
        match &self.fxa_oauth_jwks_url {
            Some(url) => url.clone(),
            None => format!(
                "{}/v1/jwks",
                self.fxa_oauth_server_url.trim_end_matches('/')
            ),
        }
    }

    /// What the store needs of these settings.
    pub fn store_settings(&self) -> crate::db::StoreSettings {
        crate::db::StoreSettings {
            max_connections: self.database_max_connections,
            busy_timeout_ms: self.database_busy_timeout_ms,
        }
    }

    /// The account key of an FxA user.
    pub fn email(&self, fxa_uid: &str) -> String {
        format!("{fxa_uid}@{}", self.fxa_email_domain)
    }

    /// The FxA uid in one of this server's account emails.
    pub fn fxa_uid_of<'e>(&self, email: &'e str) -> Option<&'e str> {
        email
            .strip_suffix(self.fxa_email_domain.as_str())?
            .strip_suffix('@')
    }
}

/// A storage node's URL as tokens name it: scheme, host and optional port,
/// no trailing slash, at most 64 characters (Mozilla's `nodes.node`).
pub fn check_node_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.host().is_none() || !matches!(uri.path(), "" | "/") || url.ends_with('/') {
        return Err(format!(
            "{url:?} is not a node URL: give scheme, host and port only, e.g. https://sync-1.example.com"
        ));
    }
    if url.len() > 64 {
        return Err(format!("{url:?} is longer than 64 characters"));
    }
    Ok(())
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
