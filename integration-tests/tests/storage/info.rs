//! `/info/*`: collections, counts, usage, quota, configuration.

use serde_json::json;

use crate::support::{bsos, ms, TestServer};

#[tokio::test]
async fn info_collections_maps_names_to_two_decimal_timestamps() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    assert_eq!(user.get("/info/collections").await.json(), json!({}));
    let put = user
        .put("/storage/meta/global", json!({"payload": "m"}))
        .await;
    let posted = user.post("/storage/bookmarks", bsos("b", 0..3)).await;
    let info = user.get("/info/collections").await;
    info.assert(200);
    assert_eq!(info.header("x-weave-records").as_deref(), Some("2"));
    // Raw body: numbers with exactly two decimals.
    let meta = ms(put.text.trim());
    let bookmarks = posted.ts("x-last-modified");
    let expected = format!(r#""meta":{}.{:02}"#, meta / 1000, (meta % 1000) / 10);
    assert!(
        info.text.contains(&expected),
        "{} lacks {expected}",
        info.text
    );
    assert_eq!(info.ts("x-last-modified"), bookmarks);
    assert!(bookmarks > meta);
}

#[tokio::test]
async fn counts_and_usage_count_only_live_bsos() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.post("/storage/history", bsos("h", 0..5))
        .await
        .assert(200);
    user.put(
        "/storage/history/gone",
        json!({"payload": "xxxx", "ttl": 0}),
    )
    .await
    .assert(200);
    user.put("/storage/forms/f", json!({"payload": "x".repeat(2048)}))
        .await
        .assert(200);
    let counts = user.get("/info/collection_counts").await.json();
    assert_eq!(counts, json!({"history": 5, "forms": 1}));
    let usage = user.get("/info/collection_usage").await.json();
    assert_eq!(usage["forms"].as_f64(), Some(2.0));
    let history_bytes: usize = (0..5).map(|i| format!("p{i}").len()).sum();
    assert_eq!(
        usage["history"].as_f64(),
        Some(history_bytes as f64 / 1024.0)
    );
    let quota = user.get("/info/quota").await.json();
    let used = quota[0].as_f64().unwrap();
    assert_eq!(used, (history_bytes + 2048) as f64 / 1024.0);
    assert!(quota[1].is_null(), "quota is off by default");
}

#[tokio::test]
async fn configuration_reports_the_configured_limits() {
    let server = TestServer::spawn_with(|c| {
        c.syncstorage.limits.max_post_records = 7;
        c.syncstorage.limits.max_total_bytes = 12_345;
    })
    .await;
    let config = server.user(1).get("/info/configuration").await.json();
    assert_eq!(config["max_post_records"], 7);
    assert_eq!(config["max_total_bytes"], 12_345);
    assert_eq!(config["max_post_bytes"], 2_621_440);
    assert_eq!(config["max_request_bytes"], 2_621_440 + 4_096);
    assert_eq!(config["max_record_payload_bytes"], 2_621_440);
    assert_eq!(config["max_total_records"], 10_000);
}

#[tokio::test]
async fn quotas_are_reported_and_enforced_when_enabled() {
    let server = with_4kb_quota().await;
    let user = server.user(1);
    let first = user
        .put(
            "/storage/history/a",
            json!({"payload": "x".repeat(3 * 1024)}),
        )
        .await;
    first.assert(200);
    assert_eq!(
        first.header("x-weave-quota-remaining").as_deref(),
        Some("1")
    );
    let quota = user.get("/info/quota").await.json();
    assert_eq!(quota, json!([3.0, 4.0]));
    // One write may cross the line; the next is refused.
    user.put(
        "/storage/history/b",
        json!({"payload": "x".repeat(2 * 1024)}),
    )
    .await
    .assert(200);
    user.put("/storage/history/c", json!({"payload": "x"}))
        .await
        .assert_code(400, 14);
    user.post("/storage/history", json!([{"id": "d", "payload": "x"}]))
        .await
        .assert_code(400, 14);
    // Deleting frees space again.
    user.delete("/storage/history").await.assert(200);
    user.put("/storage/history/c", json!({"payload": "x"}))
        .await
        .assert(200);
}

#[tokio::test]
async fn bytes_staged_in_open_batches_count_against_the_quota() {
    let server = with_4kb_quota().await;
    let user = server.user(1);
    let big = json!([{"id": "a", "payload": "x".repeat(5 * 1024)}]);
    let staged = user.post("/storage/history?batch=true", big).await;
    staged.assert(202);
    let batch = staged.json()["batch"].as_str().unwrap().to_owned();
    // Another batch or a plain write cannot slip past the staged bytes...
    user.post(
        "/storage/tabs?batch=true",
        json!([{"id": "t", "payload": "x"}]),
    )
    .await
    .assert_code(400, 14);
    user.put("/storage/tabs/t", json!({"payload": "x"}))
        .await
        .assert_code(400, 14);
    // ...but the batch holding them may still commit (one write may cross).
    user.post(
        &format!("/storage/history?batch={batch}&commit=true"),
        json!([]),
    )
    .await
    .assert(200);
    user.put("/storage/tabs/t", json!({"payload": "x"}))
        .await
        .assert_code(400, 14);
}

async fn with_4kb_quota() -> TestServer {
    TestServer::spawn_with(|c| {
        c.syncstorage.enable_quota = true;
        c.syncstorage.max_quota_limit = 4 * 1024;
    })
    .await
}
