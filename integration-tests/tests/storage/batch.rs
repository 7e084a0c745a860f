//! Multi-request batches: staged uploads that become visible atomically.

use reqwest::Method;
use serde_json::json;

use crate::support::{bsos, ms, ms_of, TestServer};

#[tokio::test]
async fn a_batch_is_invisible_until_committed_then_shares_one_timestamp() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let before = user
        .post("/storage/history", bsos("old", 0..1))
        .await
        .ts("x-last-modified");
    let created = user
        .post("/storage/history?batch=true", bsos("a", 0..3))
        .await;
    created.assert(202);
    let batch = created.json()["batch"].as_str().unwrap().to_owned();
    assert_eq!(created.json()["success"], json!(["a0", "a1", "a2"]));
    assert_eq!(created.ts("x-last-modified"), before);

    let appended = user
        .post(&format!("/storage/history?batch={batch}"), bsos("b", 0..2))
        .await;
    appended.assert(202);
    assert_eq!(appended.json()["batch"], batch.as_str());
    assert_eq!(
        appended.ts("x-last-modified"),
        before,
        "appends do not modify"
    );
    assert_eq!(user.get("/storage/history").await.json(), json!(["old0"]));

    let committed = user
        .post(
            &format!("/storage/history?batch={batch}&commit=true"),
            bsos("c", 0..1),
        )
        .await;
    committed.assert(200);
    let body = committed.json();
    assert!(body.get("batch").is_none());
    assert_eq!(
        body["success"],
        json!(["c0"]),
        "success lists this request's ids"
    );
    let modified = committed.ts("x-last-modified");
    assert_eq!(ms_of(&body["modified"]), modified);
    assert!(modified > before);

    let all = user.get("/storage/history?full=1").await.json();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 7);
    for bso in all.iter().filter(|b| b["id"] != "old0") {
        assert_eq!(ms_of(&bso["modified"]), modified, "{bso}");
    }
    // A committed batch is gone.
    user.post(&format!("/storage/history?batch={batch}"), bsos("d", 0..1))
        .await
        .assert_code(400, 0);
}

#[tokio::test]
async fn later_appends_of_an_id_update_earlier_ones() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let batch = user
        .post(
            "/storage/bookmarks?batch=true",
            json!([{"id": "x", "payload": "v1", "sortindex": 1}]),
        )
        .await
        .json()["batch"]
        .as_str()
        .unwrap()
        .to_owned();
    user.post(
        &format!("/storage/bookmarks?batch={batch}&commit=true"),
        json!([{"id": "x", "payload": "v2"}]),
    )
    .await
    .assert(200);
    let bso = user.get("/storage/bookmarks/x").await.json();
    assert_eq!(bso["payload"], "v2");
    assert_eq!(bso["sortindex"], 1);
}

#[tokio::test]
async fn batch_true_with_commit_is_a_plain_post() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let response = user
        .post("/storage/history?batch=true&commit=true", bsos("h", 0..2))
        .await;
    response.assert(200);
    assert!(response.json().get("batch").is_none());
    assert_eq!(
        ms_of(&response.json()["modified"]),
        response.ts("x-last-modified")
    );
    assert_eq!(
        user.get("/info/collection_counts").await.json()["history"],
        2
    );
}

#[tokio::test]
async fn unknown_foreign_and_malformed_batches_are_400() {
    let server = TestServer::spawn().await;
    let alice = server.user(1);
    let bob = server.user(2);
    let batch = alice
        .post("/storage/history?batch=true", bsos("a", 0..1))
        .await
        .json()["batch"]
        .as_str()
        .unwrap()
        .to_owned();
    bob.post(
        &format!("/storage/history?batch={batch}&commit=true"),
        bsos("b", 0..1),
    )
    .await
    .assert_code(400, 0);
    alice
        .post(&format!("/storage/forms?batch={batch}"), bsos("b", 0..1))
        .await
        .assert_code(400, 0);
    alice
        .post(
            "/storage/history?batch=00000000000000000000000000000000",
            bsos("b", 0..1),
        )
        .await
        .assert_code(400, 0);
    alice
        .post("/storage/history?batch=not%20an%20id", bsos("b", 0..1))
        .await
        .assert_code(400, 0);
    alice
        .post("/storage/history?commit=true", bsos("b", 0..1))
        .await
        .assert_code(400, 0);
    alice
        .post(
            &format!("/storage/history?batch={batch}&commit=maybe"),
            bsos("b", 0..1),
        )
        .await
        .assert_code(400, 0);
    // Alice's batch survived Bob's attempt.
    alice
        .post(
            &format!("/storage/history?batch={batch}&commit=true"),
            json!([]),
        )
        .await
        .assert(200);
    assert_eq!(alice.get("/storage/history").await.json(), json!(["a0"]));
    assert_eq!(bob.get("/storage/history").await.json(), json!([]));
}

#[tokio::test]
async fn a_commit_refused_by_its_precondition_applies_nothing() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let start = user.post("/storage/history?batch=true", json!([])).await;
    let batch = start.json()["batch"].as_str().unwrap().to_owned();
    let since = start.header("x-last-modified").unwrap();
    user.post(&format!("/storage/history?batch={batch}"), bsos("a", 0..50))
        .await
        .assert(202);
    // Another client writes meanwhile.
    user.post("/storage/history", bsos("other", 0..1))
        .await
        .assert(200);
    user.call(
        Method::POST,
        &format!("/storage/history?batch={batch}&commit=true"),
    )
    .header("X-If-Unmodified-Since", since)
    .json(&bsos("last", 0..1))
    .send()
    .await
    .assert(412);
    assert_eq!(user.get("/storage/history").await.json(), json!(["other0"]));
}

#[tokio::test]
async fn batch_totals_are_limited() {
    let server = TestServer::spawn_with(|c| c.syncstorage.limits.max_total_records = 3).await;
    let user = server.user(1);
    user.call(Method::POST, "/storage/history?batch=true")
        .header("X-Weave-Total-Records", 4)
        .json(&json!([]))
        .send()
        .await
        .assert_code(400, 17);
    user.call(Method::POST, "/storage/history?batch=true")
        .header("X-Weave-Total-Bytes", "lots")
        .json(&json!([]))
        .send()
        .await
        .assert_code(400, 1);
    let batch = user
        .post("/storage/history?batch=true", bsos("a", 0..2))
        .await
        .json()["batch"]
        .as_str()
        .unwrap()
        .to_owned();
    user.post(&format!("/storage/history?batch={batch}"), bsos("b", 0..2))
        .await
        .assert_code(400, 17);
    let committed = user
        .post(
            &format!("/storage/history?batch={batch}&commit=true"),
            bsos("c", 0..1),
        )
        .await;
    committed.assert(200);
    assert_eq!(
        user.get("/info/collection_counts").await.json()["history"],
        3
    );
    assert!(ms(&committed.header("x-last-modified").unwrap()) > 0);
}

#[tokio::test]
async fn a_committed_ttl_counts_from_the_commit() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let batch = user
        .post(
            "/storage/tabs?batch=true",
            json!([{"id": "t", "payload": "x", "ttl": 3600}]),
        )
        .await
        .json()["batch"]
        .as_str()
        .unwrap()
        .to_owned();
    user.post(
        &format!("/storage/tabs?batch={batch}&commit=true"),
        json!([]),
    )
    .await
    .assert(200);
    user.get("/storage/tabs/t").await.assert(200);
}

#[tokio::test]
async fn opening_too_many_batches_forgets_the_oldest() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let mut ids = Vec::new();
    for _ in 0..33 {
        let opened = user
            .post("/storage/history?batch=true", bsos("a", 0..1))
            .await;
        opened.assert(202);
        ids.push(opened.json()["batch"].as_str().unwrap().to_owned());
    }
    // 32 open batches are kept; the first one opened is gone.
    user.post(
        &format!("/storage/history?batch={}", ids[0]),
        bsos("b", 0..1),
    )
    .await
    .assert_code(400, 0);
    for id in &ids[1..] {
        user.post(&format!("/storage/history?batch={id}"), bsos("b", 0..1))
            .await
            .assert(202);
    }
}

#[tokio::test]
async fn a_newlines_commit_of_a_blank_line_or_a_non_record_is_400() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    for body in ["\n", "{}", "[]"] {
        let created = user
            .post("/storage/history?batch=true", bsos("a", 0..1))
            .await;
        let batch = created.json()["batch"].as_str().unwrap().to_owned();
        let commit = user
            .call(
                Method::POST,
                &format!("/storage/history?batch={batch}&commit=true"),
            )
            .body("application/newlines", body)
            .send()
            .await;
        assert_eq!(commit.status, 400, "{body:?}: {}", commit.text);
    }
    assert_eq!(user.get("/storage/history").await.json(), json!([]));
    // An empty newlines body, or `[]` in JSON, commits what is staged.
    for (content_type, body, id) in [
        ("application/newlines", "", "x"),
        ("application/json", "[]", "y"),
    ] {
        let created = user
            .post("/storage/history?batch=true", bsos(id, 0..1))
            .await;
        let batch = created.json()["batch"].as_str().unwrap().to_owned();
        user.call(
            Method::POST,
            &format!("/storage/history?batch={batch}&commit=true"),
        )
        .body(content_type, body)
        .send()
        .await
        .assert(200);
    }
    assert_eq!(
        user.get("/storage/history?sort=oldest").await.json(),
        json!(["x0", "y0"])
    );
}
