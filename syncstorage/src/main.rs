//! The `syncstorage` binary: parse the command line, load and validate the
//! settings, then serve (or run one operator command).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sync_common::cli::{exit_code, load_and_start_logging, CliResult};
use sync_common::secret::Secret;
use syncstorage::Config;

#[derive(Parser)]
#[command(version, about = "A Firefox Sync storage node (SyncStorage API 1.5)")]
struct Cli {
    /// A TOML settings file; `SYNC_*` environment variables override it.
    #[arg(long, short, global = true, env = "SYNC_CONFIG_FILE")]
    config: Option<PathBuf>,
    /// Development only: generate a throw-away master secret if none is set.
    #[arg(long, global = true)]
    dev: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the storage API (the default).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Remove expired BSOs and abandoned batches now, then exit.
    Purge,
    /// Print the effective settings, secrets redacted.
    Config,
    /// Exit 0 if a running node's /__heartbeat__ answers 200 (for Docker).
    Healthcheck,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match load_and_start_logging::<Config>(cli.config.as_deref(), "syncstorage") {
        Ok(config) => config,
        Err(e) => return exit_code(Err(e.into())),
    };
    exit_code(match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            if cli.dev && config.master_secret.is_empty() {
                config.master_secret = development_secret();
            }
            serve(config).await
        }
        Command::Migrate => migrate(&config).await,
        Command::Purge => purge(&config).await,
        Command::Config => print_config(&config),
        Command::Healthcheck => healthcheck(&config).await,
    })
}

fn development_secret() -> Secret {
    let secret = hex::encode(rand::random::<[u8; 32]>());
    eprintln!(
        "\n\
         ************************************************************************\n\
         *  DEVELOPMENT MODE: generated a throw-away master secret:              \n\
         *  {secret}\n\
         *  It changes on every start and no tokenserver knows it.               \n\
         *  Never run a real server like this: set SYNC_MASTER_SECRET.           \n\
         ************************************************************************\n"
    );
    Secret::new(secret)
}

async fn serve(config: Config) -> CliResult {
    let address = format!("{}:{}", config.host, config.port);
    let listener = sync_common::server::listen(&config.host, config.port).await?;
    tracing::info!(
        %address,
        database = %config.syncstorage.database_url,
        "syncstorage listening"
    );
    syncstorage::serve(config, listener, sync_common::server::shutdown_signal()).await?;
    Ok(())
}

async fn open_store(config: &Config) -> Result<syncstorage::AppState, syncstorage::StartError> {
    let mut config = config.clone();
    // Operator commands need the database, not the secret.
    if config.master_secret.is_empty() {
        config.master_secret = Secret::new("unused-by-operator-commands");
    }
    syncstorage::build_state(config).await
}

async fn migrate(config: &Config) -> CliResult {
    open_store(config).await?;
    println!("the database schema is up to date");
    Ok(())
}

async fn purge(config: &Config) -> CliResult {
    let state = open_store(config).await?;
    let chunk = config.syncstorage.purge_chunk_rows.max(1);
    let removed = syncstorage::purge::purge_all(state.store.as_ref(), chunk).await?;
    println!("removed {} expired rows", removed.rows());
    Ok(())
}

fn print_config(config: &Config) -> CliResult {
    let toml = serde_json::to_string_pretty(config)?;
    println!("{toml}");
    let problems = config.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(syncstorage::StartError::Config(problems).into())
    }
}

async fn healthcheck(config: &Config) -> CliResult {
    sync_common::server::healthcheck(&config.host, config.port).await?;
    println!("healthy");
    Ok(())
}
