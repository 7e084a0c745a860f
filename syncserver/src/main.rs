//! The `syncserver` binary: a complete Firefox Sync server with one
//! command. With no settings at all it serves on http://localhost:8000,
//! keeps everything under `./data`, and generates its master secret.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sync_common::cli::{exit_code, load_and_start_logging, CliResult};
use syncserver::local_data::LocalData;
use syncserver::purge::LocalStorage;
use syncserver::revocations::LocalFirst;
use syncserver::{ensure_master_secret, Config, SecretSource};
use tokenserver::admin;
use tokenserver::node_data::NodeData;
use tokenserver::revocations::{OverHttp, Postbox};
use tokenserver::TokenserverConfig;

#[derive(Parser)]
#[command(
    version,
    about = "A complete Firefox Sync server: tokenserver and storage on one port"
)]
struct Cli {
    /// A TOML settings file; `SYNC_*` environment variables override it.
    #[arg(long, short, global = true, env = "SYNC_CONFIG_FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Print the effective settings, secrets redacted.
    Config,
    /// Exit 0 if the running server's /__heartbeat__ answers 200 (for Docker).
    Healthcheck,
    /// Inspect and place users.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Choose who may sync: an allowlist and a cap on accounts.
    #[command(subcommand)]
    Access(admin::AccessCommand),
    /// Manage the storage node record (the server registers itself).
    #[command(subcommand)]
    Node(admin::NodeCommand),
    /// Delete user records replaced more than N days ago, with their data.
    PurgeReplaced(admin::PurgeArgs),
    /// Copy the databases and the master secret into the new folder DIR,
    /// consistently, while the server runs.
    Backup { dir: PathBuf },
    /// Put the backup in DIR into the (empty) data dir; the server stopped.
    Restore { dir: PathBuf },
    /// Write a user's data (still encrypted by their devices) to a new
    /// file, while they keep syncing.
    Export(admin::ExportArgs),
    /// Restore a user's data from an `export` file (from this server or
    /// any other): their devices find it at their next sync.
    ImportUser(admin::ImportUserArgs),
    /// Take over the data of Mozilla's Python syncserver or of
    /// syncstorage-rs: users, uids and records, so every Firefox syncing
    /// there goes on here without uploading again (docs/migrating.md).
    Import(tokenserver::import::ImportArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_and_start_logging::<Config>(cli.config.as_deref(), "syncserver") {
        Ok(config) => config,
        Err(e) => return exit_code(Err(e.into())),
    };
    exit_code(match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Config => print_config(config),
        Command::Healthcheck => healthcheck(&config).await,
        Command::User(command) => match postbox(config).await {
            Ok((config, postbox)) => admin::user(&config, command, Some(postbox)).await,
            Err(e) => Err(e),
        },
        Command::Node(command) => match postbox(config).await {
            Ok((config, postbox)) => admin::node(&config, command, Some(postbox), None).await,
            Err(e) => Err(e),
        },
        Command::Access(command) => admin::access(&config.tokens().tokenserver, command).await,
        Command::PurgeReplaced(args) => purge(config, args).await,
        Command::Backup { dir } => syncserver::backup::backup(config, &dir).await,
        Command::Restore { dir } => syncserver::backup::restore(config, &dir).await,
        Command::Export(args) => export(config, args).await,
        Command::ImportUser(args) => import_user(config, args).await,
        Command::Import(args) => import(config, args).await,
    })
}

async fn serve(mut config: Config) -> CliResult {
    if let SecretSource::Generated(path) = ensure_master_secret(&mut config, true)? {
        eprintln!(
            "\n\
             ************************************************************************\n\
             *  No master secret was configured, so one was generated and saved in\n\
             *  {}\n\
             *  Keep that file (and back it up with the databases): every Firefox\n\
             *  connected to this server needs it to stay signed in to sync.\n\
             ************************************************************************\n",
            path.display()
        );
    }
    let address = format!("{}:{}", config.host, config.port);
    let listener = sync_common::server::listen(&config.host, config.port).await?;
    // Port 0 asks for any free port: the public URL names the real one.
    config.port = listener.local_addr()?.port();
    let public_url = config.public_url();
    if config.public_url.is_none() && config.host == "0.0.0.0" {
        tracing::warn!(
            "listening on all interfaces but SYNC_PUBLIC_URL is unset: tokens point at {public_url}, \
             which other machines cannot reach; set SYNC_PUBLIC_URL to the URL they use"
        );
    }
    tracing::info!(%address, %public_url, data_dir = %config.data_dir.display(), "syncserver listening");
    eprintln!(
        "In Firefox's about:config, set identity.sync.tokenserver.uri to {public_url}/1.0/sync/1.5"
    );
    syncserver::serve(config, listener, sync_common::server::shutdown_signal()).await?;
    Ok(())
}

fn print_config(mut config: Config) -> CliResult {
    let source = ensure_master_secret(&mut config, false)?;
    println!("{}", serde_json::to_string_pretty(&config)?);
    eprintln!(
        "master secret: {}",
        match source {
            SecretSource::Configured => "configured".to_owned(),
            SecretSource::Loaded(path) | SecretSource::Generated(path) =>
                format!("from {}", path.display()),
            SecretSource::Missing => "none yet; generated at the first start".to_owned(),
        }
    );
    let problems = config.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(syncserver::StartError::Config(problems).into())
    }
}

/// The tokenserver settings, and where revocations go: this server's own
/// node takes them straight into its storage database (the running server
/// rereads them there), other nodes over HTTP.
async fn postbox(
    mut config: Config,
) -> Result<(TokenserverConfig, Arc<dyn Postbox>), Box<dyn std::error::Error>> {
    let storage = local_storage(&mut config).await?;
    let tokens = config.tokens();
    let postbox = LocalFirst {
        url: config.public_url(),
        local: storage.revocations,
        remote: OverHttp::new(&tokens.tokenserver, &tokens.secrets())?,
    };
    Ok((tokens.tokenserver, Arc::new(postbox)))
}

/// This server's storage, for operator commands.
async fn local_storage(
    config: &mut Config,
) -> Result<syncstorage::AppState, Box<dyn std::error::Error>> {
    // The storage database needs no secret for this; only serving does.
    if ensure_master_secret(config, false)? == SecretSource::Missing {
        config.master_secret = sync_common::secret::Secret::new("unused-by-operator-commands");
    }
    Ok(syncstorage::build_state(config.storage()).await?)
}

/// Purges replaced records and deletes their data from this server's storage.
async fn purge(mut config: Config, args: admin::PurgeArgs) -> CliResult {
    let storage = local_storage(&mut config).await?;
    let local = LocalStorage(storage.store.clone());
    admin::purge(&config.tokens().tokenserver, args, Some(&local)).await
}

/// This server's storage as the only node's data.
async fn local_data(config: &mut Config) -> Result<Arc<dyn NodeData>, Box<dyn std::error::Error>> {
    let storage = local_storage(config).await?;
    Ok(Arc::new(LocalData(storage.store)))
}

async fn export(mut config: Config, args: admin::ExportArgs) -> CliResult {
    let data = local_data(&mut config).await?;
    admin::export(&config.tokens().tokenserver, args, Some(data)).await
}

async fn import_user(mut config: Config, args: admin::ImportUserArgs) -> CliResult {
    let data = local_data(&mut config).await?;
    let (settings, postbox) = postbox(config).await?;
    admin::import_user(&settings, args, Some(data), Some(postbox)).await
}

/// Imports into this server: its own node, registered first (the import
/// may come before the first start).
async fn import(mut config: Config, mut args: tokenserver::import::ImportArgs) -> CliResult {
    let data = local_data(&mut config).await?;
    let settings = config.tokens().tokenserver;
    let store = tokenserver::db::open(&settings.database_url, settings.store_settings()).await?;
    let url = config.public_url();
    syncserver::register_node(store.as_ref(), &url).await?;
    args.node = Some(url);
    admin::import(&settings, args, Some(data)).await
}

async fn healthcheck(config: &Config) -> CliResult {
    if config.port == 0 {
        return Err("healthcheck needs the port the server listens on (SYNC_PORT)".into());
    }
    sync_common::server::healthcheck(&config.host, config.port).await?;
    println!("healthy");
    Ok(())
}
