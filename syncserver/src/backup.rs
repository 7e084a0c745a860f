//! `backup DIR` and `restore DIR`: a consistent copy of a running
//! all-in-one's SQLite databases and master secret, and putting one back
//! into an empty data dir. PostgreSQL and MariaDB have their own tools
//! (docs/operations.md, "Backups").

use std::path::{Path, PathBuf};

use sync_common::cli::CliResult;
use sync_common::sqlite::{check_integrity, copy_database};

use crate::secret::write_private;
use crate::{ensure_master_secret, Config, SecretSource};

const MANIFEST: &str = "backup.json";
const SECRET: &str = "master_secret";
/// The manifest's `format` this version writes and reads.
const FORMAT: u64 = 1;
/// Files SQLite keeps beside a database, which it would apply to a
/// restored one.
const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

type Failure = Box<dyn std::error::Error>;

/// The two databases, storage first: every user whose data the storage
/// copy holds then has their record in the tokenserver copy, made later.
fn databases(config: &Config) -> Result<[(&'static str, PathBuf); 2], String> {
    let (storage, tokens) = config.database_urls();
    let path = |url: &sync_common::db_url::DatabaseUrl| {
        url.sqlite_path().ok_or(
            "backup and restore handle the embedded SQLite databases; for PostgreSQL and \
             MariaDB use pg_dump/pg_restore and mariadb-dump (docs/operations.md, Backups)",
        )
    };
    Ok([
        ("syncstorage.db", absolute(&path(&storage)?)?),
        ("tokenserver.db", absolute(&path(&tokens)?)?),
    ])
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Copies the databases and the master secret into the new folder `dir`.
pub async fn backup(mut config: Config, dir: &Path) -> CliResult {
    let databases = databases(&config)?;
    for (_, path) in &databases {
        if !path.exists() {
            return Err(format!("no database at {}: nothing to back up", path.display()).into());
        }
    }
    if ensure_master_secret(&mut config, false)? == SecretSource::Missing {
        return Err(format!(
            "no master secret: none configured and no {}; run with the server's settings",
            config.data_dir.join(SECRET).display()
        )
        .into());
    }
    let dir = absolute(dir)?;
    create_private_dir(&dir)?;
    for (name, source) in &databases {
        let copy = dir.join(name);
        copy_database(source, &copy).await?;
        sync_file(&copy)?;
        println!("copied {} ({} bytes)", source.display(), size(&copy));
    }
    write_private(&dir.join(SECRET), config.master_secret.expose())
        .map_err(|e| in_file(&dir.join(SECRET), e))?;
    // Last: a folder with a manifest holds a whole backup.
    let manifest = serde_json::json!({
        "format": FORMAT,
        "version": env!("CARGO_PKG_VERSION"),
        "created_at": unix_seconds(),
        "files": ["syncstorage.db", "tokenserver.db", SECRET],
    });
    let path = dir.join(MANIFEST);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?).map_err(|e| in_file(&path, e))?;
    sync_file(&path)?;
    sync_file(&dir)?;
    println!("backup complete in {}", dir.display());
    Ok(())
}

/// Puts the backup in `dir` into the configured data dir, which must hold
/// neither database: restoring never overwrites a server's data. Checks
/// everything before placing anything, and places all or nothing.
pub async fn restore(config: Config, dir: &Path) -> CliResult {
    check_manifest(dir)?;
    let databases = databases(&config)?;
    for (name, target) in &databases {
        refuse_existing(target)?;
        check_integrity(&dir.join(name)).await?;
    }
    let secret = restored_secret(&config, &dir.join(SECRET))?;
    let mut placed = Vec::new();
    let result = place_all(dir, &databases, secret.as_ref(), &mut placed);
    if result.is_err() {
        for path in &placed {
            let _ = std::fs::remove_file(path);
        }
        return result;
    }
    for path in &placed {
        println!("restored {}", path.display());
    }
    refuse_older_tokens(&config).await
}

fn check_manifest(dir: &Path) -> CliResult {
    let path = dir.join(MANIFEST);
    let text = std::fs::read(&path)
        .map_err(|e| format!("{} holds no backup: {}", dir.display(), in_file(&path, e)))?;
    let manifest: serde_json::Value = serde_json::from_slice(&text)?;
    match manifest["format"].as_u64() {
        Some(FORMAT) => Ok(()),
        other => Err(format!(
            "{} has format {other:?}; this version restores format {FORMAT} (made by version {})",
            path.display(),
            manifest["version"]
        )
        .into()),
    }
}

/// A database, or a side file SQLite would apply to the restored one.
fn refuse_existing(target: &Path) -> CliResult {
    let side = SIDE_FILES.map(|suffix| PathBuf::from(format!("{}{suffix}", target.display())));
    for path in std::iter::once(target).chain(side.iter().map(PathBuf::as_path)) {
        if path.exists() {
            return Err(format!(
                "{} exists: restore into an empty data dir, with the server stopped",
                path.display()
            )
            .into());
        }
    }
    Ok(())
}

/// The secret to write into the data dir: the backup's, unless one is
/// configured (a different one only makes clients fetch new tokens) or
/// the same one is there already.
fn restored_secret(config: &Config, source: &Path) -> Result<Option<(PathBuf, String)>, Failure> {
    let secret = std::fs::read_to_string(source).map_err(|e| in_file(source, e))?;
    let secret = secret.trim().to_owned();
    if !config.master_secret.is_empty() {
        if config.master_secret.expose() != secret {
            println!("note: the configured master secret differs from the backup's; clients will fetch new tokens");
        }
        return Ok(None);
    }
    let target = config.data_dir.join(SECRET);
    match std::fs::read_to_string(&target) {
        Ok(current) if current.trim() == secret => Ok(None),
        Ok(_) => Err(format!("{} exists and differs from the backup's", target.display()).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some((target, secret))),
        Err(e) => Err(in_file(&target, e).into()),
    }
}

/// Copies every file next to its target, then renames them into place:
/// a restore cut short never leaves half a database where a server
/// looks. `placed` collects what is in place, to undo.
fn place_all(
    dir: &Path,
    databases: &[(&str, PathBuf)],
    secret: Option<&(PathBuf, String)>,
    placed: &mut Vec<PathBuf>,
) -> CliResult {
    let mut partials = Vec::new();
    for (name, target) in databases {
        let parent = target.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| in_file(parent, e))?;
        let partial = target.with_extension("db.partial");
        std::fs::copy(dir.join(name), &partial).map_err(|e| in_file(&partial, e))?;
        sync_file(&partial)?;
        partials.push((partial, target.clone()));
    }
    for (partial, target) in partials {
        std::fs::rename(&partial, &target).map_err(|e| in_file(&target, e))?;
        placed.push(target.clone());
        same_owner_as_parent(&target);
    }
    if let Some((path, secret)) = secret {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| in_file(parent, e))?;
        }
        write_private(path, secret).map_err(|e| in_file(path, e))?;
        placed.push(path.clone());
        same_owner_as_parent(path);
    }
    Ok(())
}

/// Every token minted before the restore is refused (node epochs, ADR
/// 0012): the copy may predate revocations its node had received.
async fn refuse_older_tokens(config: &Config) -> CliResult {
    let store = tokenserver::db::open(&config.database_urls().1, Default::default()).await?;
    for node in store.nodes().await? {
        store.revoke_node_tokens(&node.node).await?;
    }
    Ok(())
}

/// A restore run as root for a service user leaves files that user owns.
fn same_owner_as_parent(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let Some(owner) = path.parent().and_then(|p| std::fs::metadata(p).ok()) else {
            return;
        };
        if let Err(e) = std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid())) {
            println!("note: {} keeps its owner ({e})", path.display());
        }
    }
}

/// A new folder only its owner may read: it holds the master secret.
fn create_private_dir(dir: &Path) -> CliResult {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|e| in_file(dir, e))?;
        if entries.next().is_some() {
            return Err(
                format!("{} is not empty: back up into a new folder", dir.display()).into(),
            );
        }
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| in_file(dir, e))?;
    Ok(())
}

fn sync_file(path: &Path) -> Result<(), String> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| in_file(path, e))
}

fn in_file(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Seconds since the epoch.
fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
