//! A soak of the replay cache: signed requests, each with a new nonce, for
//! a while, printing the process's resident memory as it goes. With nonces
//! forgotten by time it levels off within the skew window and stays flat.
//!
//!     cargo run --release -p integration-tests --example replay_soak [seconds] [redis]
//!
//! `redis` keeps the nonces in the Redis server at 127.0.0.1:6379 instead.
//! Prints numbers; asserts nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/storage/support.rs"]
#[allow(dead_code)]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::TestServer;
use sync_common::db_url::DatabaseUrl;

const CLIENTS: u64 = 16;

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(600);
    let shared = args.next().as_deref() == Some("redis");
    let server = TestServer::spawn_with(|config| {
        if shared {
            config.syncstorage.replay_cache_url = Some(DatabaseUrl::new("redis://127.0.0.1:6379"));
        }
    })
    .await;
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    for uid in 1..=CLIENTS {
        let user = server.user(uid);
        let done = done.clone();
        tokio::spawn(async move {
            while Instant::now() < until {
                user.get("/info/collections").await.assert(200);
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    println!(
        "replay cache: {}",
        if shared { "redis" } else { "in process" }
    );
    let start = Instant::now();
    let mut last = 0;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let total = done.load(Ordering::Relaxed);
        println!(
            "{:>4} s  {:>9} requests  {:>6.0} req/s  RSS {:>6.1} MB",
            start.elapsed().as_secs(),
            total,
            (total - last) as f64 / 30.0,
            rss_mb()
        );
        last = total;
    }
}
