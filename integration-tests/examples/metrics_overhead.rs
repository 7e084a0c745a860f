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
//! asserts nothing. Wall-clock figures on a shared two-core machine vary by
//! a few percent from run to run; for a repeatable figure, count
//! instructions instead (`valgrind` must be installed):
//!
//!     cargo run --release -p integration-tests --example metrics_overhead instructions
//!
//! runs the server under callgrind, 500 then 2,500 sequential requests of
//! the same mix, with metrics off and on, and prints the instructions the
//! server spent per request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use integration_tests::bench::percentile_ms;
use integration_tests::process::{token, Server};
use integration_tests::sync_client::SyncClient;
use serde_json::json;

const USERS: usize = 50;

#[tokio::main]
async fn main() {
    if std::env::args().nth(1).as_deref() == Some("instructions") {
        return instructions().await;
    }
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let rounds = args.first().copied().unwrap_or(3);
    let seconds = args.get(1).copied().unwrap_or(10);
    let clients = args.get(2).copied().unwrap_or(32) as usize;
    let binary = binary();
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

fn binary() -> String {
    std::env::var("SYNCSERVER").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/syncserver").to_owned()
    })
}

/// Instructions per request, metrics off and on, from the difference of
/// two runs under callgrind (which takes out start-up and shut-down).
async fn instructions() {
    let (few, many) = (500, 2_500);
    for metrics in [false, true] {
        let low = instructions_for(few, metrics).await;
        let high = instructions_for(many, metrics).await;
        let per_request = (high - low) as f64 / f64::from(many - few);
        println!(
            "metrics {}: {per_request:.0} instructions per request",
            if metrics { "on " } else { "off" }
        );
    }
}

/// The server's instructions (callgrind's total) over a run of `requests`.
async fn instructions_for(requests: u32, metrics: bool) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("callgrind.out");
    let wrapper = dir.path().join("syncserver");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={} {} \"$@\"\n",
            out.display(),
            binary()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()
        .unwrap();
    let address = format!("127.0.0.1:{}", integration_tests::free_port());
    let mut env = vec![("SYNC_LOG_LEVEL", "warn")];
    if metrics {
        env.push(("SYNC_METRICS_ADDRESS", address.as_str()));
    }
    let mut server = Server::start_with(wrapper.to_str().unwrap(), &env, None).await;
    let client = token(&server.url, "instructions", 1, &[1; 16]).await;
    let record = json!({"payload": "y".repeat(300)});
    for n in 0..requests {
        if n % 10 == 9 {
            client.put("/storage/tabs/t", &record).await.assert(200);
        } else {
            client.get("/info/collections").await.assert(200);
        }
    }
    if metrics {
        // As a Prometheus scraping every 15 s would, about.
        let _ = reqwest::get(format!("http://{address}/metrics")).await;
    }
    // A clean exit, so that callgrind writes its counts.
    let pid = server.pid().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.exists() || std::fs::metadata(&out).unwrap().len() == 0 {
        assert!(Instant::now() < deadline, "callgrind wrote nothing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.stop();
    let counts = std::fs::read_to_string(&out).unwrap();
    counts
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary: ")
                .or_else(|| l.strip_prefix("totals: "))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("callgrind's total")
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
