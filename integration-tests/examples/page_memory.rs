//! Memory of a server process serving large collection pages: one GET of a
//! collection of 2.5 MB records (500 MB by default), then four GETs at once
//! of 20 MB pages (10,000 records of 2 KB). Prints the process's resident
//! memory when idle and at its peak during each; asserts nothing.
//!
//!     cargo build --release -p syncserver
//!     cargo run --release -p integration-tests --example page_memory [large_records]
//!
//! Runs `target/release/syncserver` (or `$SYNCSERVER`) on the database
//! `SYNC_TEST_BACKEND` names (SQLite by default).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use integration_tests::db::TestDb;
use integration_tests::process::{memory_mib, reset_peak, token, Server};
use integration_tests::sync_client::SyncClient;
use serde_json::json;

const LARGE_PAYLOAD: usize = 2_500_000;
const SMALL_RECORDS: usize = 10_000;
const SMALL_PAYLOAD: usize = 2_000;
const MARKER: &[u8] = b"{\"id\":";

#[tokio::main]
async fn main() {
    let large_records: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let binary = std::env::var("SYNCSERVER").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/syncserver").to_owned()
    });
    let db = TestDb::fresh("page_memory").await;
    let env = [("SYNC_SYNCSTORAGE__DATABASE_URL", db.url.as_str())];
    let mut server = Server::start_with(&binary, &env, None).await;
    let started = Instant::now();
    fill(&users(&server).await, large_records).await;
    println!(
        "backend {}; stored {large_records} × 2.5 MB and {SMALL_RECORDS} × 2 KB in {:.0?}",
        db.backend.name(),
        started.elapsed()
    );
    server.stop();
    server.spawn(&env).await;
    let (large, small) = users(&server).await;
    let pid = server.pid();
    let idle = memory_mib(pid, "VmRSS");
    println!("idle RSS {idle:.1} MiB");

    reset_peak(pid);
    let started = Instant::now();
    let page = large.get_counted("/storage/large?full=1", MARKER).await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!((page.status, page.markers), (200, large_records as u64));
    let mib = page.bytes as f64 / 1_048_576.0;
    report(&format!("one GET of {mib:.0} MiB"), pid, idle, seconds, mib);

    reset_peak(pid);
    let started = Instant::now();
    let path = format!("/storage/small?full=1&limit={SMALL_RECORDS}");
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (small, path) = (small.clone(), path.clone());
            tokio::spawn(async move { small.get_counted(&path, MARKER).await })
        })
        .collect();
    let mut bytes = 0;
    for task in tasks {
        let page = task.await.unwrap();
        assert_eq!((page.status, page.markers), (200, SMALL_RECORDS as u64));
        bytes += page.bytes;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mib = bytes as f64 / 1_048_576.0;
    report("four 20 MB pages at once", pid, idle, seconds, mib);
}

fn report(what: &str, pid: u32, idle: f64, seconds: f64, mib: f64) {
    let peak = memory_mib(pid, "VmHWM");
    println!(
        "{what:<26} peak RSS {peak:>6.1} MiB (+{:.1} over idle)  {seconds:.2} s  {:.0} MiB/s",
        peak - idle,
        mib / seconds
    );
}

async fn users(server: &Server) -> (SyncClient, SyncClient) {
    (
        token(&server.url, "large", 1, b"large-keys-00000").await,
        token(&server.url, "small", 1, b"small-keys-00000").await,
    )
}

async fn fill((large, small): &(SyncClient, SyncClient), large_records: usize) {
    for i in 0..large_records {
        let record = json!([{"id": format!("large{i:04}"), "payload": "x".repeat(LARGE_PAYLOAD)}]);
        large.post("/storage/large", &record).await.assert(200);
    }
    for chunk in 0..SMALL_RECORDS / 100 {
        let records: Vec<_> = (0..100)
            .map(|i| json!({"id": format!("small{chunk:03}-{i:02}"), "payload": "y".repeat(SMALL_PAYLOAD)}))
            .collect();
        small
            .post("/storage/small", &json!(records))
            .await
            .assert(200);
    }
}
