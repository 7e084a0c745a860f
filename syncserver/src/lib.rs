//! A complete Firefox Sync server on one port: the tokenserver
//! (`/1.0/sync/1.5`) and the storage node (`/1.5/{uid}/…`) it hands every
//! user to. The server registers itself as the tokenserver's only node.

/// The all-in-one's settings.
pub mod config;

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};

use axum::response::IntoResponse;
use axum::routing::get;
use sync_common::secret::Secret;
use tokenserver::db::{NodeUpdate, TokenStore};
use tokio::net::TcpListener;

pub use config::Config;

/// Users the built-in node may hold: every user of a self-hosted server.
const NODE_CAPACITY: i64 = i32::MAX as i64;

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
    #[error("master secret: {0}")]
    Secret(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the master secret came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Configured,
    /// Read from the file a previous start generated.
    Loaded(PathBuf),
    /// Generated now and saved to this file.
    Generated(PathBuf),
}

/// Fills in the master secret when none is configured: the one saved in
/// `<data_dir>/master_secret`, or a new random one saved there (readable
/// by this user only), so tokens stay valid across restarts.
pub fn ensure_master_secret(config: &mut Config) -> Result<SecretSource, StartError> {
    if !config.master_secret.is_empty() {
        return Ok(SecretSource::Configured);
    }
    let path = config.data_dir.join("master_secret");
    let failed = |e: std::io::Error| StartError::Secret(format!("{}: {e}", path.display()));
    if path.exists() {
        let secret = std::fs::read_to_string(&path).map_err(failed)?;
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(StartError::Secret(format!("{} is empty", path.display())));
        }
        config.master_secret = Secret::new(secret);
        return Ok(SecretSource::Loaded(path));
    }
    std::fs::create_dir_all(&config.data_dir).map_err(failed)?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, &secret).map_err(failed)?;
    config.master_secret = Secret::new(secret);
    Ok(SecretSource::Generated(path))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
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
    let storage = syncstorage::build_state(config.storage()).await?;
    let tokens = config.tokens();
    let mut settings = tokens.tokenserver.clone();
    settings.node_type = storage.store.backend().name().to_owned();
    let tokens =
        tokenserver::build_state(settings, &tokens.secrets(), tokens.metrics_hash_secret()).await?;
    let public_url = config.public_url();
    register_node(tokens.store.as_ref(), &public_url).await?;
    let purger = syncstorage::purge::spawn(storage.store.clone(), &storage.config.syncstorage);
    let router = syncstorage::router(storage)
        .merge(tokenserver::routes(tokens))
        .route("/", get(move || welcome(public_url)));
    let result = sync_common::server::serve(router, listener, shutdown).await;
    purger.abort();
    Ok(result?)
}

/// Makes this server the tokenserver's node. If the only node has another
/// URL (the public URL changed), it is renamed: its users keep their uids,
/// and so their data.
async fn register_node(store: &dyn TokenStore, url: &str) -> Result<(), StartError> {
    let nodes = store.nodes().await?;
    if nodes.iter().any(|n| n.node == url) {
        return Ok(());
    }
    match nodes.as_slice() {
        [only] => {
            let rename = NodeUpdate {
                node: Some(url.to_owned()),
                ..NodeUpdate::default()
            };
            store.update_node(&only.node, &rename).await?;
            tracing::warn!(from = %only.node, to = %url, "the public URL changed; users keep their data");
        }
        _ => {
            store.add_node(url, NODE_CAPACITY, false, false).await?;
            tracing::info!(node = %url, "registered this server as the storage node");
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
