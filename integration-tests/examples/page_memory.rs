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
use integration_tests::pages::{self, SMALL_RECORDS};
use integration_tests::process::{memory_mib, reset_peak, Server};

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
    pages::fill(&pages::users(&server).await, large_records).await;
    println!(
        "backend {}; stored {large_records} × 2.5 MB and {SMALL_RECORDS} × 2 KB in {:.0?}",
        db.backend.name(),
        started.elapsed()
    );
    server.stop();
    server.spawn(&env).await;
    let (large, small) = pages::users(&server).await;
    let pid = server.pid();
    let idle = memory_mib(pid, "VmRSS");
    println!("idle RSS {idle:.1} MiB");

    reset_peak(pid);
    let started = Instant::now();
    let page = pages::get_large(&large).await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!((page.status, page.markers), (200, large_records as u64));
    let mib = page.bytes as f64 / 1_048_576.0;
    report(&format!("one GET of {mib:.0} MiB"), pid, idle, seconds, mib);

    reset_peak(pid);
    let started = Instant::now();
    let mut bytes = 0;
    for page in pages::get_small_four_at_once(&small).await {
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
