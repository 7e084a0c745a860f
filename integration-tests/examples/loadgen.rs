//! A load generator for the storage node: real server, real HTTP, real HAWK.
//!
//!     cargo run --release -p integration-tests --example loadgen [users] [deep_records]
//!
//! Measures (1) concurrent uploads, (2) concurrent paged reads, and (3) the
//! cost of a page early and late in one large collection (paging must stay
//! O(limit)). Prints numbers; asserts nothing about speed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/storage/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use integration_tests::bench::percentile_ms;

use serde_json::{json, Value};
use support::{Client, TestServer};

const POSTS_PER_USER: usize = 20;
const RECORDS_PER_POST: usize = 100;

fn records(prefix: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"id": format!("{prefix}{i:05}"), "sortindex": i % 100, "payload": "x".repeat(200)}))
            .collect(),
    )
}

fn report(name: &str, mut latencies: Vec<Duration>, elapsed: Duration, unit: usize) {
    latencies.sort();
    println!(
        "{name:<28} {:>6} requests  {:>8.0} req/s  {:>9.0} records/s  p50 {:>6.1} ms  p95 {:>6.1} ms  p99 {:>6.1} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        (latencies.len() * unit) as f64 / elapsed.as_secs_f64(),
        percentile_ms(&latencies, 0.50),
        percentile_ms(&latencies, 0.95),
        percentile_ms(&latencies, 0.99),
    );
}

async fn upload(user: Client) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for post in 0..POSTS_PER_USER {
        let body = records(&format!("p{post}-"), RECORDS_PER_POST);
        let start = Instant::now();
        user.post("/storage/history", body).await.assert(200);
        latencies.push(start.elapsed());
    }
    latencies
}

async fn read_pages(user: Client) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut path = "/storage/history?full=1&sort=index&limit=100".to_owned();
    loop {
        let start = Instant::now();
        let page = user.get(&path).await;
        latencies.push(start.elapsed());
        page.assert(200);
        match page.header("x-weave-next-offset") {
            Some(next) => {
                path = format!("/storage/history?full=1&sort=index&limit=100&offset={next}")
            }
            None => return latencies,
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let users = args.first().copied().unwrap_or(20);
    let deep = args.get(1).copied().unwrap_or(100_000);
    let server = TestServer::spawn().await;
    println!("storage node on SQLite, {users} concurrent users, {RECORDS_PER_POST} records of 200 bytes per POST");

    let start = Instant::now();
    let tasks: Vec<_> = (0..users)
        .map(|u| tokio::spawn(upload(server.user(u as u64 + 1))))
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    report(
        "POST 100 records",
        latencies,
        start.elapsed(),
        RECORDS_PER_POST,
    );

    let start = Instant::now();
    let tasks: Vec<_> = (0..users)
        .map(|u| tokio::spawn(read_pages(server.user(u as u64 + 1))))
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    report("GET page of 100 (index)", latencies, start.elapsed(), 100);

    // One user with `deep` records: first page vs a page near the end.
    let big = server.user(999_999);
    let seed = Instant::now();
    for chunk in 0..deep.div_ceil(RECORDS_PER_POST) {
        big.post(
            "/storage/history",
            records(&format!("d{chunk}-"), RECORDS_PER_POST),
        )
        .await
        .assert(200);
    }
    println!(
        "seeded {deep} records for one user in {:.1} s",
        seed.elapsed().as_secs_f64()
    );
    for sort in ["newest", "oldest", "index"] {
        let mut path = format!("/storage/history?full=1&sort={sort}&limit=100");
        let mut times = Vec::new();
        let walk = Instant::now();
        loop {
            let start = Instant::now();
            let page = big.get(&path).await;
            times.push(start.elapsed());
            match page.header("x-weave-next-offset") {
                Some(next) => {
                    path = format!("/storage/history?full=1&sort={sort}&limit=100&offset={next}")
                }
                None => break,
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let tenth = times.len() / 10;
        let average =
            |slice: &[Duration]| ms(slice.iter().sum::<Duration>()) / slice.len().max(1) as f64;
        println!(
            "sort={sort:<6} {} pages of 100 in {:.1} s: first 10% of pages avg {:.2} ms, last 10% avg {:.2} ms",
            times.len(),
            walk.elapsed().as_secs_f64(),
            average(&times[..tenth.max(1)]),
            average(&times[times.len() - tenth.max(1)..]),
        );
    }
}
