//! `/storage/{collection}`: GET with filters and formats, POST, DELETE.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{bsos, ms, ms_of, TestServer};

#[tokio::test]
async fn post_stores_records_and_answers_modified_success_failed() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let response = user.post("/storage/history", bsos("h", 0..3)).await;
    response.assert(200);
    let body = response.json();
    assert_eq!(body["success"], json!(["h0", "h1", "h2"]));
    assert_eq!(body["failed"], json!({}));
    let modified = response.ts("x-last-modified");
    assert!(response.text.contains(&format!(
        "\"modified\":{}.{:02}",
        modified / 1000,
        (modified % 1000) / 10
    )));
    let ids = user.get("/storage/history").await;
    ids.assert(200);
    assert_eq!(ids.header("x-weave-records").as_deref(), Some("3"));
    assert_eq!(ids.ts("x-last-modified"), modified);
    let mut listed: Vec<String> = serde_json::from_value(ids.json()).unwrap();
    listed.sort();
    assert_eq!(listed, ["h0", "h1", "h2"]);
    let full = user.get("/storage/history?full=1&sort=index").await.json();
    assert_eq!(full[0]["id"], "h2");
    assert_eq!(full[0]["payload"], "p2");
    assert_eq!(full[0]["sortindex"], 2);
    assert_eq!(ms_of(&full[0]["modified"]), modified);
}

#[tokio::test]
async fn a_missing_collection_reads_as_an_empty_list() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let response = user.get("/storage/nothing-here").await;
    response.assert(200);
    assert_eq!(response.json(), json!([]));
    assert_eq!(response.header("x-last-modified").as_deref(), Some("0.00"));
}

#[tokio::test]
async fn invalid_items_fail_individually_and_the_rest_are_stored() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let response = user
        .post(
            "/storage/forms",
            json!([
                {"id": "ok", "payload": "x"},
                {"id": "bad-sortindex", "sortindex": "x"},
                {"id": "bad-field", "nope": 1},
                {"id": "bad\tid", "payload": "x"},
                {"id": "bad-ttl", "ttl": -5},
            ]),
        )
        .await;
    response.assert(200);
    let body = response.json();
    assert_eq!(body["success"], json!(["ok"]));
    let failed = body["failed"].as_object().unwrap();
    assert_eq!(failed.len(), 4);
    assert!(failed["bad-field"].as_str().unwrap().contains("nope"));
    assert_eq!(user.get("/storage/forms").await.json(), json!(["ok"]));
}

#[tokio::test]
async fn structurally_bad_posts_are_refused_whole() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    for bad in [
        json!({"id": "not-a-list"}),
        json!([1, 2]),
        json!([{"payload": "no id"}]),
        json!([{"id": "dup"}, {"id": "dup"}]),
    ] {
        user.post("/storage/forms", bad).await.assert_code(400, 8);
    }
    user.call(Method::POST, "/storage/forms")
        .body("application/json", "[{\"id\": ")
        .send()
        .await
        .assert_code(400, 6);
    assert_eq!(user.get("/storage/forms").await.json(), json!([]));
}

#[tokio::test]
async fn records_past_the_post_limits_come_back_as_retry() {
    let server = TestServer::spawn_with(|c| {
        c.syncstorage.limits.max_post_records = 2;
        c.syncstorage.limits.max_post_bytes = 100;
    })
    .await;
    let user = server.user(1);
    let body = user.post("/storage/history", bsos("h", 0..4)).await.json();
    assert_eq!(body["success"], json!(["h0", "h1"]));
    assert_eq!(body["failed"]["h2"], "retry bso");
    assert_eq!(body["failed"]["h3"], "retry bso");
    let big =
        json!([{"id": "a", "payload": "x".repeat(60)}, {"id": "b", "payload": "x".repeat(60)}]);
    let body = user.post("/storage/forms", big).await.json();
    assert_eq!(body["success"], json!(["a"]));
    assert_eq!(body["failed"]["b"], "retry bytes");
}

#[tokio::test]
async fn announced_sizes_over_the_limits_are_400_code_17() {
    let server = TestServer::spawn_with(|c| c.syncstorage.limits.max_post_records = 2).await;
    let user = server.user(1);
    user.call(Method::POST, "/storage/history")
        .header("X-Weave-Records", 3)
        .json(&bsos("h", 0..1))
        .send()
        .await
        .assert_code(400, 17);
    user.call(Method::POST, "/storage/history")
        .header("X-Weave-Bytes", 10_000_000)
        .json(&bsos("h", 0..1))
        .send()
        .await
        .assert_code(400, 17);
    user.call(Method::POST, "/storage/history")
        .header("X-Weave-Records", "many")
        .json(&bsos("h", 0..1))
        .send()
        .await
        .assert(400);
    user.call(Method::POST, "/storage/history")
        .header("X-Weave-Records", 2)
        .json(&bsos("h", 0..2))
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn newlines_in_and_out() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let body = "{\"id\":\"a\",\"payload\":\"line1\\nline2\"}\n{\"id\":\"b\",\"payload\":\"x\"}\n";
    let response = user
        .call(Method::POST, "/storage/clients")
        .body("application/newlines", body)
        .send()
        .await;
    response.assert(200);
    assert_eq!(response.json()["success"], json!(["a", "b"]));
    let listed = user
        .call(Method::GET, "/storage/clients?full=1&sort=oldest")
        .header("Accept", "application/newlines")
        .send()
        .await;
    listed.assert(200);
    assert_eq!(
        listed.header("content-type").as_deref(),
        Some("application/newlines")
    );
    let lines: Vec<Value> = listed
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let a = lines.iter().find(|l| l["id"] == "a").unwrap();
    assert_eq!(a["payload"], "line1\nline2");
}

#[tokio::test]
async fn newer_older_and_ids_filter() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let t1 = user
        .post("/storage/history", bsos("a", 0..2))
        .await
        .ts("x-last-modified");
    let t2 = user
        .post("/storage/history", bsos("b", 0..2))
        .await
        .ts("x-last-modified");
    let t3 = user
        .post("/storage/history", bsos("c", 0..2))
        .await
        .ts("x-last-modified");
    let secs = |ms: u64| format!("{}.{:02}", ms / 1000, (ms % 1000) / 10);
    let ids = |v: Value| {
        let mut ids: Vec<String> = serde_json::from_value(v).unwrap();
        ids.sort();
        ids
    };
    let newer = user
        .get(&format!("/storage/history?newer={}", secs(t1)))
        .await
        .json();
    assert_eq!(ids(newer), ["b0", "b1", "c0", "c1"]);
    let older = user
        .get(&format!("/storage/history?older={}", secs(t3)))
        .await
        .json();
    assert_eq!(ids(older), ["a0", "a1", "b0", "b1"]);
    let between = user
        .get(&format!(
            "/storage/history?newer={}&older={}",
            secs(t1),
            secs(t3)
        ))
        .await
        .json();
    assert_eq!(ids(between), ["b0", "b1"]);
    assert!(t1 < t2 && t2 < t3);
    let picked = user.get("/storage/history?ids=a1,c0,zz").await.json();
    assert_eq!(ids(picked), ["a1", "c0"]);
    let too_many: Vec<String> = (0..101).map(|i| format!("i{i}")).collect();
    user.get(&format!("/storage/history?ids={}", too_many.join(",")))
        .await
        .assert(400);
    user.get("/storage/history?newer=yesterday")
        .await
        .assert(400);
    user.get("/storage/history?sort=random").await.assert(400);
}

#[tokio::test]
async fn delete_collection_removes_it_from_info() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.post("/storage/history", bsos("h", 0..3))
        .await
        .assert(200);
    user.post("/storage/forms", bsos("f", 0..1))
        .await
        .assert(200);
    let deleted = user.delete("/storage/history").await;
    deleted.assert(200);
    let ts = ms(deleted.text.trim());
    assert_eq!(deleted.ts("x-last-modified"), ts);
    assert_eq!(user.get("/storage/history").await.json(), json!([]));
    let info = user.get("/info/collections").await;
    assert!(info.json().get("history").is_none());
    assert!(info.json().get("forms").is_some());
    // The storage as a whole moved forward with the deletion.
    assert_eq!(info.ts("x-last-modified"), ts);
    // Deleting a collection that does not exist is fine.
    user.delete("/storage/never-existed").await.assert(200);
}

#[tokio::test]
async fn delete_ids_removes_only_those_and_bumps_the_collection() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let before = user
        .post("/storage/history", bsos("h", 0..4))
        .await
        .ts("x-last-modified");
    let deleted = user.delete("/storage/history?ids=h0,h2").await;
    deleted.assert(200);
    let ts = ms(deleted.text.trim());
    assert!(ts > before);
    let mut left: Vec<String> =
        serde_json::from_value(user.get("/storage/history").await.json()).unwrap();
    left.sort();
    assert_eq!(left, ["h1", "h3"]);
    assert_eq!(
        ms_of(&user.get("/info/collections").await.json()["history"]),
        ts
    );
}

#[tokio::test]
async fn delete_all_storage_answers_null_and_empties_everything() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.post("/storage/history", bsos("h", 0..3))
        .await
        .assert(200);
    user.put("/storage/meta/global", json!({"payload": "m"}))
        .await
        .assert(200);
    let deleted = user.delete("").await;
    deleted.assert(200);
    assert_eq!(deleted.text.trim(), "null");
    assert_eq!(user.get("/info/collections").await.json(), json!({}));
    user.get("/storage/meta/global").await.assert(404);
    user.put("/storage/meta/global", json!({"payload": "m"}))
        .await
        .assert(200);
    let deleted = user
        .call(Method::DELETE, "/storage")
        .header("X-Confirm-Delete", "1")
        .send()
        .await;
    deleted.assert(200);
    assert_eq!(user.get("/info/collections").await.json(), json!({}));
}
