//! The separate tokenserver binary serves its metrics on a listener of its
//! own, as the all-in-one does (whose tests cover every metric).

#![allow(clippy::unwrap_used)]

use integration_tests::fxa::{access_claims, TestKey};
use integration_tests::process::Server;
use integration_tests::prometheus::Scrape;

#[tokio::test]
async fn the_tokenserver_serves_its_metrics_on_their_own_listener() {
    let metrics = format!("127.0.0.1:{}", integration_tests::free_port());
    let env = [
        ("SYNC_MASTER_SECRET", "metrics-test-secret"),
        ("SYNC_METRICS_ADDRESS", metrics.as_str()),
        ("SYNC_TOKENSERVER__INIT_NODE_URL", "http://127.0.0.1:1"),
    ];
    let server = Server::start_service(env!("CARGO_BIN_EXE_tokenserver"), &env).await;
    let mut expired = access_claims("standalone-user", Some(1));
    expired["exp"] = serde_json::json!(1);
    let refused = integration_tests::sync_client::get_token(
        &format!("{}/1.0/sync/1.5", server.url),
        &TestKey::Primary.sign("at+jwt", &expired),
        "1-AAAAAAAAAAAAAAAAAAAAAA",
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.text);

    let scrape = Scrape::get(&format!("http://{metrics}")).await;
    let tokens = "sync_tokenserver_token_requests_total";
    assert_eq!(
        scrape.sum(tokens, &[("outcome", "invalid-credentials")]),
        1.0
    );
    assert_eq!(
        scrape.sum("sync_build_info", &[("service_name", "tokenserver")]),
        1.0
    );
    let node = [("node", "http://127.0.0.1:1")];
    assert_eq!(scrape.sum("sync_tokenserver_node_up", &node), 1.0);
    let public = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
}
