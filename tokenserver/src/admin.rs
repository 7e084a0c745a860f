//! Operator commands: nodes, users and purges, straight on the database
//! (also while servers run). Shared by the `tokenserver` and `syncserver`
//! binaries.

use std::path::PathBuf;
use std::sync::Arc;

/// `access`: who may sync.
mod access;
pub use access::{AccessCommand, CapSetting};
/// `export` and `import-user`: one user's data as a file.
mod user_file;

use clap::{Args, Subcommand};
use sync_common::cli::CliResult;

use crate::config::TokenserverConfig;
use crate::db::{self, Node, NodeUpdate, TokenStore, UserCap, UserRecord};
use crate::migrate::{Migrator, Progress};
use crate::model::keys::ClientState;
use crate::model::user::KeyState;
use crate::node_data::NodeData;
use crate::purge::{self, DataPolicy, UserData};
use crate::revocations::{Courier, Postbox};

#[derive(Subcommand)]
pub enum NodeCommand {
    /// List the nodes and their load.
    List,
    /// Add a node, e.g. `https://sync-1.example.com`.
    Add {
        url: String,
        /// How many users it may hold.
        #[arg(long, default_value_t = 100_000)]
        capacity: i64,
        /// Add it marked down (no users until `update --downed false`).
        #[arg(long)]
        downed: bool,
        /// Add it backed off (no new users).
        #[arg(long)]
        backoff: bool,
    },
    /// Change a node's settings.
    Update {
        url: String,
        /// A new URL for the same node (its users keep their data).
        #[arg(long)]
        new_url: Option<String>,
        #[arg(long)]
        capacity: Option<i64>,
        #[arg(long)]
        available: Option<i64>,
        /// Down: its users move to other nodes at their next token request.
        #[arg(long)]
        downed: Option<bool>,
        /// Backed off: no new users.
        #[arg(long)]
        backoff: Option<bool>,
    },
    /// Stop giving the node new users and move its users elsewhere.
    Drain {
        url: String,
        /// Copy each user's data to this node instead, so no device uploads
        /// again (as `migrate`, for every user).
        #[arg(long)]
        migrate_to: Option<String>,
        /// Also refuse every token issued for the node so far, so all its
        /// clients fetch new ones at once (users still placed there get it
        /// again).
        #[arg(long)]
        now: bool,
    },
    /// Move the node's users elsewhere at their next token request.
    Unassign { url: String },
    /// Unassign the node's users, then delete it.
    Remove { url: String },
    /// Move users and their data to another node while they keep syncing:
    /// they find everything there, and no device uploads again.
    Migrate {
        from: String,
        to: String,
        /// At most this many users (default: all).
        #[arg(long)]
        users: Option<u64>,
        /// At most this many users a second.
        #[arg(long)]
        rate: Option<f64>,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Show a user's records (by FxA uid or email).
    Show { user: String },
    /// Give a user a new record on a chosen node.
    Allocate { user: String, node: String },
    /// Count accounts (not deleted ones); with --node, the users currently on that node.
    Count {
        /// Only those on this node.
        #[arg(long)]
        node: Option<String>,
    },
}

/// `export`: a user's data (still encrypted by their devices) to a file.
#[derive(Args)]
pub struct ExportArgs {
    /// The user, by FxA uid or email.
    pub user: String,
    /// The new file to write.
    pub file: PathBuf,
}

/// `import-user`: a user's data back from an `export` file.
#[derive(Args)]
pub struct ImportUserArgs {
    /// The file `export` wrote.
    pub file: PathBuf,
    /// The node to put the data on (default: the user's own, or where a
    /// new user would go).
    #[arg(long)]
    pub node: Option<String>,
}

#[derive(Args)]
pub struct PurgeArgs {
    /// Purge records replaced more than this many days ago.
    #[arg(long)]
    older_than_days: u32,
    /// Records handled per database round trip.
    #[arg(long, default_value_t = 500)]
    chunk: u64,
    /// Forget the records without deleting their data on the storage nodes.
    #[arg(long)]
    skip_data: bool,
}

/// Opens the database, which must exist: a mistyped path must not
/// silently create an empty one and answer "no such user". (A server's
/// database is never created: connecting to a missing one fails.)
async fn open(
    settings: &TokenserverConfig,
) -> Result<Arc<dyn TokenStore>, Box<dyn std::error::Error>> {
    if let Some(path) = settings.database_url.sqlite_path() {
        if !path.exists() {
            return Err(format!(
                "no tokenserver database at {} (set SYNC_TOKENSERVER__DATABASE_URL, \
                 or run from the folder holding data/)",
                path.display()
            )
            .into());
        }
    }
    open_or_create(settings).await
}

async fn open_or_create(
    settings: &TokenserverConfig,
) -> Result<Arc<dyn TokenStore>, Box<dyn std::error::Error>> {
    let problems = settings.problems();
    if !problems.is_empty() {
        return Err(crate::StartError::Config(problems).into());
    }
    Ok(db::open(&settings.database_url, settings.store_settings()).await?)
}

/// Creates or upgrades the schema.
pub async fn migrate(settings: &TokenserverConfig) -> CliResult {
    open_or_create(settings).await?;
    println!("the tokenserver database schema is up to date");
    Ok(())
}

/// Runs a node command. Revocations it queues go out through `postbox`
/// at once (`None`: no master secret here; the servers deliver them);
/// migrations reach the nodes through `nodes`.
pub async fn node(
    settings: &TokenserverConfig,
    command: NodeCommand,
    postbox: Option<Arc<dyn Postbox>>,
    nodes: Option<Arc<dyn NodeData>>,
) -> CliResult {
    // Adding the first node is how a deployment starts: it may create the
    // database. Everything else needs an existing one.
    let store = if matches!(command, NodeCommand::Add { .. }) {
        open_or_create(settings).await?
    } else {
        open(settings).await?
    };
    // Commands that may move users, and so queue revocations.
    let moves = !matches!(command, NodeCommand::List | NodeCommand::Add { .. });
    match command {
        NodeCommand::List => list_nodes(store.as_ref()).await?,
        NodeCommand::Add {
            url,
            capacity,
            downed,
            backoff,
        } => {
            check_node_url(&url)?;
            if capacity <= 0 {
                return Err("the capacity must be greater than 0".into());
            }
            let node = store.add_node(&url, capacity, downed, backoff).await?;
            println!(
                "added node {} (id {}, capacity {})",
                node.node, node.id, node.capacity
            );
        }
        NodeCommand::Update {
            url,
            new_url,
            capacity,
            available,
            downed,
            backoff,
        } => {
            if let Some(new_url) = &new_url {
                check_node_url(new_url)?;
            }
            let update = NodeUpdate {
                node: new_url,
                capacity,
                available,
                downed,
                backoff,
            };
            let node = store.update_node(&url, &update).await?;
            print_nodes(&[node]);
        }
        NodeCommand::Drain {
            url,
            now,
            migrate_to,
        } => {
            let update = NodeUpdate {
                backoff: Some(true),
                ..NodeUpdate::default()
            };
            store.update_node(&url, &update).await?;
            if let Some(to) = migrate_to {
                let migration = Migration::new(settings, &store, postbox.clone(), nodes)?;
                migration.run(&url, &to, None, None).await?;
            }
            let moved = store.unassign_node(&url).await?;
            println!("drained {url}: no new users; {moved} users move at their next sync");
            if now {
                let epoch = store.revoke_node_tokens(&url).await?;
                println!("every token issued for {url} so far is refused (epoch {epoch})");
            }
        }
        NodeCommand::Unassign { url } => {
            let moved = store.unassign_node(&url).await?;
            println!("unassigned {moved} users from {url}");
        }
        NodeCommand::Remove { url } => {
            let moved = store.remove_node(&url).await?;
            println!("removed node {url}; {moved} users move at their next sync");
        }
        NodeCommand::Migrate {
            from,
            to,
            users,
            rate,
        } => {
            let migration = Migration::new(settings, &store, postbox.clone(), nodes)?;
            migration.run(&from, &to, users, rate).await?;
        }
    }
    if moves {
        deliver(settings, store, postbox).await?;
    }
    Ok(())
}

/// Runs a user command; revocations go out as for [`node`].
pub async fn user(
    settings: &TokenserverConfig,
    command: UserCommand,
    postbox: Option<Arc<dyn Postbox>>,
) -> CliResult {
    let store = open(settings).await?;
    let moves = matches!(command, UserCommand::Allocate { .. });
    match command {
        UserCommand::Show { user } => {
            let email = email(settings, &user);
            let records = store.user_records(&email).await?;
            if records.is_empty() {
                return Err(format!("no user {email}").into());
            }
            print_records(&records);
        }
        UserCommand::Allocate { user, node } => {
            let email = email(settings, &user);
            let (keys, seen) = match store.user(&email).await? {
                Some(history) => (history.current.keys, Some(history.current.uid)),
                None => (
                    KeyState {
                        generation: 0,
                        keys_changed_at: None,
                        client_state: ClientState::default(),
                    },
                    None,
                ),
            };
            let rate = settings.node_capacity_release_rate;
            let record = store
                .allocate_user(&email, &keys, Some(&node), seen, rate, UserCap::Ignored)
                .await?;
            println!("allocated {email} to {node} as uid {}", record.uid);
        }
        UserCommand::Count { node } => {
            println!("{}", store.count_users(node.as_deref()).await?);
        }
    }
    if moves {
        deliver(settings, store, postbox).await?;
    }
    Ok(())
}

/// Runs an access command (who may sync).
pub async fn access(settings: &TokenserverConfig, command: AccessCommand) -> CliResult {
    let store = open(settings).await?;
    access::run(settings, store.as_ref(), command).await
}

/// Writes a user's data to a new file, read through `data`.
pub async fn export(
    settings: &TokenserverConfig,
    args: ExportArgs,
    data: Option<Arc<dyn NodeData>>,
) -> CliResult {
    let store = open(settings).await?;
    let data = needs_data(data)?;
    let email = email(settings, &args.user);
    user_file::export(settings, store.as_ref(), data.as_ref(), &email, &args.file).await
}

/// Restores a user's data from an `export` file through `data`; the
/// revocation of their old record goes out as for [`node`].
pub async fn import_user(
    settings: &TokenserverConfig,
    args: ImportUserArgs,
    data: Option<Arc<dyn NodeData>>,
    postbox: Option<Arc<dyn Postbox>>,
) -> CliResult {
    let store = open(settings).await?;
    let data = needs_data(data)?;
    let node = args.node.as_deref();
    user_file::import(settings, store.as_ref(), data.as_ref(), &args.file, node).await?;
    deliver(settings, store, postbox).await
}

/// Takes over a deployment of Mozilla's servers: users through the
/// database, their data through `data`.
pub async fn import(
    settings: &TokenserverConfig,
    args: crate::import::ImportArgs,
    data: Option<Arc<dyn NodeData>>,
) -> CliResult {
    let store = open_or_create(settings).await?;
    let data = needs_data(data)?;
    crate::import::run(settings, store.as_ref(), data.as_ref(), &args).await?;
    Ok(())
}

/// Users' data is reached with tokens minted from the master secret.
fn needs_data(
    data: Option<Arc<dyn NodeData>>,
) -> Result<Arc<dyn NodeData>, Box<dyn std::error::Error>> {
    data.ok_or_else(|| "reaching users' data needs the master secret (SYNC_MASTER_SECRET)".into())
}

/// A migration from the command line, with its progress on stdout.
struct Migration {
    migrator: Migrator,
}

impl Migration {
    fn new(
        settings: &TokenserverConfig,
        store: &Arc<dyn TokenStore>,
        postbox: Option<Arc<dyn Postbox>>,
        nodes: Option<Arc<dyn NodeData>>,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let nodes = needs_data(nodes)?;
        let postbox = postbox.ok_or("moving data needs the master secret (SYNC_MASTER_SECRET)")?;
        let courier = Courier::new(store.clone(), postbox, settings);
        let migrator = Migrator::new(store.clone(), nodes, courier, settings.token_duration);
        Ok(Self { migrator })
    }

    async fn run(&self, from: &str, to: &str, users: Option<u64>, rate: Option<f64>) -> CliResult {
        let started = std::time::Instant::now();
        let report = |p: &Progress, total: u64| {
            let done = p.users + p.failed;
            if done % 100 == 0 || done == total {
                let secs = started.elapsed().as_secs_f64().max(0.001);
                let per_second = done as f64 / secs;
                let eta = (total - done) as f64 / per_second.max(0.001);
                println!(
                    "moved {}/{total} users ({} failed), {} records, {per_second:.1} users/s, ETA {eta:.0} s",
                    p.users, p.failed, p.records
                );
            }
        };
        let progress = self
            .migrator
            .run(from, to, users.unwrap_or(u64::MAX), rate, report)
            .await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "migrated {} users and {} records from {from} to {to} in {secs:.1} s ({:.0} records/s); {} failed",
            progress.users,
            progress.records,
            progress.records as f64 / secs.max(0.001),
            progress.failed
        );
        if progress.failed > 0 {
            return Err(format!(
                "{} users were not moved (see the log); they stay on {from}: run the command again",
                progress.failed
            )
            .into());
        }
        Ok(())
    }
}

/// Delivers the revocations waiting (a command may have queued some), and
/// says where they could not go yet.
async fn deliver(
    settings: &TokenserverConfig,
    store: Arc<dyn TokenStore>,
    postbox: Option<Arc<dyn Postbox>>,
) -> CliResult {
    let Some(postbox) = postbox else {
        return Ok(());
    };
    let delivery = Courier::new(store, postbox, settings).deliver().await?;
    if delivery.delivered > 0 {
        println!(
            "the nodes refuse the old tokens now ({} revocations delivered)",
            delivery.delivered
        );
    }
    for (node, why) in &delivery.failed {
        println!(
            "revocations wait for {node} ({why}): the tokenserver delivers them once it answers"
        );
    }
    Ok(())
}

/// Purges replaced records; their data is deleted through `data` (none:
/// no master secret, so only `--skip-data` can run).
pub async fn purge(
    settings: &TokenserverConfig,
    args: PurgeArgs,
    data: Option<&dyn UserData>,
) -> CliResult {
    let store = open(settings).await?;
    let cutoff = db::now_ms() - i64::from(args.older_than_days) * 86_400_000;
    let policy = match (args.skip_data, data) {
        (true, _) => DataPolicy::Skip,
        (false, Some(data)) => DataPolicy::Delete(data),
        (false, None) => {
            return Err(
                "deleting users' data needs the master secret (SYNC_MASTER_SECRET); \
                        pass --skip-data to only forget the records"
                    .into(),
            )
        }
    };
    let report = purge::purge_replaced(store.as_ref(), cutoff, args.chunk.max(1), &policy).await?;
    println!("purged {} replaced records", report.purged);
    if report.kept > 0 {
        return Err(format!(
            "kept {} records whose storage node did not delete their data (see the log); \
             retry later, or pass --skip-data if those nodes are gone",
            report.kept
        )
        .into());
    }
    Ok(())
}

/// A bare FxA uid gets the configured email domain.
fn email(settings: &TokenserverConfig, user: &str) -> String {
    if user.contains('@') {
        user.to_owned()
    } else {
        settings.email(user)
    }
}

fn check_node_url(url: &str) -> CliResult {
    Ok(crate::config::check_node_url(url)?)
}

fn print_nodes(nodes: &[Node]) {
    println!(
        "{:>4}  {:<40} {:>9} {:>9} {:>9}  flags",
        "id", "node", "capacity", "load", "available"
    );
    for n in nodes {
        println!(
            "{:>4}  {:<40} {:>9} {:>9} {:>9}  {}",
            n.id,
            n.node,
            n.capacity,
            n.current_load,
            n.available,
            flags(n)
        );
    }
}

/// The nodes with their health, last check and users.
async fn list_nodes(store: &dyn TokenStore) -> CliResult {
    let nodes = store.nodes().await?;
    println!(
        "{:>4}  {:<40} {:>9} {:>9} {:>9} {:>7}  {:<9} {:>10}  flags",
        "id", "node", "capacity", "load", "available", "users", "health", "checked"
    );
    let now = db::now_ms();
    for n in &nodes {
        let users = store.count_users(Some(&n.node)).await?;
        let checked = n.health.last_check.map_or("never".to_owned(), |at| {
            format!("{}s ago", (now - at).max(0) / 1000)
        });
        println!(
            "{:>4}  {:<40} {:>9} {:>9} {:>9} {:>7}  {:<9} {:>10}  {}",
            n.id,
            n.node,
            n.capacity,
            n.current_load,
            n.available,
            users,
            health_word(n),
            checked,
            flags(n)
        );
        if let Some(error) = n
            .health
            .last_error
            .as_deref()
            .filter(|_| n.health.failures > 0)
        {
            println!("      last check failed: {error}");
        }
    }
    Ok(())
}

/// `ok`, `failing` (some checks failed), `down` (no new users) or
/// `unchecked`.
fn health_word(node: &Node) -> &'static str {
    let health = &node.health;
    if health.down {
        "down"
    } else if health.failures > 0 {
        "failing"
    } else if health.last_check.is_some() {
        "ok"
    } else {
        "unchecked"
    }
}

fn flags(n: &Node) -> String {
    [(n.downed, "downed"), (n.backoff, "backoff")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

fn print_records(records: &[UserRecord]) {
    for r in records {
        let state = match r.replaced_at {
            None => "current".to_owned(),
            Some(at) => format!("replaced at {at}"),
        };
        println!(
            "uid {}  {}  node {}  generation {}  keys_changed_at {}  client_state {:?}  created at {}  ({state})",
            r.uid,
            r.email,
            r.node.as_deref().unwrap_or("(gone)"),
            r.keys.generation,
            r.keys.keys_changed_at.map_or("-".to_owned(), |k| k.to_string()),
            r.keys.client_state.as_hex(),
            r.created_at,
        );
    }
}
