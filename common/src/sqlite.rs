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
