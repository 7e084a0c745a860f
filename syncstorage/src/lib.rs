//! A SyncStorage 1.5 node: the storage half of a Firefox Sync server.
//!
//! `serve` is the seam for both `main` and the tests: it takes a bound
//! listener and a shutdown future, so tests run real servers on port 0.

/// Routes, extractors, handlers and layers.
pub mod api;
/// The typed settings.
pub mod config;
/// Storage behind the `SyncStore` trait, one module per backend.
pub mod db;
/// The one mapping from failures to wire responses.
pub mod error;
/// The storage node's own metrics.
pub mod metrics;
/// The protocol's data model and rules (no HTTP, no SQL).
pub mod model;
/// The background purge of expired data.
pub mod purge;
/// The tokens the tokenserver revoked, as the request path reads them.
pub mod revocations;

use std::future::Future;
use std::sync::Arc;

use sync_common::db_url::Backend;
use sync_common::hawk::{HawkVerifier, ReplayCache};
use sync_common::telemetry::MetricsListener;
use sync_common::token::TokenSecrets;
use tokio::net::TcpListener;

pub use api::{router, routes, AppState};
pub use config::Config;
use config::StorageConfig;
use model::timestamp::SyncTimestamp;

/// Why the node could not start, as a sentence for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Config(Vec<String>),
    #[error("cannot open the database: {0}")]
    Database(#[from] db::DbError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Validates `config`, opens (and migrates) the database and builds the
/// state the router needs.
pub async fn build_state(config: Config) -> Result<AppState, StartError> {
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(StartError::Config(problems));
    }
    let secrets = TokenSecrets::new(&config.secrets())
        .map_err(|e| StartError::Config(vec![e.to_string()]))?;
    let storage = &config.syncstorage;
    let settings = db::StoreSettings {
        quota_bytes: storage.enable_quota.then_some(storage.max_quota_limit),
        max_total_records: storage.limits.max_total_records,
        max_total_bytes: storage.limits.max_total_bytes,
        batch_ttl_seconds: storage.batch_ttl_seconds,
        busy_timeout_ms: storage.database_busy_timeout_ms,
        max_connections: storage.database_max_connections,
    };
    let store = db::open(&storage.database_url, settings).await?;
    let public_origin = match &config.public_url {
        Some(url) => Some(
            api::auth::Origin::parse(url)
                .map_err(|e| StartError::Config(vec![format!("public_url: {e}")]))?,
        ),
        None => None,
    };
    let nonces = replay_cache(storage).await?;
    let hawk = HawkVerifier::new(secrets, storage.hawk_skew_seconds, nonces);
    let revocations = revocations::Revocations::load(store.clone()).await?;
    Ok(AppState {
        revocations,
        store,
        hawk: Arc::new(hawk),
        public_origin,
        config: Arc::new(config),
    })
}

/// Where this node remembers nonces (ADR 0009).
async fn replay_cache(storage: &StorageConfig) -> Result<ReplayCache, StartError> {
    match &storage.replay_cache_url {
        Some(url) => ReplayCache::shared(url.expose()).map_err(|e| {
            StartError::Config(vec![format!("syncstorage.replay_cache_url {url}: {e}")])
        }),
        None => {
            if !matches!(storage.database_url.backend(), Ok(Backend::Sqlite)) {
                tracing::warn!(
                    "replay protection is per process: replicas of this node do not share it \
                     (set syncstorage.replay_cache_url to share it in Redis)"
                );
            }
            // Requests signed in this second may have been served by this
            // node before a restart: refuse them, and serve from the next.
            let now = SyncTimestamp::now();
            let rest_of_second = 1000 - now.as_millis() % 1000;
            tokio::time::sleep(std::time::Duration::from_millis(rest_of_second)).await;
            Ok(ReplayCache::in_process(now.as_seconds()))
        }
    }
}

/// Runs the node on `listener` until `shutdown` resolves.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let connections = config.connections.clone();
    let _metrics = MetricsListener::start(config.metrics_address.as_deref())
        .await
        .map_err(|e| StartError::Config(vec![e]))?;
    let state = build_state(config).await?;
    let _background = Background::start(&state);
    metrics::init();
    let result = sync_common::server::serve(router(state), listener, &connections, shutdown).await;
    Ok(result?)
}

/// The node's background work: the purge of expired data and the reread
/// of revocations. Stopped when dropped.
pub struct Background {
    _tasks: Vec<sync_common::task::Background>,
}

impl Background {
    pub fn start(state: &AppState) -> Self {
        let storage = &state.config.syncstorage;
        let refresh = std::time::Duration::from_secs(storage.revocation_refresh_seconds);
        Self {
            _tasks: [
                purge::spawn(state.store.clone(), storage),
                Some(state.revocations.spawn_refresher(refresh)),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }
}
