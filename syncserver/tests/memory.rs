//! A collection GET holds a few records in memory, not its page: the
//! `syncserver` process serving 143 MiB of records, or four 20 MB pages at
//! once, grows by a small fraction of what it sends. Without streaming it
//! grew by about three times the body (+434 MiB for the 143 MiB page).
//! Runs on the backend `SYNC_TEST_BACKEND` names; reads memory from
//! `/proc`, so Linux only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use integration_tests::db::TestDb;
use integration_tests::pages::{self, LARGE_PAYLOAD, SMALL_RECORDS};
use support::{memory_mib, reset_peak, Server, SYNCSERVER};

const LARGE_RECORDS: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_are_served_in_memory_bounded_by_records_not_pages() {
    let db = TestDb::fresh("memory").await;
    let env = [("SYNC_SYNCSTORAGE__DATABASE_URL", db.url.as_str())];
    let mut server = Server::start_with(SYNCSERVER, &env, None).await;
    pages::fill(&pages::users(&server).await, LARGE_RECORDS).await;
    // A fresh process: memory freed after the uploads cannot hide growth.
    server.stop();
    server.spawn(&env).await;
    let (large, small) = pages::users(&server).await;
    let pid = server.pid();
    let idle = memory_mib(pid, "VmRSS");

    reset_peak(pid);
    let page = pages::get_large(&large).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.markers, LARGE_RECORDS as u64);
    assert!(page.bytes > (LARGE_RECORDS * LARGE_PAYLOAD) as u64);
    assert_eq!((page.first, page.last), (Some(b'['), Some(b']')));
    let grown = memory_mib(pid, "VmHWM") - idle;
    let sent = page.bytes as f64 / 1_048_576.0;
    eprintln!("idle {idle:.1} MiB; {sent:.0} MiB page: +{grown:.1} MiB");
    assert!(
        grown < 50.0,
        "serving {sent:.0} MiB grew the server by {grown:.0} MiB (idle {idle:.0} MiB)"
    );

    reset_peak(pid);
    for page in pages::get_small_four_at_once(&small).await {
        assert_eq!(page.status, 200);
        assert_eq!(page.markers, SMALL_RECORDS as u64);
    }
    let grown = memory_mib(pid, "VmHWM") - idle;
    eprintln!("four 20 MB pages at once: +{grown:.1} MiB");
    // Without streaming they took about 240 MB.
    assert!(
        grown < 60.0,
        "four 20 MB pages at once grew the server by {grown:.0} MiB (idle {idle:.0} MiB)"
    );
}
