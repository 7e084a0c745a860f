//! A load generator for the tokenserver: a real server on SQLite, real
//! HTTP, real RS256 JWTs checked against a configured FxA key.
//!
//!     cargo run --release -p integration-tests --example tokengen [clients] [users]
//!
//! Measures (1) first token requests of new users (each allocates a node
//! and writes a record) and (2) token requests of known users (the common
//! case: verify, read, mint). Prints numbers; asserts nothing about speed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::bench::percentile_ms;

use integration_tests::fxa::{access_token, TestKey};
use integration_tests::sync_client::get_token;
use sync_common::db_url::DatabaseUrl;
use sync_common::secret::Secret;
use tokio::net::TcpListener;

fn report(name: &str, mut latencies: Vec<Duration>, elapsed: Duration) {
    latencies.sort();
    println!(
        "{name:<24} {:>6} requests  {:>7.0} req/s  p50 {:>6.1} ms  p95 {:>6.1} ms  p99 {:>6.1} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile_ms(&latencies, 0.50),
        percentile_ms(&latencies, 0.95),
        percentile_ms(&latencies, 0.99),
    );
}

/// `clients` tasks each asking for tokens for their share of `tokens`.
async fn run(
    url: Arc<String>,
    tokens: Arc<Vec<String>>,
    clients: usize,
) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (url, tokens) = (url.clone(), tokens.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for token in tokens.iter().skip(c).step_by(clients) {
                    let start = Instant::now();
                    get_token(&url, token, "1-qqo").await.assert(200);
                    latencies.push(start.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    (all, started.elapsed())
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let clients = args.first().copied().unwrap_or(20);
    let users = args.get(1).copied().unwrap_or(2_000);
    let dir = tempfile::tempdir().unwrap();
    let mut config = tokenserver::Config {
        master_secret: Secret::new("loadgen"),
        ..tokenserver::Config::default()
    };
    let ts = &mut config.tokenserver;
    ts.database_url = DatabaseUrl::new(format!("sqlite:{}", dir.path().join("ts.db").display()));
    ts.fxa_oauth_primary_jwk = Some(serde_json::from_value(TestKey::Primary.jwk()).unwrap());
    ts.init_node_url = Some("https://node.example.com".into());
    ts.init_node_capacity = 1_000_000;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Arc::new(format!(
        "http://127.0.0.1:{}/1.0/sync/1.5",
        listener.local_addr().unwrap().port()
    ));
    tokio::spawn(async move {
        tokenserver::serve(config, listener, std::future::pending())
            .await
            .unwrap()
    });

    let tokens: Arc<Vec<String>> = Arc::new(
        (0..users)
            .map(|u| access_token(&format!("user{u}"), Some(1)))
            .collect(),
    );
    // Warm up (the server finishes starting; connections open).
    get_token(&url, &access_token("warmup", Some(1)), "1-qqo")
        .await
        .assert(200);
    println!("{clients} concurrent clients, {users} users, SQLite");
    let (latencies, elapsed) = run(url.clone(), tokens.clone(), clients).await;
    report("new users (allocate)", latencies, elapsed);
    let (latencies, elapsed) = run(url.clone(), tokens.clone(), clients).await;
    report("known users", latencies, elapsed);
}
