//! What both services' SQLite backends do alike: open a database file the
//! same way, and read what a driver error says about the request.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use crate::db_url::{create_parent_dir, DatabaseUrl};
pub use crate::failure::Failure;

/// Connection options for `url`: created if missing (with its folder), WAL
/// journal, `synchronous = NORMAL`, and `busy_timeout` for locks held by
/// other processes. Also says whether the database is in memory (it then
/// exists once per connection).
pub fn connect_options(
    url: &DatabaseUrl,
    busy_timeout: Duration,
) -> Result<(SqliteConnectOptions, bool), String> {
    let options = SqliteConnectOptions::from_str(url.expose())
        .map_err(|e| format!("invalid SQLite URL {url}: {e}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(busy_timeout);
    let in_memory = url.expose().contains(":memory:") || url.expose().contains("mode=memory");
    if !in_memory {
        create_parent_dir(options.get_filename())?;
    }
    Ok((options, in_memory))
}

/// What a failed SQLite call means for the request: BUSY and LOCKED
/// (extended codes included) are another writer; READONLY, IOERR, FULL and
/// CANTOPEN are the disk.
pub fn failure(err: &sqlx::Error) -> Failure {
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
            match code & 0xff {
                5 | 6 => Failure::Busy,
                8 | 10 | 13 | 14 => Failure::Outage,
                _ => Failure::Other,
            }
        }
        other => Failure::of_connection(other),
    }
}

/// Copies the database at `source` (a file, possibly in use by running
/// servers) to the new file `target` with `VACUUM INTO`: one read
/// transaction, so the copy is consistent as of its start, compacted, and
/// with its WAL folded in. Then checks the copy's integrity.
pub async fn copy_database(
    source: &std::path::Path,
    target: &std::path::Path,
) -> Result<(), String> {
    use sqlx::{ConnectOptions, Connection};
    // Not read-only: a read-only connection cannot always join a running
    // server's WAL. VACUUM INTO never writes to its source.
    let options = SqliteConnectOptions::new()
        .filename(source)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30));
    let mut conn = options
        .connect()
        .await
        .map_err(|e| format!("cannot open {}: {e}", source.display()))?;
    let target_text = target.to_str().ok_or("the target path is not UTF-8")?;
    sqlx::query("VACUUM INTO ?")
        .bind(target_text)
        .execute(&mut conn)
        .await
        .map_err(|e| {
            format!(
                "cannot copy {} to {}: {e}",
                source.display(),
                target.display()
            )
        })?;
    conn.close().await.ok();
    check_integrity(target).await
}

/// Fails unless SQLite's `integrity_check` finds the file sound.
pub async fn check_integrity(path: &std::path::Path) -> Result<(), String> {
    use sqlx::{ConnectOptions, Connection};
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("cannot check {}: {e}", path.display()))?;
    conn.close().await.ok();
    if verdict == "ok" {
        Ok(())
    } else {
        Err(format!("{} is damaged: {verdict}", path.display()))
    }
}
