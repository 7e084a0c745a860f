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

/// The two databases, storage first: every user whose data the storage
/// copy holds then has their record in the tokenserver copy, made later.
fn databases(config: &Config) -> Result<[(&'static str, PathBuf); 2], String> {
    let (storage, tokens) = config.database_urls();
    let path = |url: &sync_common::db_url::DatabaseUrl| {
        url.sqlite_path().ok_or(
            "backup and restore handle the embedded SQLite databases; back up PostgreSQL \
             with pg_dump and MariaDB with mariadb-dump (docs/operations.md, Backups)",
        )
    };
    Ok([
        ("syncstorage.db", path(&storage)?),
        ("tokenserver.db", path(&tokens)?),
    ])
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
        return Err("no master secret here: has this server ever started?".into());
    }
    create_empty(dir)?;
    let mut files = Vec::new();
    for (name, source) in &databases {
        copy_database(source, &dir.join(name)).await?;
        files.push(*name);
        println!(
            "copied {} ({} bytes)",
            source.display(),
            size(&dir.join(name))
        );
    }
    write_private(&dir.join(SECRET), config.master_secret.expose())?;
    files.push(SECRET);
    let manifest = serde_json::json!({
        "format": 1,
        "version": env!("CARGO_PKG_VERSION"),
        "created_at": unix_seconds(),
        "files": files,
    });
    std::fs::write(dir.join(MANIFEST), serde_json::to_vec_pretty(&manifest)?)?;
    println!("backup complete in {}", dir.display());
    Ok(())
}

/// Puts the backup in `dir` into the configured data dir, which must hold
/// neither database: restoring never overwrites a server's data.
pub async fn restore(config: Config, dir: &Path) -> CliResult {
    if !dir.join(MANIFEST).exists() {
        return Err(format!("{} holds no backup (no {MANIFEST})", dir.display()).into());
    }
    let databases = databases(&config)?;
    for (_, target) in &databases {
        if target.exists() {
            return Err(format!(
                "{} exists: restore into an empty data dir, with the server stopped",
                target.display()
            )
            .into());
        }
    }
    for (name, target) in &databases {
        let source = dir.join(name);
        check_integrity(&source).await?;
        place(&source, target)?;
        println!("restored {}", target.display());
    }
    restore_secret(&config, &dir.join(SECRET))?;
    Ok(())
}

/// The backup's secret goes where the server reads it, unless one is
/// configured (a different one only makes clients fetch new tokens).
fn restore_secret(config: &Config, source: &Path) -> CliResult {
    let secret = std::fs::read_to_string(source)?;
    if !config.master_secret.is_empty() {
        if config.master_secret.expose() != secret.trim() {
            println!("note: the configured master secret differs from the backup's; clients will fetch new tokens");
        }
        return Ok(());
    }
    let target = config.data_dir.join(SECRET);
    if target.exists() {
        let current = std::fs::read_to_string(&target)?;
        if current.trim() != secret.trim() {
            return Err(
                format!("{} exists and differs from the backup's", target.display()).into(),
            );
        }
        return Ok(());
    }
    write_private(&target, secret.trim())?;
    println!("restored {}", target.display());
    Ok(())
}

/// Copies `source` next to `target`, then renames it into place: a
/// restore cut short never leaves half a database where a server looks.
fn place(source: &Path, target: &Path) -> std::io::Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let partial = target.with_extension("db.partial");
    std::fs::copy(source, &partial)?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, target)
}

fn create_empty(dir: &Path) -> CliResult {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(format!("{} is not empty: back up into a new folder", dir.display()).into());
    }
    std::fs::create_dir_all(dir)?;
    Ok(())
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
