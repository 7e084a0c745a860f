//! The database is Mozilla's: operators' tools read `services`, `nodes`
//! and `users` with `SELECT *` by position, and an existing Mozilla
//! tokenserver database is adopted as it is.

use integration_tests::db::{TestBackend, TestDb};

use crate::support::{RawConnection, TestTokenserver, DOMAIN, NODE};

/// Mozilla's columns in order, with their PostgreSQL and MySQL types.
const SERVICES: &[(&str, &str, &str)] = &[
    ("id", "integer", "int"),
    ("service", "character varying", "varchar"),
    ("pattern", "character varying", "varchar"),
];
const NODES: &[(&str, &str, &str)] = &[
    ("id", "bigint", "bigint"),
    ("service", "integer", "int"),
    ("node", "character varying", "varchar"),
    ("available", "integer", "int"),
    ("current_load", "integer", "int"),
    ("capacity", "integer", "int"),
    ("downed", "integer", "int"),
    ("backoff", "integer", "int"),
];
const USERS: &[(&str, &str, &str)] = &[
    ("uid", "bigint", "bigint"),
    ("service", "integer", "int"),
    ("email", "character varying", "varchar"),
    ("generation", "bigint", "bigint"),
    ("client_state", "character varying", "varchar"),
    ("created_at", "bigint", "bigint"),
    ("replaced_at", "bigint", "bigint"),
    ("nodeid", "bigint", "bigint"),
    ("keys_changed_at", "bigint", "bigint"),
];

/// `name type` of each column of `table`, in order (SQLite: `name`; its
/// types are affinities, not Mozilla's).
async fn columns(db: &mut RawConnection, backend: TestBackend, table: &str) -> Vec<String> {
    let sql = match backend {
        TestBackend::Sqlite => {
            format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid")
        }
        TestBackend::Postgres => format!(
            "SELECT column_name || ' ' || data_type FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}' \
             ORDER BY ordinal_position"
        ),
        TestBackend::MySql => format!(
            "SELECT CAST(CONCAT(COLUMN_NAME, ' ', DATA_TYPE) AS CHAR) \
             FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}' \
             ORDER BY ORDINAL_POSITION"
        ),
    };
    db.strings(&sql).await
}

/// `name(columns)` of each index of `table` but the primary key, by name.
async fn indexes(db: &mut RawConnection, backend: TestBackend, table: &str) -> Vec<String> {
    let sql = match backend {
        TestBackend::Sqlite => format!(
            "SELECT il.name || '(' || (SELECT group_concat(ii.name, ',') \
             FROM pragma_index_info(il.name) ii) || ')' \
             FROM pragma_index_list('{table}') il WHERE il.origin <> 'pk' ORDER BY il.name"
        ),
        TestBackend::Postgres => format!(
            "SELECT i.relname || '(' || string_agg(a.attname, ',' ORDER BY k.n) || ')' \
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             JOIN pg_class t ON t.oid = x.indrelid \
             CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
             WHERE t.relname = '{table}' AND t.relnamespace = current_schema()::text::regnamespace \
             AND NOT x.indisprimary GROUP BY i.relname ORDER BY i.relname"
        ),
        TestBackend::MySql => format!(
            "SELECT CAST(CONCAT(INDEX_NAME, '(', \
             GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX), ')') AS CHAR) \
             FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}' \
             AND INDEX_NAME <> 'PRIMARY' GROUP BY INDEX_NAME ORDER BY INDEX_NAME"
        ),
    };
    db.strings(&sql).await
}

fn expected(backend: TestBackend, table: &[(&str, &str, &str)]) -> Vec<String> {
    table
        .iter()
        .map(|(name, pg, my)| match backend {
            TestBackend::Sqlite => (*name).to_owned(),
            TestBackend::Postgres => format!("{name} {pg}"),
            TestBackend::MySql => format!("{name} {my}"),
        })
        .collect()
}

#[tokio::test]
async fn the_schema_is_mozillas_column_for_column() {
    let ts = TestTokenserver::spawn().await;
    let backend = ts.backend();
    let mut db = ts.connect_db().await;
    for (table, want) in [("services", SERVICES), ("nodes", NODES), ("users", USERS)] {
        let got = columns(&mut db, backend, table).await;
        assert_eq!(got, expected(backend, want), "columns of {table}");
    }
    let users = indexes(&mut db, backend, "users").await;
    assert_eq!(
        users,
        [
            "lookup_idx(email,service,created_at)",
            "node_idx(nodeid)",
            "replaced_at_idx(service,replaced_at)"
        ]
    );
    let nodes = indexes(&mut db, backend, "nodes").await;
    assert!(
        nodes.iter().any(|i| i.ends_with("(service,node)")),
        "nodes are unique per service: {nodes:?}"
    );
    let services = db
        .strings("SELECT pattern FROM services WHERE service = 'sync-1.5'")
        .await;
    assert_eq!(services, ["{node}/1.5/{uid}"]);
}

/// Mozilla's tables as its own migrations leave them, with a service row
/// whose id is not 1 (Mozilla's ids are looked up by name), a node and a user.
fn mozilla_database(backend: TestBackend) -> Option<&'static str> {
    match backend {
        TestBackend::Sqlite => None,
        TestBackend::Postgres => Some(
            "CREATE TABLE services (id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
               service VARCHAR(30) UNIQUE, pattern VARCHAR(128)); \
             CREATE TABLE nodes (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
               service INTEGER NOT NULL, node VARCHAR(64) NOT NULL, available INTEGER NOT NULL, \
               current_load INTEGER NOT NULL, capacity INTEGER NOT NULL, \
               downed INTEGER NOT NULL, backoff INTEGER NOT NULL, UNIQUE (service, node)); \
             CREATE TABLE users (uid BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
               service INTEGER NOT NULL, email VARCHAR(255) NOT NULL, \
               generation BIGINT NOT NULL, client_state VARCHAR(32) NOT NULL, \
               created_at BIGINT NOT NULL, replaced_at BIGINT, nodeid BIGINT NOT NULL, \
               keys_changed_at BIGINT); \
             CREATE INDEX lookup_idx ON users (email, service, created_at); \
             CREATE INDEX replaced_at_idx ON users (service, replaced_at); \
             CREATE INDEX node_idx ON users (nodeid); \
             INSERT INTO services (id, service, pattern) VALUES (3, 'sync-1.5', '{node}/1.5/{uid}'); \
             INSERT INTO nodes (service, node, available, current_load, capacity, downed, backoff) \
               VALUES (3, 'https://node-1.example.com', 10, 1, 100, 0, 0); \
             INSERT INTO users (uid, service, email, generation, client_state, created_at, \
               replaced_at, nodeid, keys_changed_at) \
               VALUES (4242, 3, 'moz@api.accounts.firefox.com', 5, 'aaaa', 1, NULL, 1, 5)",
        ),
        TestBackend::MySql => Some(
            "CREATE TABLE services (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
               service VARCHAR(30) NULL, pattern VARCHAR(128) NULL, UNIQUE KEY service (service)) \
               ENGINE=InnoDB DEFAULT CHARSET=utf8; \
             CREATE TABLE nodes (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
               service INT NOT NULL, node VARCHAR(64) NOT NULL, available INT NOT NULL, \
               current_load INT NOT NULL, capacity INT NOT NULL, downed INT NOT NULL, \
               backoff INT NOT NULL, UNIQUE KEY unique_idx (service, node)) \
               ENGINE=InnoDB DEFAULT CHARSET=utf8; \
             CREATE TABLE users (uid BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
               service INT NOT NULL, email VARCHAR(255) NOT NULL, generation BIGINT NOT NULL, \
               client_state VARCHAR(32) NOT NULL, created_at BIGINT NOT NULL, \
               replaced_at BIGINT NULL, nodeid BIGINT NOT NULL, keys_changed_at BIGINT NULL, \
               INDEX lookup_idx (email, service, created_at), \
               INDEX replaced_at_idx (service, replaced_at), INDEX node_idx (nodeid)) \
               ENGINE=InnoDB DEFAULT CHARSET=utf8; \
             INSERT INTO services (id, service, pattern) VALUES (3, 'sync-1.5', '{node}/1.5/{uid}'); \
             INSERT INTO nodes (service, node, available, current_load, capacity, downed, backoff) \
               VALUES (3, 'https://node-1.example.com', 10, 1, 100, 0, 0); \
             INSERT INTO users (uid, service, email, generation, client_state, created_at, \
               replaced_at, nodeid, keys_changed_at) \
               VALUES (4242, 3, 'moz@api.accounts.firefox.com', 5, 'aaaa', 1, NULL, 1, 5)",
        ),
    }
}

#[tokio::test]
async fn an_existing_mozilla_database_is_adopted_as_it_is() {
    let db = TestDb::fresh("ts_moz").await;
    let Some(schema) = mozilla_database(db.backend) else {
        // Mozilla's tokenserver has no SQLite backend.
        return;
    };
    let backend = db.backend;
    RawConnection::open(backend, &db.url)
        .await
        .execute(schema)
        .await;
    let ts = TestTokenserver::spawn_on(db, |_| {}).await;
    let known = ts.request("moz", Some(5), "5-qqo").send().await.ok();
    assert_eq!(known["uid"], 4242);
    assert_eq!(known["api_endpoint"], format!("{NODE}/1.5/4242"));
    let new = ts.request("newcomer", Some(1), "1-qqo").send().await.ok();
    assert_ne!(new["uid"], 4242);
    let mut raw = ts.connect_db().await;
    let services = raw.strings("SELECT service FROM services").await;
    assert_eq!(services, ["sync-1.5"], "no second service row");
    let users = raw.strings("SELECT email FROM users ORDER BY email").await;
    assert_eq!(
        users,
        [format!("moz@{DOMAIN}"), format!("newcomer@{DOMAIN}")]
    );
    let nodes = ts.store.nodes().await.unwrap();
    assert_eq!(nodes.len(), 1, "the existing node is used");
    assert_eq!((nodes[0].current_load, nodes[0].available), (2, 9));
}
