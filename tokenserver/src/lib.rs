//! The tokenserver: turns a Firefox Accounts identity into short-lived HAWK
//! credentials for one storage node (`shared/spec/tokenserver.md`).
//!
//! `serve` is the seam for `main` and the tests: it takes a bound listener
//! and a shutdown future. `build_state` + [`api::routes`] let the
//! all-in-one `syncserver` mount the token service next to a storage node.

/// Who may sync: the allowlist and the cap on accounts.
pub mod access;
/// Operator commands (nodes, users, purges), for the binaries.
pub mod admin;
/// Routes, handlers and the shared state.
pub mod api;
/// Verifying FxA OAuth tokens and webhook events.
pub mod auth;
/// The typed settings.
pub mod config;
/// Users and nodes behind the `TokenStore` trait, one module per backend.
pub mod db;
/// The one mapping from failures to wire responses.
pub mod error;
/// Checking the nodes' heartbeats.
pub mod health;
/// Taking over a deployment of Mozilla's servers.
pub mod import;
/// The tokenserver's own metrics.
pub mod metrics;
/// Moving users' data between nodes.
pub mod migrate;
/// The protocol's rules as pure code.
pub mod model;
/// Signed calls to storage nodes.
pub mod node_client;
/// A user's data on storage nodes: migration, export and import.
pub mod node_data;
/// Purging replaced user records and their storage data.
pub mod purge;
/// Delivering revocations to storage nodes.
pub mod revocations;
/// The user-record workflow of a token request.
pub mod users;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sync_common::secret::Secret;
use sync_common::telemetry::MetricsListener;
use sync_common::token::TokenSecrets;
use tokio::net::TcpListener;

pub use api::{router, routes, AppState};
pub use config::{Config, TokenserverConfig};

use auth::events::EventVerifier;
use auth::keys::{FxaKeys, RsaJwk};
use auth::oauth::OAuthVerifier;

/// Why the tokenserver could not start, as a sentence for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Config(Vec<String>),
    #[error("cannot open the tokenserver database: {0}")]
    Database(#[from] db::DbError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens (and migrates) the database, registers `init_node_url` if set,
/// and builds the verifiers. `secrets` are the master secrets, signing one
/// first; `metrics_key` keys the metrics hashes.
pub async fn build_state(
    settings: TokenserverConfig,
    secrets: &[&str],
    metrics_key: &str,
) -> Result<AppState, StartError> {
    let problems = settings.problems();
    if !problems.is_empty() {
        return Err(StartError::Config(problems));
    }
    let secrets =
        TokenSecrets::new(secrets).map_err(|e| StartError::Config(vec![e.to_string()]))?;
    let store = db::open(&settings.database_url, settings.store_settings()).await?;
    if let Some(url) = &settings.init_node_url {
        if !store.nodes().await?.iter().any(|n| &n.node == url) {
            store
                .add_node(url, settings.init_node_capacity, false, false)
                .await?;
            tracing::info!(node = %url, "registered the initial storage node");
        }
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(settings.fxa_oauth_request_timeout))
        .build()
        .map_err(|e| StartError::Config(vec![format!("cannot build the HTTP client: {e}")]))?;
    let keys = Arc::new(fxa_keys(&settings, &http)?);
    let access = access::Access::load(store.clone(), &settings, http.clone()).await?;
    let oauth = OAuthVerifier::new(
        keys.clone(),
        http,
        &settings.fxa_oauth_server_url,
        Duration::from_secs(settings.fxa_oauth_request_timeout),
    );
    let events = settings.fxa_webhook_enabled.then(|| {
        Arc::new(EventVerifier::new(
            keys,
            settings.fxa_webhook_set_client_id.clone(),
            settings.fxa_webhook_set_issuer.clone(),
        ))
    });
    Ok(AppState {
        store,
        config: Arc::new(settings),
        secrets: Arc::new(secrets),
        metrics_key: Secret::new(metrics_key),
        oauth: Arc::new(oauth),
        events,
        access,
    })
}

/// The configured JWKs, or FxA's JWKS fetched on demand.
fn fxa_keys(settings: &TokenserverConfig, http: &reqwest::Client) -> Result<FxaKeys, StartError> {
    let configured: Vec<&RsaJwk> = [
        &settings.fxa_oauth_primary_jwk,
        &settings.fxa_oauth_secondary_jwk,
    ]
    .into_iter()
    .flatten()
    .collect();
    if configured.is_empty() {
        let max_age = Duration::from_secs(settings.fxa_oauth_jwks_cache_seconds);
        return Ok(FxaKeys::fetched(settings.jwks_url(), http.clone(), max_age));
    }
    let keys = configured
        .into_iter()
        .map(RsaJwk::decoding_key)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StartError::Config(vec![e]))?;
    Ok(FxaKeys::configured(keys))
}

/// Runs the tokenserver on `listener` until `shutdown` resolves.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(StartError::Config(problems));
    }
    let _metrics = MetricsListener::start(config.metrics_address.as_deref())
        .await
        .map_err(|e| StartError::Config(vec![e]))?;
    let state = build_state(
        config.tokenserver.clone(),
        &config.secrets(),
        config.metrics_hash_secret(),
    )
    .await?;
    let _nodes = metrics::start(state.store.clone());
    let postbox = revocations::OverHttp::new(&config.tokenserver, &config.secrets())
        .map_err(|e| StartError::Config(vec![e]))?;
    let _courier = start_courier(&state, Arc::new(postbox));
    let _access = start_access(&state);
    let _checks = start_checks(&state)?;
    Ok(sync_common::server::serve(router(state), listener, &config.connections, shutdown).await?)
}

/// Checks the nodes' heartbeats, unless `node_check_interval_seconds` is 0.
pub fn start_checks(state: &AppState) -> Result<Option<sync_common::task::Background>, StartError> {
    let every = state.config.node_check_interval_seconds;
    if every == 0 {
        return Ok(None);
    }
    let checker = health::Checker::new(state.store.clone(), &state.config)
        .map_err(|e| StartError::Config(vec![e]))?;
    Ok(Some(checker.spawn(Duration::from_secs(every))))
}

/// Rereads who may sync every `access_refresh_seconds`, until dropped.
pub fn start_access(state: &AppState) -> sync_common::task::Background {
    let every = Duration::from_secs(state.config.access_refresh_seconds);
    state.access.spawn(every)
}

/// Delivers the revocations `state`'s store queues through `postbox`,
/// until dropped.
pub fn start_courier(
    state: &AppState,
    postbox: Arc<dyn revocations::Postbox>,
) -> sync_common::task::Background {
    let courier = revocations::Courier::new(state.store.clone(), postbox, &state.config);
    courier.spawn(Duration::from_secs(
        state.config.revocation_interval_seconds,
    ))
}
