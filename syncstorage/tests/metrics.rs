//! The separate storage node binary serves its metrics on a listener of
//! its own, as the all-in-one does (whose tests cover every metric).

#![allow(clippy::unwrap_used)]

use integration_tests::process::Server;
use integration_tests::prometheus::Scrape;

#[tokio::test]
async fn the_storage_node_serves_its_metrics_on_their_own_listener() {
    let metrics = format!("127.0.0.1:{}", integration_tests::free_port());
    let env = [
        ("SYNC_MASTER_SECRET", "metrics-test-secret"),
        ("SYNC_METRICS_ADDRESS", metrics.as_str()),
    ];
    let server = Server::start_service(env!("CARGO_BIN_EXE_syncstorage"), &env).await;
    let unsigned = reqwest::get(format!("{}/1.5/1/info/collections", server.url))
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    let scrape = Scrape::get(&format!("http://{metrics}")).await;
    let refused = [
        ("http_route", "/1.5/{uid}/info/collections"),
        ("http_response_status_code", "401"),
    ];
    let count = "http_server_request_duration_seconds_count";
    assert_eq!(scrape.sum(count, &refused), 1.0);
    assert_eq!(
        scrape.sum("sync_build_info", &[("service_name", "syncstorage")]),
        1.0
    );
    assert_eq!(scrape.sum("sync_storage_conflicts_total", &[]), 0.0);
    assert!(scrape.types.contains_key("sync_storage_conflicts_total"));
    assert!(scrape.sum("db_client_connection_max", &[]) > 0.0);
    let public = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
}
