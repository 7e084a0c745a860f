//! A complete Firefox Sync server on one port: the tokenserver
//! (`/1.0/sync/1.5`) and the storage node (`/1.5/{uid}/…`) it hands every
//! user to. The server registers itself as the tokenserver's only node.

/// Backing up and restoring the embedded databases.
pub mod backup;
/// The all-in-one's settings.
pub mod config;
/// `/__heartbeat__` covering both databases.
mod health;
/// Users' data on this server's own node, for export and import.
pub mod local_data;
/// Registering this server as the only storage node.
mod node;
/// Deleting purged users' data from the local storage.
pub mod purge;
/// Revocations for the own node, straight into its storage.
pub mod revocations;
/// The generated, persisted master secret.
pub mod secret;

use std::future::Future;
use std::sync::Arc;

use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use sync_common::telemetry::MetricsListener;
use tokio::net::TcpListener;

pub use config::Config;
pub use node::register as register_node;
use revocations::LocalFirst;
pub use secret::{ensure_master_secret, SecretSource};
use tokenserver::revocations::OverHttp;

/// Why the server could not start, as a sentence for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Config(Vec<String>),
    #[error("{0}")]
    Storage(#[from] syncstorage::StartError),
    #[error("{0}")]
    Tokens(#[from] tokenserver::StartError),
    #[error("cannot register this server as the storage node: {0}")]
    Node(#[from] tokenserver::db::DbError),
    #[error("cannot keep new uids clear of stored data: {0}")]
    Uids(tokenserver::db::DbError),
    #[error("master secret: {0}")]
    Secret(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs both services on `listener` until `shutdown` resolves.
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
    let storage = syncstorage::build_state(config.storage()).await?;
    let tokens = config.tokens();
    let mut settings = tokens.tokenserver.clone();
    settings.node_type = storage.store.backend().name().to_owned();
    let tokens =
        tokenserver::build_state(settings, &tokens.secrets(), tokens.metrics_hash_secret()).await?;
    let public_url = config.public_url();
    if tokens.access.is_open() {
        // Not when sign-ups are closed, capped or listed: then it is chosen.
        eprintln!("{}", OPEN_TO_EVERYONE);
    }
    node::register(tokens.store.as_ref(), &public_url).await?;
    reserve_stored_uids(storage.store.as_ref(), tokens.store.as_ref()).await?;
    let _background = syncstorage::Background::start(&storage);
    let postbox = LocalFirst {
        url: public_url.clone(),
        local: storage.revocations.clone(),
        remote: OverHttp::new(&tokens.config, &config.tokens().secrets())
            .map_err(|e| StartError::Config(vec![e]))?,
    };
    let _courier = tokenserver::start_courier(&tokens, Arc::new(postbox));
    let _access = tokenserver::start_access(&tokens);
    let token_store = tokens.store.clone();
    let _nodes = tokenserver::metrics::start(token_store.clone());
    syncstorage::metrics::init();
    let router = syncstorage::routes(storage)
        .merge(tokenserver::routes(tokens))
        .route("/", get(move || welcome(public_url)))
        .layer(middleware::from_fn_with_state(
            token_store,
            health::heartbeat,
        ))
        // Outermost, so that it sees the answer the client gets.
        .layer(middleware::from_fn(sync_common::telemetry::observe));
    let result = sync_common::server::serve(router, listener, &config.connections, shutdown).await;
    Ok(result?)
}

/// Said at start while anyone may sync here (ADR 0014).
const OPEN_TO_EVERYONE: &str = "\
Every Firefox Account that finds this server may sync on it. To keep it for your household:
  SYNC_TOKENSERVER__MAX_USERS=3           at most three accounts (existing ones always stay), or
  syncserver access allow --existing      once your devices have synced: nobody else, from now on
  syncserver access allow <FxA uid>      admits one more (a refused account's uid is in the log)
See docs/operations.md, \"Who may sync\".";

/// A tokenserver database that was reset (deleted, restored from an older
/// backup) would hand out uids whose data is still in the storage database:
/// a new user would see, and overwrite, someone else's data. Never.
async fn reserve_stored_uids(
    storage: &dyn syncstorage::db::SyncStore,
    tokens: &dyn tokenserver::db::TokenStore,
) -> Result<(), StartError> {
    let highest = storage
        .highest_uid()
        .await
        .map_err(syncstorage::StartError::from)?;
    if let Some(uid) = highest.and_then(|u| i64::try_from(u).ok()) {
        if tokens
            .reserve_uids_through(uid)
            .await
            .map_err(StartError::Uids)?
        {
            tracing::warn!(
                uid,
                "the tokenserver database is behind the storage: new uids start after {uid}"
            );
        }
    }
    Ok(())
}

/// What a person opening the server in a browser needs to know.
async fn welcome(public_url: String) -> impl IntoResponse {
    format!(
        "This is a Firefox Sync server.\n\n\
         To use it, open about:config in Firefox (before signing in to sync) and set\n\
         identity.sync.tokenserver.uri = {public_url}/1.0/sync/1.5\n"
    )
}
