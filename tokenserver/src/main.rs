//! The `tokenserver` binary: serve, or run one operator command against
//! the configured database (usable against a running deployment).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sync_common::cli::{exit_code, load_and_start_logging, CliResult};
use sync_common::token::TokenSecrets;
use tokenserver::admin;
use tokenserver::node_client::NodeClient;
use tokenserver::node_data::{self, NodeData};
use tokenserver::purge::OverHttp;
use tokenserver::revocations::{self, Postbox};
use tokenserver::Config;

#[derive(Parser)]
#[command(version, about = "The Firefox Sync tokenserver (Tokenserver API 1.0)")]
struct Cli {
    /// A TOML settings file; `SYNC_*` environment variables override it.
    #[arg(long, short, global = true, env = "SYNC_CONFIG_FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve `GET /1.0/sync/1.5` (the default).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Print the effective settings, secrets redacted.
    Config,
    /// Exit 0 if a running tokenserver's /__heartbeat__ answers 200 (for Docker).
    Healthcheck,
    /// Manage storage nodes.
    #[command(subcommand)]
    Node(admin::NodeCommand),
    /// Inspect and place users.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Choose who may sync: an allowlist and a cap on accounts.
    #[command(subcommand)]
    Access(admin::AccessCommand),
    /// Delete user records replaced more than N days ago (and their data on
    /// the storage node, where it answers).
    PurgeReplaced(admin::PurgeArgs),
    /// Write a user's data (still encrypted by their devices) to a new
    /// file, while they keep syncing.
    Export(admin::ExportArgs),
    /// Restore a user's data from an `export` file, on any node: their
    /// devices find it at their next sync.
    ImportUser(admin::ImportUserArgs),
    /// Take over a deployment of Mozilla's Python syncserver or of
    /// syncstorage-rs: users, uids and data, so every Firefox syncing there
    /// goes on here without uploading again (docs/migrating.md).
    Import(tokenserver::import::ImportArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_and_start_logging::<Config>(cli.config.as_deref(), "tokenserver") {
        Ok(config) => config,
        Err(e) => return exit_code(Err(e.into())),
    };
    exit_code(match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => admin::migrate(&config.tokenserver).await,
        Command::Config => print_config(&config),
        Command::Healthcheck => healthcheck(&config).await,
        Command::Node(command) => {
            admin::node(
                &config.tokenserver,
                command,
                postbox(&config),
                node_data(&config),
            )
            .await
        }
        Command::Export(args) => admin::export(&config.tokenserver, args, node_data(&config)).await,
        Command::Import(args) => admin::import(&config.tokenserver, args, node_data(&config)).await,
        Command::ImportUser(args) => {
            let data = node_data(&config);
            admin::import_user(&config.tokenserver, args, data, postbox(&config)).await
        }
        Command::User(command) => admin::user(&config.tokenserver, command, postbox(&config)).await,
        Command::Access(command) => admin::access(&config.tokenserver, command).await,
        Command::PurgeReplaced(args) => purge(&config, args).await,
    })
}

async fn serve(config: Config) -> CliResult {
    let address = format!("{}:{}", config.host, config.port);
    let listener = sync_common::server::listen(&config.host, config.port).await?;
    tracing::info!(%address, database = %config.tokenserver.database_url, "tokenserver listening");
    tokenserver::serve(config, listener, sync_common::server::shutdown_signal()).await?;
    Ok(())
}

async fn healthcheck(config: &Config) -> CliResult {
    sync_common::server::healthcheck(&config.host, config.port).await?;
    println!("healthy");
    Ok(())
}

/// Revocations go to the nodes over HTTP when the master secret is known.
fn postbox(config: &Config) -> Option<Arc<dyn Postbox>> {
    let secrets = config.secrets();
    if secrets.is_empty() {
        return None;
    }
    match revocations::OverHttp::new(&config.tokenserver, &secrets) {
        Ok(postbox) => Some(Arc::new(postbox)),
        Err(e) => {
            eprintln!("revocations cannot be delivered from here ({e}); the servers will");
            None
        }
    }
}

/// Signed calls to the nodes (migrations: pages of records take longer
/// than a heartbeat), when the master secret is known.
/// Users' data on the nodes, reached over HTTP.
fn node_data(config: &Config) -> Option<Arc<dyn NodeData>> {
    let secrets = TokenSecrets::new(&config.secrets()).ok()?;
    let timeout = config
        .tokenserver
        .node_timeout_seconds
        .max(MIGRATION_TIMEOUT_SECONDS);
    let nodes = NodeClient::new(secrets, std::time::Duration::from_secs(timeout)).ok()?;
    Some(Arc::new(node_data::OverHttp::new(nodes)))
}

/// How long one migration call (a page of records) may take at least.
const MIGRATION_TIMEOUT_SECONDS: u64 = 120;

/// Purges with data deletion over HTTP when the master secret is known.
async fn purge(config: &Config, args: admin::PurgeArgs) -> CliResult {
    let secrets = config.secrets();
    let nodes = if secrets.is_empty() {
        None
    } else {
        Some(OverHttp::new(TokenSecrets::new(&secrets)?)?)
    };
    let data = nodes
        .as_ref()
        .map(|n| n as &dyn tokenserver::purge::UserData);
    admin::purge(&config.tokenserver, args, data).await
}

fn print_config(config: &Config) -> CliResult {
    println!("{}", serde_json::to_string_pretty(config)?);
    let problems = config.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(tokenserver::StartError::Config(problems).into())
    }
}
