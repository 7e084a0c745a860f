//! What metrics cost on the hot path: the `syncserver` binary with its
//! metrics listener off, then on (scraped every second, as Prometheus
//! would), alternated, each serving the same load of HAWK-signed requests
//! (nine `GET info/collections` to one `PUT` of a 300-byte record).
//!
//!     cargo build --release -p syncserver
//!     cargo run --release -p integration-tests --example metrics_overhead [rounds] [seconds] [clients]
//!
//! Runs `target/release/syncserver` (or `$SYNCSERVER`) on SQLite. Prints
//! requests per second and latencies per run and the mean difference;
//! asserts nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use integration_tests::bench::percentile_ms;
use integration_tests::process::{token, Server};
use integration_tests::sync_client::SyncClient;
use serde_json::json;

const USERS: usize = 50;

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let rounds = args.first().copied().unwrap_or(3);
    let seconds = args.get(1).copied().unwrap_or(10);
    let clients = args.get(2).copied().unwrap_or(32) as usize;
    let binary = std::env::var("SYNCSERVER").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/syncserver").to_owned()
    });
    let mut rates = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (on, rate) in rates.iter_mut().enumerate() {
            let on = on == 1;
            let per_second = measure(&binary, on, seconds, clients).await;
            println!(
                "round {round} metrics {}: {per_second:.0} req/s",
                if on { "on " } else { "off" }
            );
            rate.push(per_second);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (off, on) = (mean(&rates[0]), mean(&rates[1]));
    println!(
        "mean: off {off:.0} req/s, on {on:.0} req/s: {:+.1} %",
        (on - off) / off * 100.0
    );
}

/// One server, one run of the load; its requests per second.
async fn measure(binary: &str, metrics: bool, seconds: u64, clients: usize) -> f64 {
    let address = format!("127.0.0.1:{}", integration_tests::free_port());
    let mut env = vec![("SYNC_LOG_LEVEL", "warn")];
    if metrics {
        env.push(("SYNC_METRICS_ADDRESS", address.as_str()));
    }
    let server = Server::start_with(binary, &env, None).await;
    let mut users = Vec::new();
    for n in 0..USERS {
        let client = token(&server.url, &format!("overhead-{n}"), 1, &[n as u8; 16]).await;
        client
            .put("/storage/prefs/p", &json!({"payload": "x".repeat(300)}))
            .await
            .assert(200);
        users.push(client);
    }
    let scraper = metrics.then(|| tokio::spawn(scrape_every_second(format!("http://{address}"))));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|i| tokio::spawn(work(users[i % USERS].clone(), until)))
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    if let Some(scraper) = scraper {
        scraper.abort();
    }
    latencies.sort();
    let per_second = latencies.len() as f64 / elapsed.as_secs_f64();
    println!(
        "  {} requests, p50 {:.2} ms, p99 {:.2} ms",
        latencies.len(),
        percentile_ms(&latencies, 0.50),
        percentile_ms(&latencies, 0.99)
    );
    per_second
}

async fn work(client: SyncClient, until: Instant) -> Vec<Duration> {
    let record = json!({"payload": "y".repeat(300)});
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while Instant::now() < until {
        let started = Instant::now();
        if n % 10 == 9 {
            client.put("/storage/tabs/t", &record).await.assert(200);
        } else {
            client.get("/info/collections").await.assert(200);
        }
        latencies.push(started.elapsed());
        n += 1;
    }
    latencies
}

async fn scrape_every_second(url: String) {
    loop {
        let _ = reqwest::get(format!("{url}/metrics")).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
