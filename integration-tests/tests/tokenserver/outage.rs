//! The tokenserver's database goes away and comes back: token requests get
//! 503 with Retry-After promptly, the heartbeat says so, and service resumes
//! without a restart. A proxy in front of the server plays the outage.

use std::time::{Duration, Instant};

use integration_tests::db::TestBackend;
use integration_tests::proxy::Proxy;
use sync_common::db_url::DatabaseUrl;

use crate::support::TestTokenserver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_and_service_resumes_by_itself() {
    let Some(upstream) = TestBackend::from_env().server_address() else {
        // SQLite is a file inside the process: there is no server to lose.
        return;
    };
    let proxy = Proxy::start(&upstream).await;
    let ts = TestTokenserver::spawn_with(|c| {
        let routed = proxy.route(c.tokenserver.database_url.expose());
        c.tokenserver.database_url = DatabaseUrl::new(routed);
    })
    .await;
    ts.request("before", Some(1), "1-qqo").send().await.ok();

    proxy.cut();
    let during = tokio::time::timeout(
        Duration::from_secs(15),
        ts.request("during", Some(1), "1-qqo").send(),
    )
    .await
    .expect("a token request hung while the database was down");
    during.assert_error(503, "error", "body", "", "Resource is not available");
    assert_eq!(during.header("retry-after").as_deref(), Some("10"));
    let heartbeat = reqwest::get(format!("{}/__heartbeat__", ts.url))
        .await
        .unwrap();
    assert_eq!(heartbeat.status(), 503);

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = ts.request("during", Some(1), "1-qqo").send().await;
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 503, "{}", reply.text);
        assert!(Instant::now() < deadline, "service did not resume");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ts.request("before", Some(1), "1-qqo").send().await.ok();
}
