//! X-If-Modified-Since (304) and X-If-Unmodified-Since (412).

use reqwest::Method;
use serde_json::json;

use crate::support::{bsos, TestServer};

fn secs(ms: u64) -> String {
    format!("{}.{:02}", ms / 1000, (ms % 1000) / 10)
}

#[tokio::test]
async fn if_modified_since_gives_304_when_nothing_changed() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let t = user
        .post("/storage/history", bsos("h", 0..2))
        .await
        .ts("x-last-modified");
    for path in [
        "/storage/history",
        "/storage/history/h0",
        "/info/collections",
    ] {
        let unchanged = user
            .call(Method::GET, path)
            .header("X-If-Modified-Since", secs(t))
            .send()
            .await;
        unchanged.assert(304);
        assert_eq!(unchanged.ts("x-last-modified"), t, "{path}");
        user.call(Method::GET, path)
            .header("X-If-Modified-Since", secs(t - 10))
            .send()
            .await
            .assert(200);
    }
}

#[tokio::test]
async fn if_unmodified_since_refuses_stale_writes_with_412_and_writes_nothing() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let t1 = user
        .post("/storage/history", bsos("a", 0..1))
        .await
        .ts("x-last-modified");
    let t2 = user
        .post("/storage/history", bsos("b", 0..1))
        .await
        .ts("x-last-modified");
    let stale = user
        .call(Method::POST, "/storage/history")
        .header("X-If-Unmodified-Since", secs(t1))
        .json(&bsos("c", 0..1))
        .send()
        .await;
    stale.assert(412);
    assert_eq!(stale.ts("x-last-modified"), t2);
    user.get("/storage/history/c0").await.assert(404);
    user.call(Method::DELETE, "/storage/history")
        .header("X-If-Unmodified-Since", secs(t1))
        .send()
        .await
        .assert(412);
    user.call(Method::POST, "/storage/history")
        .header("X-If-Unmodified-Since", secs(t2))
        .json(&bsos("c", 0..1))
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn put_if_unmodified_since_zero_creates_only_if_absent() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let create = |payload: &'static str| {
        user.call(Method::PUT, "/storage/meta/global")
            .header("X-If-Unmodified-Since", "0")
            .json(&json!({ "payload": payload }))
            .send()
    };
    create("first").await.assert(200);
    create("second").await.assert(412);
    assert_eq!(
        user.get("/storage/meta/global").await.json()["payload"],
        "first"
    );
}

#[tokio::test]
async fn if_unmodified_since_guards_paged_reads() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let t = user
        .post("/storage/history", bsos("h", 0..4))
        .await
        .ts("x-last-modified");
    let page = user.get("/storage/history?limit=2").await;
    let offset = page.header("x-weave-next-offset").unwrap();
    user.post("/storage/history", bsos("new", 0..1))
        .await
        .assert(200);
    user.call(
        Method::GET,
        &format!("/storage/history?limit=2&offset={offset}"),
    )
    .header("X-If-Unmodified-Since", secs(t))
    .send()
    .await
    .assert(412);
}

#[tokio::test]
async fn both_headers_or_a_bad_value_is_400() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.call(Method::GET, "/storage/history")
        .header("X-If-Modified-Since", "1")
        .header("X-If-Unmodified-Since", "1")
        .send()
        .await
        .assert(400);
    for bad in ["soon", "-5", ""] {
        user.call(Method::GET, "/storage/history")
            .header("X-If-Modified-Since", bad)
            .send()
            .await
            .assert(400);
    }
}
