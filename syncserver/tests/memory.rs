//! A collection GET holds a few records in memory, not its page: the
//! `syncserver` process serving 150 MB of records, or four 20 MB pages at
//! once, grows by a small fraction of what it sends (without streaming,
//! by about three times the body: +434 MiB for the 143 MiB page). On the backend `SYNC_TEST_BACKEND`
//! names; memory is read from `/proc`, so this runs on Linux.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use integration_tests::db::TestDb;
use integration_tests::sync_client::SyncClient;
use serde_json::json;
use support::{memory_mib, reset_peak, token, Server, SYNCSERVER};

const LARGE_RECORDS: usize = 60;
const LARGE_PAYLOAD: usize = 2_500_000;
const SMALL_RECORDS: usize = 10_000;
const SMALL_PAYLOAD: usize = 2_000;
/// Each record's serialized start, counted in the bodies.
const MARKER: &[u8] = b"{\"id\":";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_are_served_in_memory_bounded_by_records_not_pages() {
    let db = TestDb::fresh("memory").await;
    let env = [("SYNC_SYNCSTORAGE__DATABASE_URL", db.url.as_str())];
    let mut server = Server::start_with(SYNCSERVER, &env, None).await;
    fill(&users(&server).await).await;
    // A fresh process: memory freed after the uploads cannot hide growth.
    server.stop();
    server.spawn(&env).await;
    let (large, small) = users(&server).await;
    let pid = server.pid();
    let idle = memory_mib(pid, "VmRSS");

    reset_peak(pid);
    let page = large.get_counted("/storage/large?full=1", MARKER).await;
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
    let path = format!("/storage/small?full=1&limit={SMALL_RECORDS}");
    let pages = at_once(&small, &path, 4).await;
    for page in &pages {
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

/// The owners of the large and the small collection.
async fn users(server: &Server) -> (SyncClient, SyncClient) {
    (
        token(&server.url, "large", 1, b"large-keys-00000").await,
        token(&server.url, "small", 1, b"small-keys-00000").await,
    )
}

/// Uploads one record per POST for the large collection (each is nearly a
/// whole POST's worth), a hundred per POST for the small one.
async fn fill((large, small): &(SyncClient, SyncClient)) {
    for i in 0..LARGE_RECORDS {
        let record = json!([{"id": format!("large{i:03}"), "payload": "x".repeat(LARGE_PAYLOAD)}]);
        large.post("/storage/large", &record).await.assert(200);
    }
    for chunk in 0..SMALL_RECORDS / 100 {
        let records: Vec<_> = (0..100)
            .map(|i| json!({"id": format!("small{chunk:03}-{i:02}"), "payload": "y".repeat(SMALL_PAYLOAD)}))
            .collect();
        let reply = small.post("/storage/small", &json!(records)).await;
        assert_eq!(reply.ok()["success"].as_array().unwrap().len(), 100);
    }
}

/// `count` GETs of `path` at once.
async fn at_once(
    user: &SyncClient,
    path: &str,
    count: usize,
) -> Vec<integration_tests::sync_client::Counted> {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (user, path) = (user.clone(), path.to_owned());
            tokio::spawn(async move { user.get_counted(&path, MARKER).await })
        })
        .collect();
    let mut pages = Vec::new();
    for task in tasks {
        pages.push(task.await.unwrap());
    }
    pages
}
