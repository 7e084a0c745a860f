//! `import`: takes over a deployment of Mozilla's Python `syncserver` or of
//! syncstorage-rs (docs/migrating.md). Every user record comes along with
//! its uid, generation, keys and history; every live user's collections
//! with their timestamps and every live record with its id, payload,
//! sortindex, modified time and expiry. A Firefox that synced there finds
//! its own data under its own uid here and goes on incrementally.
//!
//! Idempotent and resumable: records already here are kept, and a user
//! whose data here already matches the source's timestamps is skipped, so
//! a run stopped anywhere is finished by running it again.

mod source;

use std::time::{Duration, Instant};

use clap::Args;
use sync_common::db_url::DatabaseUrl;
use sync_common::migration::{UserState, MAX_RECORDS};

use crate::config::TokenserverConfig;
use crate::db::{now_ms, AdoptedRecord, TokenStore};
use crate::model::keys::ClientState;
use crate::model::user::{KeyState, RETIRED_GENERATION};
use crate::node_data::{CollectionWriter, NodeData};
pub use source::{Layout, Source, SourceUser};

/// How often progress is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// `import`'s arguments.
#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The source's storage database: the Python server's one database
    /// (`sqlite:/path/syncserver.db`, `mysql://…`), or syncstorage-rs's
    /// storage database (`mysql://…`, `postgres://…`).
    #[arg(long)]
    pub from: String,
    /// The source's tokenserver database, if apart (syncstorage-rs).
    #[arg(long)]
    pub tokens_from: Option<String>,
    /// Only the users the source placed on this node (a source with
    /// several nodes is imported one storage database at a time).
    #[arg(long)]
    pub source_node: Option<String>,
    /// The node here to put them on (default: the only one).
    #[arg(long)]
    pub node: Option<String>,
}

type Failure = Box<dyn std::error::Error>;

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub users: u64,
    pub skipped: u64,
    pub records: u64,
}

/// Imports the source `args` names into `store` and the node's `data`.
pub async fn run(
    settings: &TokenserverConfig,
    store: &dyn TokenStore,
    data: &dyn NodeData,
    args: &ImportArgs,
) -> Result<Imported, Failure> {
    let started = Instant::now();
    let storage = DatabaseUrl::new(args.from.clone());
    let tokens = DatabaseUrl::new(
        args.tokens_from
            .clone()
            .unwrap_or_else(|| args.from.clone()),
    );
    let source = Source::open(&storage, &tokens).await?;
    let users = chosen_users(source.users().await?, args.source_node.as_deref());
    if users.is_empty() {
        return Err("the source has no Sync users to import (check --source-node)".into());
    }
    check_domain(settings, &users)?;
    let node = target_node(store, args.node.as_deref()).await?;
    let records: Vec<AdoptedRecord> = users.iter().map(adopted).collect();
    let adopted = store.adopt_records(&records, &node).await?;
    println!(
        "{:?} source: {} user records ({} new here, {} from an earlier run) onto {node}",
        source.layout,
        records.len(),
        adopted.added,
        adopted.present
    );
    let live: Vec<&SourceUser> = users.iter().filter(|u| is_live(u)).collect();
    let mut done = Imported::default();
    let mut shown = Instant::now();
    for (i, user) in live.iter().enumerate() {
        let copied = import_user(&source, data, &node, user.uid).await?;
        match copied {
            Some(records) => {
                done.users += 1;
                done.records += records;
            }
            None => done.skipped += 1,
        }
        if shown.elapsed() >= PROGRESS_EVERY || i + 1 == live.len() {
            shown = Instant::now();
            print_progress(&done, i + 1, live.len(), started);
        }
    }
    println!(
        "imported {} users and {} records in {:.1} s; {} users had nothing new to import",
        done.users,
        done.records,
        started.elapsed().as_secs_f64(),
        done.skipped
    );
    Ok(done)
}

/// Copies one user's data unless it is here already; the records copied.
async fn import_user(
    source: &Source,
    data: &dyn NodeData,
    node: &str,
    uid: i64,
) -> Result<Option<u64>, Failure> {
    let wanted = source.state(uid).await?;
    let target = u64::try_from(uid)?;
    let here = data.state(node, target).await?;
    if here == wanted {
        return Ok(None);
    }
    if newer_here(&here, &wanted) {
        // Their devices synced here since: the source is behind them.
        println!("uid {uid} has newer data here than in the source: left as it is");
        return Ok(None);
    }
    let now = now_ms();
    let mut copied = 0;
    for (name, modified) in &wanted.collections {
        let mut writer = CollectionWriter::new(data, node, target, name, *modified);
        let mut after = String::new();
        loop {
            let page = source
                .records(uid, name, &after, MAX_RECORDS as i64, now)
                .await?;
            let full = page.len() == MAX_RECORDS;
            if let Some(last) = page.last() {
                after.clone_from(&last.id);
            }
            for record in page {
                writer.push(record).await?;
            }
            if !full {
                break;
            }
        }
        copied += writer.close().await?;
    }
    // What an earlier run left of collections the source no longer has.
    for name in here.collections.keys() {
        if !wanted.collections.contains_key(name) {
            data.drop_collection(node, target, name).await?;
        }
    }
    data.finish(node, target, wanted.modified).await?;
    Ok(Some(copied))
}

/// Whether anything here was written after the source's last write.
fn newer_here(here: &UserState, source: &UserState) -> bool {
    here.modified > source.modified
        || here
            .collections
            .iter()
            .any(|(name, at)| source.collections.get(name).is_none_or(|s| at > s))
}

fn print_progress(done: &Imported, seen: usize, total: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let per_user = secs / seen as f64;
    println!(
        "{seen}/{total} users, {} records ({:.0} records/s), ETA {:.0} s",
        done.records,
        done.records as f64 / secs,
        per_user * (total - seen) as f64
    );
}

/// The users to import: all of them, or those on `node` in the source.
fn chosen_users(users: Vec<SourceUser>, node: Option<&str>) -> Vec<SourceUser> {
    match node {
        None => users,
        Some(node) => users
            .into_iter()
            .filter(|u| u.node.as_deref() == Some(node))
            .collect(),
    }
}

/// A user whose data their devices still read: current, not deleted.
fn is_live(user: &SourceUser) -> bool {
    user.replaced_at.is_none() && user.generation != RETIRED_GENERATION
}

fn adopted(user: &SourceUser) -> AdoptedRecord {
    AdoptedRecord {
        uid: user.uid,
        email: user.email.clone(),
        keys: KeyState {
            generation: user.generation,
            keys_changed_at: user.keys_changed_at,
            client_state: ClientState::from_stored(user.client_state.to_ascii_lowercase()),
        },
        created_at: user.created_at,
        replaced_at: user.replaced_at,
    }
}

/// Tokens name accounts `{fxa_uid}@{fxa_email_domain}`: the source's
/// accounts must be under this server's domain, or every device would
/// find an empty storage here and upload everything again.
fn check_domain(settings: &TokenserverConfig, users: &[SourceUser]) -> Result<(), String> {
    let domain = &settings.fxa_email_domain;
    match users.iter().find(|u| settings.fxa_uid_of(&u.email).is_none()) {
        Some(other) => Err(format!(
            "the source has accounts outside {domain} (e.g. {}): set SYNC_TOKENSERVER__FXA_EMAIL_DOMAIN \
             to the domain the source used",
            other.email
        )),
        None => Ok(()),
    }
}

/// `node`, or this tokenserver's only node.
async fn target_node(store: &dyn TokenStore, node: Option<&str>) -> Result<String, Failure> {
    let nodes = store.nodes().await?;
    match (node, nodes.as_slice()) {
        (Some(url), _) if nodes.iter().any(|n| n.node == url) => Ok(url.to_owned()),
        (Some(url), _) => Err(format!("no node {url}: add it first (`node add`)").into()),
        (None, [only]) => Ok(only.node.clone()),
        (None, []) => Err("no storage node yet: add one first (`node add`)".into()),
        (None, _) => Err("several nodes: choose one with --node".into()),
    }
}
