//! How fast `tokenserver node migrate` moves users: a tokenserver and two
//! storage nodes as processes (release binaries), `users` users with
//! `records` bookmarks of 300 bytes each on the first node, then the
//! migration of all of them to the second, timed.
//!
//!     cargo build --release --workspace --bins
//!     cargo run --release -p integration-tests --example migration_bench [users] [records] [backend]
//!
//! `backend`: sqlite (default), postgres or mysql, for both nodes and the
//! tokenserver. Prints numbers; asserts only that every record arrived.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use integration_tests::cluster::Cluster;
use integration_tests::db::TestBackend;
use serde_json::{json, Value};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let users: usize = args.get(1).map_or(1000, |a| a.parse().unwrap());
    let records: usize = args.get(2).map_or(1000, |a| a.parse().unwrap());
    if let Some(backend) = args.get(3) {
        std::env::set_var("SYNC_TEST_BACKEND", backend);
    }
    let backend = TestBackend::from_env();
    let cluster = Cluster::start(&[backend, backend], &[], &[]).await;
    let (from, to) = (cluster.nodes[0].url(), cluster.nodes[1].url());
    cluster.admin(&["node", "update", to, "--downed", "true"]);
    let filled = Instant::now();
    let mut fills = tokio::task::JoinSet::new();
    let clients = clients_of(&cluster, users).await;
    for client in clients.clone() {
        fills.spawn(async move {
            for chunk in 0..records.div_ceil(100) {
                let batch: Vec<Value> = (chunk * 100..((chunk + 1) * 100).min(records))
                    .map(|i| json!({"id": format!("b{i:06}"), "sortindex": i, "payload": "x".repeat(300)}))
                    .collect();
                assert_eq!(client.post("/storage/bookmarks", &json!(batch)).await.status, 200);
            }
        });
        while fills.len() >= 16 {
            fills.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = fills.join_next().await {
        done.unwrap();
    }
    println!(
        "filled {users} users x {records} records on {} in {:.1} s",
        backend.name(),
        filled.elapsed().as_secs_f64()
    );
    cluster.admin(&["node", "update", to, "--downed", "false"]);
    let started = Instant::now();
    let out = cluster.admin(&["node", "migrate", from, to]);
    let secs = started.elapsed().as_secs_f64();
    println!("{}", out.lines().last().unwrap_or(""));
    println!(
        "migration: {users} users, {} records in {secs:.1} s: {:.1} users/s, {:.0} records/s",
        users * records,
        users as f64 / secs,
        (users * records) as f64 / secs
    );
    for (i, _) in clients
        .iter()
        .enumerate()
        .step_by(users.div_ceil(20).max(1))
    {
        let client = cluster.client(&format!("bench{i}")).await;
        assert_eq!(cluster.node_of(&client), 1);
        let counts = client.get("/info/collection_counts").await.json();
        assert_eq!(counts["bookmarks"], records as u64);
    }
}

async fn clients_of(
    cluster: &Cluster,
    users: usize,
) -> Vec<integration_tests::sync_client::SyncClient> {
    let mut clients = Vec::with_capacity(users);
    for i in 0..users {
        clients.push(cluster.client(&format!("bench{i}")).await);
    }
    clients
}
