//! Many clients writing one user's data at once: no write lost or half
//! applied, every acknowledged write readable, timestamps strictly increasing.

use std::collections::{BTreeMap, HashSet};

use integration_tests::db::TestBackend;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{ms_of, Client, TestServer};

const CLIENTS: usize = 12;
const WRITES_PER_CLIENT: usize = 8;
const RECORDS_PER_WRITE: usize = 5;

/// One acknowledged write: its timestamp and the ids it stored.
struct Ack {
    modified: u64,
    ids: Vec<String>,
}

/// Sends a write, retrying on 409 as clients do; returns the final response.
async fn post_with_retry(user: &Client, path: &str, body: &Value) -> crate::support::Resp {
    for _ in 0..20 {
        let response = user.call(Method::POST, path).json(body).send().await;
        if response.status != 409 {
            return response;
        }
        assert!(response.header("retry-after").is_some());
    }
    panic!("still conflicting after 20 tries");
}

async fn writer(user: Client, client: usize, collection: &'static str) -> Vec<Ack> {
    let mut acks = Vec::new();
    for write in 0..WRITES_PER_CLIENT {
        let ids: Vec<String> = (0..RECORDS_PER_WRITE)
            .map(|r| format!("c{client}w{write}r{r}"))
            .collect();
        let body = Value::Array(
            ids.iter()
                .map(|id| json!({"id": id, "payload": format!("payload of {id}")}))
                .collect(),
        );
        // Every third write goes through a two-request batch.
        let response = if write % 3 == 2 {
            let (first, second) = body.as_array().unwrap().split_at(2);
            let created = post_with_retry(
                &user,
                &format!("/storage/{collection}?batch=true"),
                &json!(first),
            )
            .await;
            created.assert(202);
            let batch = created.json()["batch"].as_str().unwrap().to_owned();
            post_with_retry(
                &user,
                &format!("/storage/{collection}?batch={batch}&commit=true"),
                &json!(second),
            )
            .await
        } else {
            post_with_retry(&user, &format!("/storage/{collection}"), &body).await
        };
        response.assert(200);
        acks.push(Ack {
            modified: response.ts("x-last-modified"),
            ids,
        });
    }
    acks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_lose_nothing_and_timestamps_strictly_increase() {
    let server = TestServer::spawn().await;
    check_concurrent_writers(&[&server]).await;
}

/// Two nodes on one database (as two processes behind a load balancer):
/// the user's writes still serialize, through the database's locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_sharing_a_database_lose_nothing_and_timestamps_strictly_increase() {
    let first = TestServer::spawn().await;
    let second = first.spawn_beside().await;
    check_concurrent_writers(&[&first, &second]).await;
}

/// Clients spread over `servers` race to write one user's collections.
async fn check_concurrent_writers(servers: &[&TestServer]) {
    let server = servers[0];
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        // Each client has its own token, as separate devices would.
        let user = servers[client % servers.len()].user(7);
        let collection = if client % 4 == 0 {
            "bookmarks"
        } else {
            "history"
        };
        tasks.push(tokio::spawn(writer(user, client, collection)));
    }
    let mut acks = Vec::new();
    for task in tasks {
        let client_acks = task.await.unwrap();
        // One client's writes, made one after another, move time forward.
        for pair in client_acks.windows(2) {
            assert!(pair[0].modified < pair[1].modified, "time went back");
        }
        acks.extend(client_acks);
    }
    assert_eq!(acks.len(), CLIENTS * WRITES_PER_CLIENT);

    // Strictly increasing per user: no two writes share a timestamp.
    let stamps: HashSet<u64> = acks.iter().map(|a| a.modified).collect();
    assert_eq!(stamps.len(), acks.len(), "two writes shared a timestamp");

    // Every acknowledged record is readable, whole, with its write's timestamp.
    let user = server.user(7);
    let mut stored: BTreeMap<String, Value> = BTreeMap::new();
    for collection in ["history", "bookmarks"] {
        let all = user
            .get(&format!("/storage/{collection}?full=1"))
            .await
            .json();
        for bso in all.as_array().unwrap() {
            stored.insert(bso["id"].as_str().unwrap().to_owned(), bso.clone());
        }
    }
    assert_eq!(
        stored.len(),
        CLIENTS * WRITES_PER_CLIENT * RECORDS_PER_WRITE
    );
    for ack in &acks {
        for id in &ack.ids {
            let bso = stored
                .get(id)
                .unwrap_or_else(|| panic!("{id} was acknowledged but lost"));
            assert_eq!(bso["payload"], format!("payload of {id}"));
            assert_eq!(ms_of(&bso["modified"]), ack.modified, "{id} half-applied");
        }
    }

    // The storage and collection timestamps are the latest writes.
    let info = user.get("/info/collections").await;
    let latest = acks.iter().map(|a| a.modified).max().unwrap();
    assert_eq!(info.ts("x-last-modified"), latest);
}

#[tokio::test]
async fn a_write_blocked_by_another_writer_gets_409_with_retry_after() {
    let server = TestServer::spawn_with(|c| c.syncstorage.database_busy_timeout_ms = 100).await;
    let user = server.user(1);
    user.put("/storage/tabs/a", json!({"payload": "before"}))
        .await
        .assert(200);

    // Another process holds the user's write lock.
    let other = server.db.hold_user_lock(1).await;

    let blocked = user
        .put("/storage/tabs/a", json!({"payload": "during"}))
        .await;
    blocked.assert_code(409, 0);
    assert_eq!(blocked.header("retry-after").as_deref(), Some("10"));
    // Reads still work while the writer is blocked.
    assert_eq!(
        user.get("/storage/tabs/a").await.json()["payload"],
        "before"
    );
    // The heartbeat tells whether the node can write: SQLite's lock stops
    // every writer; a server's row lock only this user's writes.
    let heartbeat = server.get_raw("/__heartbeat__").await;
    let can_write = server.db.backend != TestBackend::Sqlite;
    assert_eq!(heartbeat.status, if can_write { 200 } else { 503 });
    assert_eq!(
        heartbeat.json()["database"],
        if can_write { "Ok" } else { "Err" }
    );

    other.release().await;
    user.put("/storage/tabs/a", json!({"payload": "after"}))
        .await
        .assert(200);
    assert_eq!(user.get("/storage/tabs/a").await.json()["payload"], "after");
    server.get_raw("/__heartbeat__").await.assert(200);
}

#[tokio::test]
async fn a_request_over_the_deadline_gets_503_with_retry_after() {
    let server = TestServer::spawn_with(|c| {
        c.syncstorage.request_timeout_seconds = 1;
        c.syncstorage.database_busy_timeout_ms = 30_000;
    })
    .await;
    let user = server.user(1);
    user.put("/storage/tabs/a", json!({"payload": "w"}))
        .await
        .assert(200);
    let other = server.db.hold_user_lock(1).await;

    // The write waits on the lock longer than the request may take.
    let slow = user.put("/storage/tabs/a", json!({"payload": "x"})).await;
    slow.assert_code(503, 0);
    assert_eq!(slow.header("retry-after").as_deref(), Some("10"));

    other.release().await;
    user.put("/storage/tabs/a", json!({"payload": "y"}))
        .await
        .assert(200);
}
