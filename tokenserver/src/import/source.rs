//! The databases of Mozilla's servers, read (never written) for `import`.
//! Their schemas, from their public source (docs/migrating.md):
//!
//! - Python `syncserver`: one database. `users` (`service` the text
//!   `sync-1.5`; `keys_changed_at` only since 2020), and the storage
//!   tables `collections(collectionid, name)`, `user_collections(userid,
//!   collection, last_modified)` and `bso(userid, collection, id,
//!   sortindex, modified, payload, ttl)`, `ttl` the expiry in seconds.
//! - syncstorage-rs on MySQL: storage `collections(id, name)`,
//!   `user_collections` (collection 0: the timestamp of a deletion) and
//!   `bso`, `ttl` the expiry in milliseconds.
//! - syncstorage-rs on PostgreSQL: `collections(collection_id, name)`,
//!   `user_collections(user_id, collection_id, modified)` and `bsos(…,
//!   bso_id, …, expiry)`, times as `TIMESTAMPTZ`.
//! - their tokenservers: `services`, `nodes`, `users` as ours.
//!
//! Times are read as milliseconds, collections by name (their ids differ
//! between servers); expired records and uncommitted batches stay behind.

use std::collections::BTreeMap;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::AnyPool;
use sqlx::Row;
use sync_common::db_url::{Backend, DatabaseUrl};
use sync_common::migration::{Record, UserState};

/// Expiry times from here on mean "never" (2,100,000,000 s, the `ttl` of
/// both servers' records written without one, is July 2036 as a date).
const NO_EXPIRY_MS: i64 = 2_100_000_000_000;
/// What a record without a TTL gets here: its time plus that many ms.
const DEFAULT_TTL_MS: i64 = 2_100_000_000_000;

/// Which server wrote the storage database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Python,
    RustMysql,
    RustPostgres,
}

/// A row of the source's `users`.
#[derive(Debug, Clone)]
pub struct SourceUser {
    pub uid: i64,
    pub email: String,
    pub generation: i64,
    pub client_state: String,
    pub created_at: i64,
    pub replaced_at: Option<i64>,
    pub keys_changed_at: Option<i64>,
    /// The node the source put the user on (none in the Python server's
    /// own `users`).
    pub node: Option<String>,
}

/// The source's statements, in its dialect.
struct Queries {
    users: String,
    collections: String,
    latest_records: String,
    storage: String,
    records: String,
}

/// A deployment to import from.
pub struct Source {
    storage: AnyPool,
    tokens: AnyPool,
    pub layout: Layout,
    queries: Queries,
}

impl Source {
    /// Opens the storage database at `storage` and the tokenserver's at
    /// `tokens` (the Python server keeps both in one), read-only.
    pub async fn open(storage: &DatabaseUrl, tokens: &DatabaseUrl) -> Result<Self, String> {
        sqlx::any::install_default_drivers();
        let storage_pool = connect(storage).await?;
        let tokens_pool = if tokens == storage {
            storage_pool.clone()
        } else {
            connect(tokens).await?
        };
        let layout = detect(&storage_pool, storage).await?;
        let users = users_query(&tokens_pool, tokens).await?;
        let queries = Queries::new(layout, users, storage.backend()?);
        Ok(Self {
            storage: storage_pool,
            tokens: tokens_pool,
            layout,
            queries,
        })
    }

    /// Every record of the `sync-1.5` service, by uid.
    pub async fn users(&self) -> Result<Vec<SourceUser>, String> {
        let rows = sqlx::query(&self.queries.users)
            .fetch_all(&self.tokens)
            .await
            .map_err(|e| format!("cannot read the source's users: {e}"))?;
        rows.iter().map(source_user).collect()
    }

    /// The user's timestamps: each collection's (its newest record's when
    /// that is later), and the storage's.
    pub async fn state(&self, uid: i64) -> Result<UserState, String> {
        let mut collections = BTreeMap::new();
        for sql in [&self.queries.collections, &self.queries.latest_records] {
            let rows = sqlx::query(sql)
                .bind(uid)
                .fetch_all(&self.storage)
                .await
                .map_err(read_error)?;
            for row in rows {
                let name: String = row.try_get(0).map_err(read_error)?;
                let modified = floor_10(row.try_get(1).map_err(read_error)?);
                let entry = collections.entry(name).or_insert(modified);
                *entry = (*entry).max(modified);
            }
        }
        let stored: Option<i64> = sqlx::query_scalar(&self.queries.storage)
            .bind(uid)
            .fetch_one(&self.storage)
            .await
            .map_err(read_error)?;
        let newest = collections.values().copied().max().unwrap_or(0);
        let modified = floor_10(stored.unwrap_or(0)).max(newest);
        Ok(UserState {
            modified,
            collections,
        })
    }

    /// Up to `limit` live records of the collection with ids after
    /// `after`, in id order, as this server stores them.
    pub async fn records(
        &self,
        uid: i64,
        collection: &str,
        after: &str,
        limit: i64,
        now_ms: i64,
    ) -> Result<Vec<Record>, String> {
        let now = match self.layout {
            Layout::Python => now_ms / 1000,
            Layout::RustMysql | Layout::RustPostgres => now_ms,
        };
        let mut query = sqlx::query(&self.queries.records)
            .bind(uid)
            .bind(collection)
            .bind(after);
        if self.layout != Layout::RustPostgres {
            query = query.bind(now);
        }
        let rows = query
            .bind(limit)
            .fetch_all(&self.storage)
            .await
            .map_err(read_error)?;
        rows.iter().map(|row| self.record(row)).collect()
    }

    fn record(&self, row: &AnyRow) -> Result<Record, String> {
        let modified = floor_10(row.try_get(1).map_err(read_error)?);
        let raw_expiry: i64 = row.try_get(4).map_err(read_error)?;
        let expiry_ms = match self.layout {
            Layout::Python => raw_expiry.saturating_mul(1000),
            Layout::RustMysql | Layout::RustPostgres => raw_expiry,
        };
        let expiry = if expiry_ms >= NO_EXPIRY_MS {
            modified.saturating_add(DEFAULT_TTL_MS)
        } else {
            expiry_ms
        };
        let sortindex: Option<i64> = row.try_get(3).map_err(read_error)?;
        Ok(Record {
            id: row.try_get(0).map_err(read_error)?,
            modified,
            payload: text(row, 2)?,
            sortindex: sortindex.and_then(|s| i32::try_from(s).ok()),
            expiry,
        })
    }
}

/// A text column, also where the driver reports it as bytes (MySQL's
/// MEDIUMTEXT reaches sqlx's Any driver as a BLOB).
fn text(row: &AnyRow, column: usize) -> Result<String, String> {
    match row.try_get::<String, _>(column) {
        Ok(text) => Ok(text),
        Err(_) => {
            let bytes: Vec<u8> = row.try_get(column).map_err(read_error)?;
            String::from_utf8(bytes).map_err(|e| format!("a payload is not UTF-8: {e}"))
        }
    }
}

fn read_error(e: sqlx::Error) -> String {
    format!("cannot read the source's storage: {e}")
}

/// The servers keep times in whole hundredths of a second.
fn floor_10(ms: i64) -> i64 {
    ms - ms.rem_euclid(10)
}

async fn connect(url: &DatabaseUrl) -> Result<AnyPool, String> {
    let target = match url.backend()? {
        // Read-only: the import never changes its source.
        Backend::Sqlite if !url.expose().contains('?') => format!("{}?mode=ro", url.expose()),
        _ => url.expose().to_owned(),
    };
    if let Some(path) = url.sqlite_path() {
        if !path.exists() {
            return Err(format!("no database at {}", path.display()));
        }
    }
    AnyPoolOptions::new()
        .max_connections(2)
        .connect(&target)
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))
}

/// Whether `sql` runs on `pool` (to tell schemas apart without knowing the
/// dialect's catalog).
async fn runs(pool: &AnyPool, sql: &str) -> bool {
    sqlx::query(sql).fetch_optional(pool).await.is_ok()
}

async fn detect(pool: &AnyPool, url: &DatabaseUrl) -> Result<Layout, String> {
    if runs(pool, "SELECT bso_id FROM bsos LIMIT 1").await {
        return Ok(Layout::RustPostgres);
    }
    if runs(pool, "SELECT userid FROM bso0 LIMIT 1").await {
        return Err(format!(
            "{url} keeps its records in sharded tables (bso0, bso1, …), which import does not read"
        ));
    }
    if !runs(pool, "SELECT userid FROM bso LIMIT 1").await {
        return Err(format!(
            "{url} holds no Sync storage (no bso or bsos table): give the storage database"
        ));
    }
    if runs(pool, "SELECT collectionid FROM collections LIMIT 1").await {
        Ok(Layout::Python)
    } else {
        Ok(Layout::RustMysql)
    }
}

/// The users statement for the tokenserver database at `url`.
async fn users_query(pool: &AnyPool, url: &DatabaseUrl) -> Result<String, String> {
    const COLUMNS: &str =
        "u.uid, u.email, u.generation, u.client_state, u.created_at, u.replaced_at";
    if runs(pool, "SELECT id FROM services LIMIT 1").await {
        return Ok(format!(
            // syncstorage-rs deleted its services rows for a while (2021
            // to 2026): users of no listed service are Sync's.
            "SELECT {COLUMNS}, u.keys_changed_at, n.node FROM users u \
             LEFT JOIN services s ON s.id = u.service LEFT JOIN nodes n ON n.id = u.nodeid \
             WHERE s.service = 'sync-1.5' OR s.id IS NULL ORDER BY u.uid"
        ));
    }
    // The Python server's own table: the service by name, no nodes.
    if !runs(pool, "SELECT uid FROM users LIMIT 1").await {
        return Err(format!(
            "{url} holds no tokenserver users: give the tokenserver database too"
        ));
    }
    let keys = if runs(pool, "SELECT keys_changed_at FROM users LIMIT 1").await {
        "u.keys_changed_at"
    } else {
        "NULL"
    };
    Ok(format!(
        "SELECT {COLUMNS}, {keys}, NULL FROM users u WHERE u.service = 'sync-1.5' ORDER BY u.uid"
    ))
}

fn source_user(row: &AnyRow) -> Result<SourceUser, String> {
    let read = |e: sqlx::Error| format!("cannot read the source's users: {e}");
    Ok(SourceUser {
        uid: row.try_get(0).map_err(read)?,
        email: row.try_get(1).map_err(read)?,
        generation: row.try_get(2).map_err(read)?,
        client_state: row.try_get(3).map_err(read)?,
        created_at: row.try_get(4).map_err(read)?,
        replaced_at: row.try_get(5).map_err(read)?,
        keys_changed_at: row.try_get(6).map_err(read)?,
        node: row.try_get(7).map_err(read)?,
    })
}

impl Queries {
    fn new(layout: Layout, users: String, backend: Backend) -> Self {
        let (collections, latest_records, storage, records) = match layout {
            Layout::Python => (
                "SELECT c.name, uc.last_modified FROM user_collections uc \
                 JOIN collections c ON c.collectionid = uc.collection WHERE uc.userid = ?",
                "SELECT c.name, MAX(b.modified) FROM bso b \
                 JOIN collections c ON c.collectionid = b.collection WHERE b.userid = ? GROUP BY c.name",
                "SELECT MAX(last_modified) FROM user_collections WHERE userid = ?",
                "SELECT b.id, b.modified, COALESCE(b.payload, ''), b.sortindex, \
                 COALESCE(b.ttl, 2100000000) FROM bso b JOIN collections c ON c.collectionid = b.collection \
                 WHERE b.userid = ? AND c.name = ? AND b.id > ? AND COALESCE(b.ttl, 2100000000) > ? \
                 ORDER BY b.id LIMIT ?",
            ),
            Layout::RustMysql => (
                "SELECT c.name, uc.last_modified FROM user_collections uc \
                 JOIN collections c ON c.id = uc.collection WHERE uc.userid = ? AND c.name <> ''",
                "SELECT c.name, MAX(b.modified) FROM bso b \
                 JOIN collections c ON c.id = b.collection WHERE b.userid = ? GROUP BY c.name",
                // Collection 0 holds when a collection was deleted.
                "SELECT MAX(last_modified) FROM user_collections WHERE userid = ?",
                "SELECT b.id, b.modified, b.payload, b.sortindex, b.ttl FROM bso b \
                 JOIN collections c ON c.id = b.collection \
                 WHERE b.userid = ? AND c.name = ? AND b.id > ? AND b.ttl > ? ORDER BY b.id LIMIT ?",
            ),
            Layout::RustPostgres => (
                // Rows dated year 1 are placeholders for batches, not writes.
                "SELECT c.name, ROUND(EXTRACT(EPOCH FROM uc.modified) * 1000)::BIGINT \
                 FROM user_collections uc JOIN collections c ON c.collection_id = uc.collection_id \
                 WHERE uc.user_id = ? AND uc.modified > '1970-01-02'",
                "SELECT c.name, ROUND(EXTRACT(EPOCH FROM MAX(b.modified)) * 1000)::BIGINT FROM bsos b \
                 JOIN collections c ON c.collection_id = b.collection_id WHERE b.user_id = ? GROUP BY c.name",
                "SELECT ROUND(EXTRACT(EPOCH FROM MAX(modified)) * 1000)::BIGINT \
                 FROM user_collections WHERE user_id = ? AND modified > '1970-01-02'",
                "SELECT b.bso_id, ROUND(EXTRACT(EPOCH FROM b.modified) * 1000)::BIGINT, b.payload, \
                 b.sortindex::BIGINT, ROUND(EXTRACT(EPOCH FROM b.expiry) * 1000)::BIGINT FROM bsos b \
                 JOIN collections c ON c.collection_id = b.collection_id \
                 WHERE b.user_id = ? AND c.name = ? AND b.bso_id COLLATE \"C\" > ? AND b.expiry > now() \
                 ORDER BY b.bso_id COLLATE \"C\" LIMIT ?",
            ),
        };
        let dialect = |sql: &str| placeholders(sql, backend);
        Self {
            users,
            collections: dialect(collections),
            latest_records: dialect(latest_records),
            storage: dialect(storage),
            records: dialect(records),
        }
    }
}

/// `?` as the backend numbers parameters (`$1`, `$2`, … on PostgreSQL).
fn placeholders(sql: &str, backend: Backend) -> String {
    if backend != Backend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_numbers_its_parameters() {
        assert_eq!(
            placeholders("a = ? AND b > ?", Backend::Postgres),
            "a = $1 AND b > $2"
        );
        assert_eq!(placeholders("a = ?", Backend::MySql), "a = ?");
    }

    #[test]
    fn times_are_whole_hundredths() {
        assert_eq!(floor_10(1_234_567), 1_234_560);
        assert_eq!(floor_10(1_234_560), 1_234_560);
    }
}
