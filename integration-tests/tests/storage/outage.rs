//! The database goes away while the node runs, and comes back: requests get
//! 503 with Retry-After promptly (no hang, no 500), the heartbeat says the
//! database is down, and service resumes by itself. A proxy in front of the
//! database server plays the outage, so the shared server keeps running.

use std::time::{Duration, Instant};

use integration_tests::db::TestBackend;
use integration_tests::proxy::Proxy;
use serde_json::json;
use sync_common::db_url::DatabaseUrl;

use crate::support::TestServer;

/// Longer than the pool's connection wait (3 s), far shorter than a hang.
const PROMPT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_gets_503_and_service_resumes_by_itself() {
    let backend = TestBackend::from_env();
    let Some(upstream) = backend.server_address() else {
        // SQLite is a file inside the process: there is no server to lose.
        return;
    };
    let proxy = Proxy::start(&upstream).await;
    let server = TestServer::spawn_with(|c| {
        let routed = proxy.route(c.syncstorage.database_url.expose());
        c.syncstorage.database_url = DatabaseUrl::new(routed);
    })
    .await;
    check_outage_and_recovery(&server, || proxy.cut(), || proxy.restore()).await;
}

/// The same with the real server stopped and started again, by the commands
/// in `SYNC_TEST_DB_STOP` and `SYNC_TEST_DB_START` (e.g. `pg_ctlcluster 15
/// main stop`). It stops a server every other test shares, so it runs only
/// when asked for, alone: see docs/operations.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops the shared database server; run alone with --ignored"]
async fn stopping_the_real_database_server_gets_503_and_service_resumes() {
    let stop = std::env::var("SYNC_TEST_DB_STOP").expect("SYNC_TEST_DB_STOP: the stop command");
    let start = std::env::var("SYNC_TEST_DB_START").expect("SYNC_TEST_DB_START: the start command");
    let run = |command: &str| {
        let status = std::process::Command::new("sh")
            .args(["-c", command])
            .status()
            .unwrap();
        assert!(status.success(), "`{command}` failed");
    };
    let server = TestServer::spawn().await;
    check_outage_and_recovery(&server, || run(&stop), || run(&start)).await;
}

async fn check_outage_and_recovery(
    server: &TestServer,
    outage: impl FnOnce(),
    recovery: impl FnOnce(),
) {
    let user = server.user(5);
    user.put("/storage/tabs/before", json!({"payload": "kept"}))
        .await
        .assert(200);

    outage();
    // Several clients at once, reads and writes: each gets 503 promptly.
    let started = Instant::now();
    let mut calls = Vec::new();
    for i in 0..6 {
        let user = server.user(5);
        calls.push(tokio::spawn(async move {
            if i % 2 == 0 {
                user.get("/storage/tabs/before").await
            } else {
                user.put("/storage/tabs/during", json!({"payload": "x"}))
                    .await
            }
        }));
    }
    for call in calls {
        let response = tokio::time::timeout(PROMPT, call)
            .await
            .expect("a request hung while the database was down")
            .unwrap();
        assert_eq!(response.status, 503, "{}", response.text);
        assert_eq!(response.header("retry-after").as_deref(), Some("10"));
    }
    assert!(started.elapsed() < PROMPT);
    let heartbeat = server.get_raw("/__heartbeat__").await;
    assert_eq!(heartbeat.status, 503);
    assert_eq!(heartbeat.json()["database"], "Err");

    recovery();
    // No restart: the pool reconnects on its own.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = user.get("/storage/tabs/before").await;
        if response.status == 200 {
            assert_eq!(response.json()["payload"], "kept");
            break;
        }
        assert_eq!(response.status, 503, "{}", response.text);
        assert!(Instant::now() < deadline, "service did not resume");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    user.put("/storage/tabs/after", json!({"payload": "y"}))
        .await
        .assert(200);
    let heartbeat = server.get_raw("/__heartbeat__").await;
    assert_eq!(heartbeat.status, 200);
    assert_eq!(heartbeat.json()["database"], "Ok");
}
