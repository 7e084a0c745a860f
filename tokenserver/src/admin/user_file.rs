//! `export USER FILE` and `import-user FILE`: one user's data (still
//! encrypted by their clients) as a portable file (`model::user_file`),
//! restorable on any node and backend.
//!
//! An export reads the user's node while their clients keep syncing: each
//! collection is read again until its timestamp held still while it was
//! read; a collection that keeps changing is read with the user's writes
//! refused for a moment. An import fills a staged record (a new uid that
//! serves nobody) and only then makes it the user's live record, so a run
//! that stops anywhere leaves the user as they were; their clients move to
//! the new uid at their next sync and find everything there.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sync_common::cli::CliResult;
use sync_common::migration::Record;

use crate::config::TokenserverConfig;
use crate::db::{now_ms, TokenStore, UserRecord};
use crate::model::user_file::{Collection, Header, Line, LineOrder, FORMAT, VERSION};
use crate::node_data::{CollectionWriter, NodeData, Pages};

/// Rounds of reading before the user's writes are refused for the rest.
const UNFENCED_ROUNDS: usize = 3;
/// Rounds at most: with writes refused, the second one finds nothing new.
const ROUNDS: usize = UNFENCED_ROUNDS + 3;
/// How long an export refuses the user's writes, at most.
const FENCE_SECONDS: u64 = 120;

type Failure = Box<dyn std::error::Error>;

/// Writes `email`'s data to the new file `path`.
pub async fn export(
    settings: &TokenserverConfig,
    store: &dyn TokenStore,
    data: &dyn NodeData,
    email: &str,
    path: &Path,
) -> CliResult {
    let started = Instant::now();
    let record = live_record(store, email).await?;
    let node = record
        .node
        .clone()
        .ok_or_else(|| format!("{email}'s node is no longer registered"))?;
    let uid = u64::try_from(record.uid)?;
    if path.exists() {
        return Err(format!("{} exists: export to a new file", path.display()).into());
    }
    let parts = tempfile::tempdir_in(parent(path))?;
    let snapshot = Snapshot::take(data, &node, uid, parts.path()).await?;
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        fxa_uid: settings.fxa_uid_of(email).unwrap_or(email).to_owned(),
        generation: record.keys.generation,
        keys_changed_at: record.keys.keys_changed_at,
        client_state: record.keys.client_state.as_hex().to_owned(),
        exported_at: now_ms(),
        modified: snapshot.modified,
        collections: snapshot
            .sections
            .iter()
            .map(|(name, s)| (name.clone(), s.collection))
            .collect(),
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    write_file(&partial, &header, &snapshot)?;
    std::fs::rename(&partial, path)?;
    let records: u64 = header.collections.values().map(|c| c.records).sum();
    println!(
        "exported {records} records in {} collections of {email} (uid {uid} on {node}) to {} in {:.1} s",
        header.collections.len(),
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Restores the file at `path` for its account: on the user's node if
/// they have one (else `node`, else where an allocation would put them).
pub async fn import(
    settings: &TokenserverConfig,
    store: &dyn TokenStore,
    data: &dyn NodeData,
    path: &Path,
    node: Option<&str>,
) -> Result<UserRecord, Failure> {
    let started = Instant::now();
    let mut lines = BufReader::new(File::open(path)?).lines();
    let first = lines.next().ok_or("the file is empty")??;
    let header = Header::parse(&first)?;
    let email = settings.email(&header.fxa_uid);
    let current = match store.user(&email).await? {
        Some(history) if history.current.keys.is_retired() => {
            return Err(format!("{email}'s account was deleted").into());
        }
        Some(history) => Some(history.current),
        None => None,
    };
    // The account's own keys, if it has a record: the file's must match.
    let keys = match &current {
        Some(current) if current.keys.client_state != header.keys().client_state => {
            return Err(format!(
                "the file's records are encrypted with other keys (client state {:?}) than {email}'s \
                 current ones ({:?}): their devices could not read them",
                header.client_state,
                current.keys.client_state.as_hex()
            )
            .into());
        }
        Some(current) => current.keys.clone(),
        None => header.keys(),
    };
    let live = current.filter(|r| r.replaced_at.is_none());
    let node = node.or_else(|| live.as_ref().and_then(UserRecord::live_node));
    let rate = settings.node_capacity_release_rate;
    let staged = store.stage_record(&email, &keys, node, rate).await?;
    let target = staged.node.clone().ok_or("the staged record has no node")?;
    let uid = u64::try_from(staged.uid)?;
    let records = fill(data, &target, uid, &header, lines).await?;
    data.finish(&target, uid, header.modified).await?;
    let promoted = store
        .promote_record(staged.uid, &email, live.as_ref().map(|r| r.uid))
        .await?;
    println!(
        "imported {records} records in {} collections for {email}: uid {} on {target} in {:.1} s{}",
        header.collections.len(),
        promoted.uid,
        started.elapsed().as_secs_f64(),
        match &live {
            Some(old) => format!(
                " (replacing uid {}; its devices move at their next sync)",
                old.uid
            ),
            None => String::new(),
        }
    );
    Ok(promoted)
}

/// Writes the record lines into the staged uid; returns how many.
async fn fill(
    data: &dyn NodeData,
    node: &str,
    uid: u64,
    header: &Header,
    lines: impl Iterator<Item = std::io::Result<String>>,
) -> Result<u64, Failure> {
    let mut order = LineOrder::new(header);
    let mut writer: Option<CollectionWriter<'_>> = None;
    let mut written = 0;
    for (number, line) in lines.enumerate() {
        let line = line?;
        let Line { collection, record } = serde_json::from_str(&line)
            .map_err(|e| format!("line {}: not a record: {e}", number + 2))?;
        if order.next(&collection)? {
            if let Some(done) = writer.take() {
                written += done.close().await?;
            }
            let (name, listed) = header
                .collections
                .get_key_value(&collection)
                .ok_or("unlisted collection")?;
            writer = Some(CollectionWriter::new(
                data,
                node,
                uid,
                name,
                listed.modified,
            ));
        }
        if let Some(writer) = writer.as_mut() {
            writer.push(record).await?;
        }
    }
    if let Some(done) = writer.take() {
        written += done.close().await?;
    }
    order.finish()?;
    // Collections without records still have their timestamps.
    for (name, collection) in header.collections.iter().filter(|(_, c)| c.records == 0) {
        CollectionWriter::new(data, node, uid, name, collection.modified)
            .close()
            .await?;
    }
    Ok(written)
}

/// The user's live record.
async fn live_record(store: &dyn TokenStore, email: &str) -> Result<UserRecord, Failure> {
    let history = store
        .user(email)
        .await?
        .ok_or_else(|| format!("no user {email}"))?;
    if history.current.replaced_at.is_some() {
        return Err(format!("{email} has no live record (deleted, or waiting for a node)").into());
    }
    Ok(history.current)
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// A consistent copy of a user's collections, one file each.
struct Snapshot {
    modified: i64,
    sections: BTreeMap<String, Section>,
}

struct Section {
    collection: Collection,
    path: PathBuf,
}

impl Snapshot {
    /// Reads every collection into `dir` until one look at the node finds
    /// each collection's timestamp as it was before that collection was
    /// read: nothing was written to it meanwhile.
    async fn take(data: &dyn NodeData, node: &str, uid: u64, dir: &Path) -> Result<Self, Failure> {
        let mut sections: BTreeMap<String, Section> = BTreeMap::new();
        let mut files = 0;
        let mut fenced = false;
        let result = async {
            for round in 0..ROUNDS {
                let state = data.state(node, uid).await?;
                sections.retain(|name, _| state.collections.contains_key(name));
                let stale: Vec<(&String, &i64)> = state
                    .collections
                    .iter()
                    .filter(|(name, modified)| {
                        sections.get(*name).map(|s| s.collection.modified) != Some(**modified)
                    })
                    .collect();
                if stale.is_empty() {
                    return Ok(state.modified);
                }
                if round == UNFENCED_ROUNDS {
                    // Busy clients: hold their writes while the rest is read.
                    data.fence(node, uid, FENCE_SECONDS).await?;
                    fenced = true;
                }
                for (name, modified) in stale {
                    files += 1;
                    let path = dir.join(format!("{files}.jsonl"));
                    let records = read_collection(data, node, uid, name, &path).await?;
                    eprintln!("{name}: {records} records");
                    let collection = Collection {
                        modified: *modified,
                        records,
                    };
                    sections.insert(name.clone(), Section { collection, path });
                }
            }
            Err::<i64, Failure>("the user's data kept changing while it was read".into())
        }
        .await;
        if fenced {
            data.fence(node, uid, 0).await?;
        }
        Ok(Self {
            modified: result?,
            sections,
        })
    }
}

/// Writes a collection's record lines to `path`; returns how many.
async fn read_collection(
    data: &dyn NodeData,
    node: &str,
    uid: u64,
    name: &str,
    path: &Path,
) -> Result<u64, Failure> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut pages = Pages::new(data, node, uid, name);
    let mut records = 0;
    while let Some(page) = pages.next().await? {
        for record in page {
            write_line(&mut out, name, record)?;
            records += 1;
        }
    }
    out.flush()?;
    Ok(records)
}

fn write_line(out: &mut impl Write, collection: &str, record: Record) -> Result<(), Failure> {
    let line = Line {
        collection: collection.to_owned(),
        record,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// The header, then each collection's lines, synced to disk.
fn write_file(path: &Path, header: &Header, snapshot: &Snapshot) -> Result<(), Failure> {
    let file = File::create(path)?;
    let mut out = BufWriter::new(file);
    serde_json::to_writer(&mut out, header)?;
    out.write_all(b"\n")?;
    for section in snapshot.sections.values() {
        std::io::copy(&mut File::open(&section.path)?, &mut out)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}
