//! Live migration (ADR 0013): users move with their data while they keep
//! syncing, land on the new node and find everything as they left it, so
//! no device uploads again.

use std::time::Duration;

use integration_tests::cluster::{within, Cluster};
use integration_tests::db::TestBackend;
use integration_tests::sync_client::SyncClient;
use serde_json::{json, Value};

const MOVED: Duration = Duration::from_secs(10);

/// What a client can observe of its storage: collection timestamps and
/// every record with its id, payload, sortindex and modified time.
pub(crate) async fn observed(client: &SyncClient) -> Value {
    let info = client.get("/info/collections").await;
    assert_eq!(info.status, 200);
    let mut all = serde_json::Map::new();
    let collections = info.json();
    for name in collections.as_object().unwrap().keys() {
        let records = client
            .get(&format!("/storage/{name}?full=1&sort=index"))
            .await;
        assert_eq!(records.status, 200);
        all.insert(name.clone(), records.json());
    }
    json!({"info": collections, "records": all})
}

/// A user's data as Firefox leaves it: meta/global, crypto/keys, bookmarks
/// with sortindexes, history, and a tab record that expires soon.
pub(crate) async fn fill(client: &SyncClient, records: usize) {
    let meta = json!({"id": "global", "payload": "{\"syncID\":\"abc\",\"storageVersion\":5}"});
    assert_eq!(client.put("/storage/meta/global", &meta).await.status, 200);
    let keys = json!({"id": "keys", "payload": "{\"ciphertext\":\"k\"}"});
    assert_eq!(client.put("/storage/crypto/keys", &keys).await.status, 200);
    for chunk in (0..records).collect::<Vec<_>>().chunks(100) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"id": format!("b{i:05}"), "payload": format!("bookmark {i}"), "sortindex": i}))
            .collect();
        let posted = client.post("/storage/bookmarks", &json!(batch)).await;
        assert_eq!(posted.status, 200);
    }
    let history = json!([{"id": "h1", "payload": "visit"}, {"id": "h2", "payload": "visit 2"}]);
    assert_eq!(client.post("/storage/history", &history).await.status, 200);
    let tab = json!({"id": "t1", "payload": "tab", "ttl": 4});
    assert_eq!(client.put("/storage/tabs/t1", &tab).await.status, 200);
}

async fn migrate_and_follow(cluster: &Cluster, old: &SyncClient, args: &[&str]) -> SyncClient {
    let out = cluster.admin(args);
    assert!(out.contains("migrated"), "{out}");
    println!("{}", out.trim());
    within(MOVED, "the old node refuses the old token", || async {
        old.get("/info/collections").await.status == 401
    })
    .await;
    cluster.client("mover").await
}

async fn moves_with_everything(backends: [TestBackend; 2]) {
    let cluster = Cluster::start(&backends, &[], &[]).await;
    let old = cluster.client("mover").await;
    let stays = cluster.client("stayer").await;
    let from = cluster.node_of(&old);
    let (from_url, to_url) = (
        cluster.nodes[from].url().to_owned(),
        cluster.nodes[1 - from].url().to_owned(),
    );
    fill(&old, 300).await;
    let before = observed(&old).await;
    let last_modified = old
        .get("/storage/bookmarks?limit=1")
        .await
        .header("x-last-modified");
    let args = ["node", "migrate", &from_url, &to_url, "--users", "1"];
    let new = migrate_and_follow(&cluster, &old, &args).await;
    assert_eq!(
        cluster.node_of(&new),
        1 - from,
        "the token is for the new node"
    );
    assert_eq!(new.uid, old.uid, "the same uid, on the new node");
    assert_eq!(
        observed(&new).await,
        before,
        "everything as the client left it"
    );
    let bookmarks = new.get("/storage/bookmarks?limit=1").await;
    assert_eq!(bookmarks.header("x-last-modified"), last_modified);
    // An incremental sync finds nothing new: nothing to download or upload.
    let since = before["info"]["bookmarks"].as_f64().unwrap();
    let newer = new.get(&format!("/storage/bookmarks?newer={since}")).await;
    assert_eq!(newer.json(), json!([]));
    // The expiry came along: the tab record expires on the new node.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(new.get("/storage/tabs/t1").await.status, 404);
    // Writing goes on, after the copied timestamps.
    let written = new
        .put("/storage/bookmarks/after", &json!({"payload": "new"}))
        .await;
    assert_eq!(written.status, 200);
    assert!(written.json().as_f64().unwrap() > since);
    // The other user was not moved.
    assert_eq!(
        cluster.node_of(&cluster.client("stayer").await),
        cluster.node_of(&stays)
    );
    assert_eq!(stays.get("/info/collections").await.status, 200);
}

#[tokio::test]
async fn a_migrated_user_finds_all_their_data_on_the_new_node() {
    let backend = TestBackend::from_env();
    moves_with_everything([backend, backend]).await;
}

#[tokio::test]
async fn users_move_between_backends() {
    let others = match TestBackend::from_env() {
        TestBackend::Sqlite => [TestBackend::Sqlite, TestBackend::Postgres],
        TestBackend::Postgres => [TestBackend::Postgres, TestBackend::MySql],
        TestBackend::MySql => [TestBackend::MySql, TestBackend::Sqlite],
    };
    moves_with_everything(others).await;
}

#[tokio::test]
async fn no_acknowledged_write_is_lost_while_the_user_moves() {
    let backend = TestBackend::from_env();
    let cluster = Cluster::start(&[backend, backend], &[], &[]).await;
    let first = cluster.client("mover").await;
    fill(&first, 2_000).await;
    let from = cluster.node_of(&first);
    let tokenserver = cluster.tokenserver.url.clone();
    // A client writing all along: a new token on 401, a retry on 503.
    let writer = tokio::spawn(async move {
        let mut client = first;
        let mut acknowledged = Vec::new();
        for i in 0..400 {
            let id = format!("w{i:04}");
            loop {
                let reply = client
                    .put(&format!("/storage/history/{id}"), &json!({"payload": id}))
                    .await;
                match reply.status {
                    200 => break,
                    401 => {
                        client =
                            integration_tests::process::token(&tokenserver, "mover", 1, &[7; 16])
                                .await
                    }
                    503 | 409 => tokio::time::sleep(Duration::from_millis(50)).await,
                    other => panic!("a write got {other}"),
                }
            }
            acknowledged.push(id);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (client, acknowledged)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (from_url, to_url) = (
        cluster.nodes[from].url().to_owned(),
        cluster.nodes[1 - from].url().to_owned(),
    );
    cluster.admin(&["node", "migrate", &from_url, &to_url]);
    let (client, acknowledged) = writer.await.unwrap();
    assert_eq!(
        cluster.node_of(&client),
        1 - from,
        "the writer followed the move"
    );
    let stored = client.get("/storage/history?full=1").await.json();
    let stored: Vec<&str> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in &acknowledged {
        assert!(
            stored.contains(&id.as_str()),
            "acknowledged write {id} lost"
        );
    }
    let bookmarks = client.get("/info/collection_counts").await.json();
    assert_eq!(bookmarks["bookmarks"], 2_000);
}

/// Thirty users with data, every one on the first node.
async fn users_on_the_first_node(cluster: &Cluster) -> Vec<String> {
    let to = cluster.nodes[1].url();
    cluster.admin(&["node", "update", to, "--downed", "true"]);
    let users: Vec<String> = (0..30).map(|i| format!("user{i}")).collect();
    for user in &users {
        let client = cluster.client(user).await;
        assert_eq!(cluster.node_of(&client), 0);
        fill(&client, 150).await;
    }
    cluster.admin(&["node", "update", to, "--downed", "false"]);
    users
}

/// Waits until a few users are placed on the second node.
async fn some_moved(cluster: &Cluster) {
    within(MOVED, "users moving", || async {
        cluster
            .admin(&["user", "count", "--node", cluster.nodes[1].url()])
            .trim()
            .parse::<u64>()
            .unwrap()
            >= 3
    })
    .await;
}

/// Waits for the command to give up on the users it cannot move (it must
/// not hang, and must say it failed).
async fn gives_up(run: &mut std::process::Child) {
    within(MOVED * 12, "the migration ends", || {
        let ended = run.try_wait().unwrap().is_some();
        async move { ended }
    })
    .await;
    let status = run.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "the command reports the users it could not move"
    );
}

/// `node migrate` from the first node to the second, slowed down so that
/// a failure lands while users are still to move.
fn slow_migration(cluster: &Cluster) -> std::process::Child {
    let (from, to) = (cluster.nodes[0].url(), cluster.nodes[1].url());
    cluster.admin_spawn(&["node", "migrate", from, to, "--rate", "5"])
}

/// Every user whole on the node their token names; how many had moved.
async fn each_whole_on_one_node(cluster: &Cluster, users: &[String]) -> usize {
    let mut moved = 0;
    for user in users {
        let client = cluster.client(user).await;
        moved += cluster.node_of(&client);
        assert_whole(&client, user).await;
    }
    assert!(
        moved < users.len(),
        "the command finished before the failure"
    );
    moved
}

/// A re-run moves every user, whole.
async fn a_rerun_finishes(cluster: &Cluster, users: &[String]) {
    cluster.admin(&[
        "node",
        "migrate",
        cluster.nodes[0].url(),
        cluster.nodes[1].url(),
    ]);
    for user in users {
        let client = cluster.client(user).await;
        assert_eq!(
            cluster.node_of(&client),
            1,
            "{user} was moved by the re-run"
        );
        assert_whole(&client, user).await;
    }
}

/// What goes wrong while a migration runs.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// The command itself is killed with SIGKILL.
    CommandKilled,
    /// A node (0 the source, 1 the target) is killed, then restarted.
    NodeKilled(usize),
    /// The target's database is cut off, then back.
    TargetDatabaseOut,
}

/// Thirty users migrate until `failure` strikes; then each is whole on
/// one node, and a re-run moves them all.
async fn survives(failure: Failure) {
    let backend = TestBackend::from_env();
    // A database can be cut off alone on PostgreSQL.
    let target = match failure {
        Failure::TargetDatabaseOut => TestBackend::Postgres,
        _ => backend,
    };
    let mut cluster = Cluster::start(&[backend, target], &[], &[]).await;
    let users = users_on_the_first_node(&cluster).await;
    let mut run = slow_migration(&cluster);
    some_moved(&cluster).await;
    match failure {
        Failure::CommandKilled => {
            run.kill().unwrap(); // SIGKILL
            run.wait().unwrap();
        }
        Failure::NodeKilled(i) => {
            cluster.nodes[i].kill();
            gives_up(&mut run).await;
            cluster.nodes[i].restart().await;
        }
        Failure::TargetDatabaseOut => {
            cluster.nodes[1].db.cut_off(true).await;
            gives_up(&mut run).await;
            cluster.nodes[1].db.cut_off(false).await;
        }
    }
    let moved = each_whole_on_one_node(&cluster, &users).await;
    println!("{failure:?}: {moved} of {} users had moved", users.len());
    a_rerun_finishes(&cluster, &users).await;
}

#[tokio::test]
async fn a_migration_killed_anywhere_leaves_each_user_on_one_node_and_resumes() {
    survives(Failure::CommandKilled).await;
}

#[tokio::test]
async fn a_node_killed_mid_migration_leaves_each_user_on_one_node_and_a_rerun_finishes() {
    survives(Failure::NodeKilled(1)).await;
    survives(Failure::NodeKilled(0)).await;
}

#[tokio::test]
async fn a_database_outage_mid_migration_leaves_each_user_on_one_node_and_a_rerun_finishes() {
    survives(Failure::TargetDatabaseOut).await;
}

/// The user's node serves all of their data.
async fn assert_whole(client: &SyncClient, user: &str) {
    let counts = client.get("/info/collection_counts").await;
    assert_eq!(counts.status, 200, "{user}");
    let counts = counts.json();
    assert_eq!(counts["bookmarks"], 150, "{user}: {counts}");
    assert_eq!(counts["meta"], 1, "{user}: {counts}");
    assert_eq!(counts["history"], 2, "{user}: {counts}");
}

#[tokio::test]
async fn a_node_is_never_migrated_onto_itself_or_onto_a_downed_node() {
    let backend = TestBackend::from_env();
    let cluster = Cluster::start(&[backend, backend], &[], &[]).await;
    let client = cluster.client("careful").await;
    fill(&client, 1_200).await;
    let from = cluster.nodes[cluster.node_of(&client)].url().to_owned();
    let other = cluster
        .nodes
        .iter()
        .find(|n| n.url() != from)
        .unwrap()
        .url()
        .to_owned();
    let (ok, out) = cluster.admin_run(&["node", "migrate", &from, &from]);
    assert!(!ok && out.contains("both source and target"), "{out}");
    cluster.admin(&["node", "update", &other, "--downed", "true"]);
    let (ok, out) = cluster.admin_run(&["node", "migrate", &from, &other]);
    assert!(!ok && out.contains("is down"), "{out}");
    // Nothing was touched.
    let counts = client.get("/info/collection_counts").await.json();
    assert_eq!(counts["bookmarks"], 1_200);
}
