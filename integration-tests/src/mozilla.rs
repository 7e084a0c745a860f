//! Deployments of Mozilla's servers to import from, built from their
//! schemas (Python `syncserver` on SQLite or MySQL; syncstorage-rs on MySQL
//! or PostgreSQL, its tokenserver beside it) and filled as years of Firefox
//! syncing leave them: several users, every standard collection and a
//! custom one, records with and without TTLs, one already expired, a
//! deleted collection, an emptied one, a key reset with its old uid's data,
//! a deleted account, and a user with 50,000 history records. What a client
//! must find after the import is kept beside.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, Connection, Executor};

use crate::db::{TestBackend, TestDb};

/// Which server the deployment ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Python `syncserver` on SQLite, from before 2020 (no
    /// `keys_changed_at` column).
    PythonSqlite,
    PythonMysql,
    RustMysql,
    RustPostgres,
}

/// What "no TTL" is stored as (seconds on the Python server).
const PYTHON_NO_TTL: i64 = 2_100_000_000;
/// Records in the large user's history.
pub const LARGE: usize = 50_000;
const DAY_MS: i64 = 86_400_000;

/// One record as a client reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub id: String,
    pub modified: i64,
    pub payload: String,
    pub sortindex: Option<i64>,
}

/// A user of the source.
#[derive(Debug, Clone)]
pub struct SourceUser {
    pub fxa_uid: String,
    pub uid: i64,
    pub generation: i64,
    /// The client state's bytes (its hex is stored).
    pub client_state: [u8; 16],
    /// Whether their data is theirs to read still (current, not deleted).
    pub live: bool,
    /// Each collection's timestamp, as info/collections gives it (ms).
    pub collections: BTreeMap<String, i64>,
    /// The storage's timestamp (ms).
    pub modified: i64,
    /// Each collection's live records, by id.
    pub records: BTreeMap<String, Vec<Expected>>,
}

/// A source deployment: its databases (dropped with it) and users.
pub struct Deployment {
    pub layout: Layout,
    pub storage_url: String,
    pub tokens_url: String,
    pub users: Vec<SourceUser>,
    _dbs: Vec<TestDb>,
}

/// A stored row of `bso`/`bsos`.
struct Row {
    uid: i64,
    collection: String,
    id: String,
    sortindex: Option<i64>,
    modified: i64,
    payload: String,
    /// Absolute expiry (ms); `None`: stored without a TTL.
    expiry: Option<i64>,
}

impl Deployment {
    pub async fn build(layout: Layout) -> Self {
        let (storage_db, tokens_db) = match layout {
            Layout::PythonSqlite => (TestDb::fresh_on(TestBackend::Sqlite, "py").await, None),
            Layout::PythonMysql => (TestDb::fresh_on(TestBackend::MySql, "py").await, None),
            Layout::RustMysql => (
                TestDb::fresh_on(TestBackend::MySql, "rs_storage").await,
                Some(TestDb::fresh_on(TestBackend::MySql, "rs_tokens").await),
            ),
            Layout::RustPostgres => (TestDb::fresh_on(TestBackend::Postgres, "rs").await, None),
        };
        let storage_url = storage_db.url.clone();
        let tokens_url = tokens_db
            .as_ref()
            .map_or(storage_url.clone(), |d| d.url.clone());
        let now = now_ms();
        let (users, rows, mut tombstones, emptied) = story(now);
        if matches!(layout, Layout::PythonSqlite | Layout::PythonMysql) {
            // The Python server keeps no trace of a deleted collection.
            tombstones.clear();
        }
        let mut storage = connect(&storage_url).await;
        for sql in schema(layout) {
            storage.execute(sql).await.unwrap();
        }
        let mut tokens = connect(&tokens_url).await;
        if tokens_url != storage_url {
            for sql in tokens_schema() {
                tokens.execute(sql).await.unwrap();
            }
        } else if layout == Layout::RustPostgres {
            for sql in tokens_schema_postgres() {
                storage.execute(sql).await.unwrap();
            }
        }
        let ids = collection_ids(layout);
        insert_collections(&mut storage, layout, &ids).await;
        insert_users(&mut tokens, layout, &users).await;
        insert_rows(&mut storage, layout, &ids, &rows).await;
        let users = expected(users, &rows, &tombstones, &emptied, now);
        insert_user_collections(&mut storage, layout, &ids, &users, &tombstones).await;
        let mut dbs = vec![storage_db];
        dbs.extend(tokens_db);
        Self {
            layout,
            storage_url,
            tokens_url,
            users,
            _dbs: dbs,
        }
    }
}

fn now_ms() -> i64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let ms = i64::try_from(ms).unwrap();
    ms - ms % 10
}

async fn connect(url: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    let url = match url.starts_with("sqlite:") {
        true => format!("{url}?mode=rwc"),
        false => url.to_owned(),
    };
    AnyConnection::connect(&url).await.unwrap()
}

/// A payload as Firefox writes it: encrypted, base64.
fn encrypted(seed: &str) -> String {
    let body = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("ciphertext of {seed} {}", "x".repeat(120)),
    );
    format!("{{\"ciphertext\":\"{body}\",\"IV\":\"aXYtb2Yt{seed}\",\"hmac\":\"0f1e2d3c4b5a\"}}")
}

/// A user record of the story, before its data is known.
struct Account {
    fxa_uid: &'static str,
    uid: i64,
    generation: i64,
    client_state: [u8; 16],
    created_at: i64,
    replaced_at: Option<i64>,
}

/// Who synced what, over a month; deletions left as the servers leave
/// them. Returns the accounts, the stored rows, the deletions (uid,
/// time) and the collections emptied record by record (uid, name, time).
#[allow(clippy::type_complexity)]
fn story(
    now: i64,
) -> (
    Vec<Account>,
    Vec<Row>,
    Vec<(i64, i64)>,
    Vec<(i64, String, i64)>,
) {
    let start = now - 30 * DAY_MS;
    let at = |day: i64, n: i64| start + day * DAY_MS + n * 10;
    let accounts = vec![
        Account {
            fxa_uid: "a11ce0000000000000000000000000a1",
            uid: 1,
            generation: at(0, 0),
            client_state: [1; 16],
            created_at: at(0, 0),
            replaced_at: None,
        },
        Account {
            fxa_uid: "b0b00000000000000000000000000b0b",
            uid: 2,
            generation: at(0, 1),
            client_state: [2; 16],
            created_at: at(0, 1),
            replaced_at: Some(at(3, 0)),
        },
        Account {
            fxa_uid: "b0b00000000000000000000000000b0b",
            uid: 3,
            generation: at(3, 0),
            client_state: [3; 16],
            created_at: at(3, 0),
            replaced_at: None,
        },
        Account {
            fxa_uid: "ca201000000000000000000000000ca2",
            uid: 4,
            generation: at(1, 0),
            client_state: [4; 16],
            created_at: at(1, 0),
            replaced_at: None,
        },
        Account {
            fxa_uid: "da7e0000000000000000000000000da7",
            uid: 5,
            generation: i64::MAX,
            client_state: [5; 16],
            created_at: at(1, 5),
            replaced_at: Some(at(20, 0)),
        },
    ];
    let mut rows = Vec::new();
    let mut row = |uid: i64,
                   collection: &str,
                   id: String,
                   sortindex: Option<i64>,
                   modified: i64,
                   expiry: Option<i64>| {
        let payload = if collection == "meta" {
            "{\"syncID\":\"Xa8FE2-mwAVK\",\"storageVersion\":5,\"engines\":{\"bookmarks\":{\"version\":2,\"syncID\":\"ab1c2d3e4f5g\"}}}".to_owned()
        } else {
            encrypted(&format!("{uid}{collection}{id}"))
        };
        rows.push(Row {
            uid,
            collection: collection.to_owned(),
            id,
            sortindex,
            modified,
            payload,
            expiry,
        });
    };
    for (uid, day) in [(1, 0), (2, 0), (3, 3), (4, 1), (5, 1)] {
        row(uid, "meta", "global".into(), None, at(day, 1), None);
        row(uid, "crypto", "keys".into(), None, at(day, 2), None);
    }
    // Alice uses everything.
    let three_weeks = now + 21 * DAY_MS;
    row(
        1,
        "clients",
        "clientAAAAAA".into(),
        None,
        at(29, 1),
        Some(three_weeks),
    );
    row(
        1,
        "clients",
        "clientBBBBBB".into(),
        None,
        at(28, 1),
        Some(three_weeks),
    );
    row(
        1,
        "tabs",
        "clientAAAAAA".into(),
        None,
        at(29, 2),
        Some(three_weeks),
    );
    for i in 0..400 {
        let id = format!("bm{i:010}");
        row(
            1,
            "bookmarks",
            id,
            Some(i64::from(i % 7) * 100),
            at(2 + i64::from(i % 20), i64::from(i)),
            None,
        );
    }
    row(
        1,
        "bookmarks",
        "menu".into(),
        Some(1_000_000),
        at(2, 0),
        None,
    );
    for i in 0..300 {
        row(
            1,
            "history",
            format!("hist{i:08}"),
            Some(i64::from(i)),
            at(4, i64::from(i)),
            Some(now + 60 * DAY_MS),
        );
    }
    row(
        1,
        "history",
        "expired0001".into(),
        Some(1),
        at(5, 1),
        Some(now - DAY_MS),
    );
    for (name, count) in [
        ("passwords", 25),
        ("addons", 6),
        ("addresses", 2),
        ("creditcards", 1),
        ("custom-thing", 3),
    ] {
        for i in 0..count {
            row(
                1,
                name,
                format!("{name}-{i:04}"),
                None,
                at(6, i64::from(i)),
                None,
            );
        }
    }
    // Bob: his old uid's data stays behind, his new one has bookmarks.
    for i in 0..10 {
        row(2, "bookmarks", format!("old{i:09}"), None, at(1, i), None);
    }
    for i in 0..50 {
        row(
            3,
            "bookmarks",
            format!("new{i:09}"),
            Some(i),
            at(4, i),
            None,
        );
    }
    // Carol: a long history.
    for i in 0..LARGE {
        let i = i64::try_from(i).unwrap();
        row(
            4,
            "history",
            format!("h{i:011}"),
            Some(i % 1000),
            at(2 + i % 25, i),
            None,
        );
    }
    // Dave deleted his account; his data is his no more.
    row(5, "bookmarks", "gone0000001".into(), None, at(2, 0), None);
    // Alice emptied prefs record by record (day 27), and deleted her
    // forms collection last.
    let tombstones = vec![(1, at(29, 100))];
    let emptied = vec![(1, "prefs".to_owned(), at(27, 0))];
    (accounts, rows, tombstones, emptied)
}

/// What a client must find for each account after the import.
fn expected(
    accounts: Vec<Account>,
    rows: &[Row],
    tombstones: &[(i64, i64)],
    emptied: &[(i64, String, i64)],
    now: i64,
) -> Vec<SourceUser> {
    accounts
        .into_iter()
        .map(|a| {
            let mine: Vec<&Row> = rows.iter().filter(|r| r.uid == a.uid).collect();
            let mut collections: BTreeMap<String, i64> = BTreeMap::new();
            let mut records: BTreeMap<String, Vec<Expected>> = BTreeMap::new();
            for r in &mine {
                let ts = collections
                    .entry(r.collection.clone())
                    .or_insert(r.modified);
                *ts = (*ts).max(r.modified);
                if r.expiry.is_none_or(|e| e > now) {
                    records
                        .entry(r.collection.clone())
                        .or_default()
                        .push(Expected {
                            id: r.id.clone(),
                            modified: r.modified,
                            payload: r.payload.clone(),
                            sortindex: r.sortindex,
                        });
                }
            }
            for (uid, name, when) in emptied {
                if *uid == a.uid {
                    collections.insert(name.clone(), *when);
                }
            }
            for list in records.values_mut() {
                list.sort_by(|x, y| x.id.cmp(&y.id));
            }
            let newest = collections.values().copied().max().unwrap_or(0);
            let deleted = tombstones
                .iter()
                .filter(|(uid, _)| *uid == a.uid)
                .map(|(_, t)| *t)
                .max();
            SourceUser {
                fxa_uid: a.fxa_uid.to_owned(),
                uid: a.uid,
                generation: a.generation,
                client_state: a.client_state,
                live: a.replaced_at.is_none() && a.generation != i64::MAX,
                collections,
                modified: newest.max(deleted.unwrap_or(0)),
                records,
            }
        })
        .collect()
}

const STANDARD: [&str; 13] = [
    "clients",
    "crypto",
    "forms",
    "history",
    "keys",
    "meta",
    "bookmarks",
    "prefs",
    "tabs",
    "passwords",
    "addons",
    "addresses",
    "creditcards",
];

/// The source's collection ids: syncstorage-rs's fixed ones (custom from
/// 101); the Python all-in-one's in the order names were first written.
fn collection_ids(layout: Layout) -> BTreeMap<String, i64> {
    let mut ids = BTreeMap::new();
    match layout {
        Layout::PythonSqlite | Layout::PythonMysql => {
            let order = [
                "meta",
                "crypto",
                "clients",
                "bookmarks",
                "history",
                "tabs",
                "forms",
                "prefs",
                "passwords",
                "addons",
                "addresses",
                "creditcards",
                "custom-thing",
            ];
            for (i, name) in order.iter().enumerate() {
                ids.insert((*name).to_owned(), i64::try_from(i).unwrap() + 1);
            }
        }
        Layout::RustMysql | Layout::RustPostgres => {
            for (i, name) in STANDARD.iter().enumerate() {
                ids.insert((*name).to_owned(), i64::try_from(i).unwrap() + 1);
            }
            ids.insert("custom-thing".to_owned(), 101);
        }
    }
    ids
}

async fn insert_collections(db: &mut AnyConnection, layout: Layout, ids: &BTreeMap<String, i64>) {
    let (table, id) = match layout {
        Layout::PythonSqlite | Layout::PythonMysql => ("collections", "collectionid"),
        Layout::RustMysql => ("collections", "id"),
        Layout::RustPostgres => ("collections", "collection_id"),
    };
    let mut values: Vec<String> = ids
        .iter()
        .map(|(name, n)| format!("({n}, '{name}')"))
        .collect();
    if layout == Layout::RustMysql {
        values.push("(100, '')".into());
    }
    let sql = format!(
        "INSERT INTO {table} ({id}, name) VALUES {}",
        values.join(", ")
    );
    db.execute(sql.as_str()).await.unwrap();
}

async fn insert_users(db: &mut AnyConnection, layout: Layout, accounts: &[Account]) {
    let values: Vec<String> = accounts
        .iter()
        .map(|a| {
            let email = format!("{}@api.accounts.firefox.com", a.fxa_uid);
            let state = hex::encode(a.client_state);
            let replaced = a.replaced_at.map_or("NULL".to_owned(), |t| t.to_string());
            match layout {
                Layout::PythonSqlite => format!(
                    "({}, 'sync-1.5', '{email}', {}, '{state}', {}, {replaced})",
                    a.uid, a.generation, a.created_at
                ),
                Layout::PythonMysql => format!(
                    "({}, 'sync-1.5', '{email}', {}, '{state}', {}, {replaced}, {}, 'https://sync.example.com')",
                    a.uid, a.generation, a.created_at, a.generation
                ),
                Layout::RustMysql | Layout::RustPostgres => format!(
                    "({}, 3, '{email}', {}, '{state}', {}, {replaced}, 1, {})",
                    a.uid, a.generation, a.created_at, a.generation
                ),
            }
        })
        .collect();
    let columns = match layout {
        Layout::PythonSqlite => "uid, service, email, generation, client_state, created_at, replaced_at",
        Layout::PythonMysql => "uid, service, email, generation, client_state, created_at, replaced_at, keys_changed_at, node",
        Layout::RustMysql | Layout::RustPostgres => {
            "uid, service, email, generation, client_state, created_at, replaced_at, nodeid, keys_changed_at"
        }
    };
    if matches!(layout, Layout::RustMysql | Layout::RustPostgres) {
        db.execute("INSERT INTO services (id, service, pattern) VALUES (3, 'sync-1.5', '{node}/1.5/{uid}')").await.unwrap();
        db.execute("INSERT INTO nodes (id, service, node, available, current_load, capacity, downed, backoff) VALUES (1, 3, 'https://sync.example.com', 100, 4, 100000, 0, 0)").await.unwrap();
    }
    let sql = format!("INSERT INTO users ({columns}) VALUES {}", values.join(", "));
    db.execute(sql.as_str()).await.unwrap();
}

async fn insert_rows(
    db: &mut AnyConnection,
    layout: Layout,
    ids: &BTreeMap<String, i64>,
    rows: &[Row],
) {
    let pg_time = |ms: i64| format!("TIMESTAMPTZ 'epoch' + {ms} * INTERVAL '1 millisecond'");
    for chunk in rows.chunks(1_000) {
        let values: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let coll = ids[&r.collection];
                let sortindex = r.sortindex.map_or("NULL".to_owned(), |s| s.to_string());
                let payload = &r.payload;
                match layout {
                    Layout::PythonSqlite | Layout::PythonMysql => {
                        let ttl = r.expiry.map_or(PYTHON_NO_TTL, |e| e / 1000);
                        format!(
                            "({}, {coll}, '{}', {sortindex}, {}, '{payload}', {}, {ttl})",
                            r.uid,
                            r.id,
                            r.modified,
                            payload.len()
                        )
                    }
                    Layout::RustMysql => {
                        // Both forms of "no TTL": a PUT's and a batch commit's.
                        let ttl = r.expiry.unwrap_or(if i % 2 == 0 {
                            r.modified + 2_100_000_000_000
                        } else {
                            2_100_000_000_000
                        });
                        format!(
                            "({}, {coll}, '{}', {sortindex}, '{payload}', {}, {ttl})",
                            r.uid, r.id, r.modified
                        )
                    }
                    Layout::RustPostgres => {
                        let expiry = r.expiry.unwrap_or(r.modified + 2_100_000_000_000);
                        format!(
                            "({}, {coll}, '{}', {sortindex}, '{payload}', {}, {})",
                            r.uid,
                            r.id,
                            pg_time(r.modified),
                            pg_time(expiry)
                        )
                    }
                }
            })
            .collect();
        let (table, columns) = match layout {
            Layout::PythonSqlite | Layout::PythonMysql => (
                "bso",
                "userid, collection, id, sortindex, modified, payload, payload_size, ttl",
            ),
            Layout::RustMysql => (
                "bso",
                "userid, collection, id, sortindex, payload, modified, ttl",
            ),
            Layout::RustPostgres => (
                "bsos",
                "user_id, collection_id, bso_id, sortindex, payload, modified, expiry",
            ),
        };
        if layout == Layout::RustPostgres {
            // The foreign key wants the user's collections first.
            let pairs: std::collections::BTreeSet<(i64, i64)> =
                chunk.iter().map(|r| (r.uid, ids[&r.collection])).collect();
            for (uid, coll) in pairs {
                let pretouch = format!(
                    "INSERT INTO user_collections (user_id, collection_id, modified) VALUES ({uid}, {coll}, '0001-01-01 00:00:00+00') ON CONFLICT DO NOTHING"
                );
                db.execute(pretouch.as_str()).await.unwrap();
            }
        }
        let sql = format!(
            "INSERT INTO {table} ({columns}) VALUES {}",
            values.join(", ")
        );
        db.execute(sql.as_str()).await.unwrap();
    }
}

async fn insert_user_collections(
    db: &mut AnyConnection,
    layout: Layout,
    ids: &BTreeMap<String, i64>,
    users: &[SourceUser],
    tombstones: &[(i64, i64)],
) {
    let pg_time = |ms: i64| format!("TIMESTAMPTZ 'epoch' + {ms} * INTERVAL '1 millisecond'");
    for user in users {
        for (name, modified) in &user.collections {
            let coll = ids[name];
            let uid = user.uid;
            let sql = match layout {
                Layout::PythonSqlite | Layout::PythonMysql => format!(
                    "INSERT INTO user_collections (userid, collection, last_modified) VALUES ({uid}, {coll}, {modified})"
                ),
                Layout::RustMysql => format!(
                    "INSERT INTO user_collections (userid, collection, last_modified, total_bytes, count) VALUES ({uid}, {coll}, {modified}, 0, 0)"
                ),
                Layout::RustPostgres => format!(
                    "INSERT INTO user_collections (user_id, collection_id, modified, count, total_bytes) VALUES ({uid}, {coll}, {}, 0, 0) \
                     ON CONFLICT (user_id, collection_id) DO UPDATE SET modified = EXCLUDED.modified",
                    pg_time(*modified)
                ),
            };
            db.execute(sql.as_str()).await.unwrap();
        }
    }
    // A batch left uncommitted leaves a placeholder row behind (PostgreSQL).
    if layout == Layout::RustPostgres {
        db.execute("INSERT INTO user_collections (user_id, collection_id, modified) VALUES (1, 3, '0001-01-01 00:00:00+00')").await.unwrap();
    }
    for (uid, when) in tombstones {
        let sql = match layout {
            Layout::PythonSqlite | Layout::PythonMysql => continue,
            Layout::RustMysql => format!(
                "INSERT INTO user_collections (userid, collection, last_modified) VALUES ({uid}, 0, {when})"
            ),
            Layout::RustPostgres => format!(
                "INSERT INTO user_collections (user_id, collection_id, modified) VALUES ({uid}, 0, {})",
                pg_time(*when)
            ),
        };
        db.execute(sql.as_str()).await.unwrap();
    }
}

/// The storage schema (the Python server's holds its users too).
fn schema(layout: Layout) -> Vec<&'static str> {
    match layout {
        Layout::PythonSqlite => vec![
            "CREATE TABLE collections (collectionid INTEGER NOT NULL PRIMARY KEY, name VARCHAR(32) NOT NULL UNIQUE)",
            "CREATE TABLE user_collections (userid INTEGER NOT NULL, collection INTEGER NOT NULL, last_modified BIGINT NOT NULL, PRIMARY KEY (userid, collection))",
            "CREATE TABLE bso (userid INTEGER NOT NULL, collection INTEGER NOT NULL, id VARCHAR(64) NOT NULL, sortindex INTEGER, modified BIGINT NOT NULL, payload TEXT NOT NULL, payload_size INTEGER NOT NULL DEFAULT 0, ttl INTEGER NOT NULL DEFAULT 2100000000, PRIMARY KEY (userid, collection, id))",
            "CREATE INDEX bso_ttl_idx ON bso (ttl)",
            "CREATE INDEX bso_usr_col_mod_idx ON bso (userid, collection, modified)",
            "CREATE TABLE batch_uploads (batch BIGINT NOT NULL, userid INTEGER NOT NULL, collection INTEGER NOT NULL, PRIMARY KEY (batch, userid))",
            "CREATE TABLE batch_upload_items (batch BIGINT NOT NULL, userid INTEGER NOT NULL, id VARCHAR(64) NOT NULL, sortindex INTEGER, payload TEXT, payload_size INTEGER, ttl_offset INTEGER, PRIMARY KEY (batch, userid, id))",
            "CREATE TABLE users (uid INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, service VARCHAR(32) NOT NULL, email VARCHAR(255) NOT NULL, generation BIGINT NOT NULL, client_state VARCHAR(32) NOT NULL, created_at BIGINT NOT NULL, replaced_at BIGINT)",
            "CREATE INDEX lookup_idx ON users (email, service, created_at)",
        ],
        Layout::PythonMysql => vec![
            "CREATE TABLE collections (collectionid INT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(32) NOT NULL UNIQUE) ENGINE=InnoDB DEFAULT CHARSET=latin1",
            "CREATE TABLE user_collections (userid INT NOT NULL, collection INT NOT NULL, last_modified BIGINT NOT NULL, PRIMARY KEY (userid, collection)) ENGINE=InnoDB DEFAULT CHARSET=latin1",
            "CREATE TABLE bso (userid INT NOT NULL, collection INT NOT NULL, id VARCHAR(64) NOT NULL, sortindex INT, modified BIGINT NOT NULL, payload MEDIUMTEXT NOT NULL, payload_size INT NOT NULL DEFAULT 0, ttl INT NOT NULL DEFAULT 2100000000, PRIMARY KEY (userid, collection, id), INDEX bso_ttl_idx (ttl), INDEX bso_usr_col_mod_idx (userid, collection, modified)) ENGINE=InnoDB DEFAULT CHARSET=latin1",
            "CREATE TABLE batch_uploads (batch BIGINT NOT NULL, userid INT NOT NULL, collection INT NOT NULL, PRIMARY KEY (batch, userid)) ENGINE=InnoDB DEFAULT CHARSET=latin1",
            "CREATE TABLE batch_upload_items (batch BIGINT NOT NULL, userid INT NOT NULL, id VARCHAR(64) NOT NULL, sortindex INT, payload MEDIUMTEXT, payload_size INT, ttl_offset INT, PRIMARY KEY (batch, userid, id)) ENGINE=InnoDB DEFAULT CHARSET=latin1",
            "CREATE TABLE users (uid INT NOT NULL AUTO_INCREMENT PRIMARY KEY, service VARCHAR(32) NOT NULL, email VARCHAR(255) NOT NULL, generation BIGINT NOT NULL, client_state VARCHAR(32) NOT NULL, created_at BIGINT NOT NULL, replaced_at BIGINT, keys_changed_at BIGINT, node VARCHAR(255), INDEX lookup_idx (email, service, created_at))",
        ],
        Layout::RustMysql => vec![
            "CREATE TABLE bso (userid BIGINT NOT NULL, collection INT NOT NULL, id VARCHAR(64) NOT NULL, sortindex INT, payload MEDIUMTEXT NOT NULL, modified BIGINT NOT NULL, ttl BIGINT NOT NULL, payload_size INT DEFAULT 0, PRIMARY KEY (userid, collection, id), KEY bso_expiry_idx (ttl), KEY bso_usr_col_mod_idx (userid, collection, modified)) ENGINE=InnoDB DEFAULT CHARSET=latin1",
            "CREATE TABLE collections (id INT PRIMARY KEY NOT NULL AUTO_INCREMENT, name VARCHAR(32) UNIQUE NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=latin1",
            "CREATE TABLE user_collections (userid BIGINT NOT NULL, collection INT NOT NULL, last_modified BIGINT NOT NULL, total_bytes BIGINT, count INT, PRIMARY KEY (userid, collection)) ENGINE=InnoDB DEFAULT CHARSET=latin1",
            "CREATE TABLE batch_uploads (batch BIGINT NOT NULL, userid BIGINT NOT NULL, collection INT NOT NULL, PRIMARY KEY (batch, userid)) ENGINE=InnoDB DEFAULT CHARSET=latin1",
            "CREATE TABLE batch_upload_items (batch BIGINT NOT NULL, userid BIGINT NOT NULL, id VARCHAR(64) NOT NULL, sortindex INT DEFAULT NULL, payload MEDIUMTEXT, payload_size INT DEFAULT NULL, ttl_offset INT DEFAULT NULL, PRIMARY KEY (batch, userid, id)) ENGINE=InnoDB DEFAULT CHARSET=latin1",
        ],
        Layout::RustPostgres => vec![
            "CREATE TABLE user_collections (user_id BIGINT NOT NULL, collection_id INTEGER NOT NULL, modified TIMESTAMPTZ NOT NULL, count BIGINT, total_bytes BIGINT, PRIMARY KEY (user_id, collection_id))",
            "CREATE TABLE bsos (user_id BIGINT NOT NULL, collection_id INTEGER NOT NULL, bso_id TEXT NOT NULL, sortindex INTEGER, payload TEXT NOT NULL, modified TIMESTAMPTZ NOT NULL, expiry TIMESTAMPTZ NOT NULL, PRIMARY KEY (user_id, collection_id, bso_id), FOREIGN KEY (user_id, collection_id) REFERENCES user_collections (user_id, collection_id) ON DELETE CASCADE)",
            "CREATE INDEX bsos_modified_idx ON bsos (user_id, collection_id, modified DESC)",
            "CREATE INDEX bsos_expiry_idx ON bsos (user_id, collection_id, expiry)",
            "CREATE TABLE collections (collection_id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name VARCHAR(32) NOT NULL UNIQUE)",
            "CREATE TABLE batches (user_id BIGINT NOT NULL, collection_id INTEGER NOT NULL, batch_id UUID NOT NULL, expiry TIMESTAMPTZ NOT NULL, PRIMARY KEY (user_id, collection_id, batch_id), FOREIGN KEY (user_id, collection_id) REFERENCES user_collections ON DELETE CASCADE)",
            "CREATE TABLE batch_bsos (user_id BIGINT NOT NULL, collection_id INTEGER NOT NULL, batch_id UUID NOT NULL, batch_bso_id TEXT NOT NULL, sortindex INTEGER, payload TEXT, ttl BIGINT, PRIMARY KEY (user_id, collection_id, batch_id, batch_bso_id), FOREIGN KEY (user_id, collection_id, batch_id) REFERENCES batches ON DELETE CASCADE)",
        ],
    }
}

/// syncstorage-rs's tokenserver on MySQL.
fn tokens_schema() -> Vec<&'static str> {
    vec![
        "CREATE TABLE services (id INT NOT NULL AUTO_INCREMENT, service VARCHAR(30) DEFAULT NULL, pattern VARCHAR(128) DEFAULT NULL, PRIMARY KEY (id), UNIQUE KEY service (service))",
        "CREATE TABLE nodes (id BIGINT NOT NULL AUTO_INCREMENT, service INT NOT NULL, node VARCHAR(64) NOT NULL, available INT NOT NULL, current_load INT NOT NULL, capacity INT NOT NULL, downed INT NOT NULL, backoff INT NOT NULL, PRIMARY KEY (id), UNIQUE KEY unique_idx (service, node))",
        "CREATE TABLE users (uid BIGINT NOT NULL AUTO_INCREMENT, service INT NOT NULL, email VARCHAR(255) NOT NULL, generation BIGINT NOT NULL, client_state VARCHAR(32) NOT NULL, created_at BIGINT NOT NULL, replaced_at BIGINT DEFAULT NULL, nodeid BIGINT NOT NULL, keys_changed_at BIGINT DEFAULT NULL, PRIMARY KEY (uid), INDEX lookup_idx (email, service, created_at), INDEX replaced_at_idx (service, replaced_at), INDEX node_idx (nodeid)) ENGINE=InnoDB DEFAULT CHARSET=utf8",
    ]
}

/// syncstorage-rs's tokenserver on PostgreSQL (here in the storage's
/// database: the table names do not meet).
fn tokens_schema_postgres() -> Vec<&'static str> {
    vec![
        "CREATE TABLE services (id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, service VARCHAR(30) UNIQUE, pattern VARCHAR(128))",
        "CREATE TABLE nodes (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, service INTEGER NOT NULL, node VARCHAR(64) NOT NULL, available INTEGER NOT NULL, current_load INTEGER NOT NULL, capacity INTEGER NOT NULL, downed INTEGER NOT NULL, backoff INTEGER NOT NULL, UNIQUE (service, node))",
        "CREATE TABLE users (uid BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, service INTEGER NOT NULL, email VARCHAR(255) NOT NULL, generation BIGINT NOT NULL, client_state VARCHAR(32) NOT NULL, created_at BIGINT NOT NULL, replaced_at BIGINT, nodeid BIGINT NOT NULL, keys_changed_at BIGINT)",
        "CREATE INDEX lookup_idx ON users (email, service, created_at)",
    ]
}
