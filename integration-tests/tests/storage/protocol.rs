//! Protocol-wide behaviour: X-Weave-Timestamp, errors for bad paths and
//! methods, body limits, content types, CORS, operational endpoints.

use integration_tests::raw::exchange;
use reqwest::Method;
use serde_json::json;

use crate::support::{ms, Auth, TestServer};

#[tokio::test]
async fn every_response_carries_x_weave_timestamp_with_two_decimals() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let ok = user.get("/info/collections").await;
    let unauthorized = user
        .call(Method::GET, "/info/collections")
        .auth(Auth::None)
        .send()
        .await;
    let not_found = user.get("/storage/bookmarks/missing").await;
    let unknown_path = server.get_raw("/nope").await;
    for response in [&ok, &unauthorized, &not_found, &unknown_path] {
        let ts = response
            .header("x-weave-timestamp")
            .expect("X-Weave-Timestamp");
        ms(&ts);
    }
}

#[tokio::test]
async fn a_writes_weave_timestamp_equals_its_last_modified() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let put = user.put("/storage/tabs/a", json!({"payload": "x"})).await;
    put.assert(200);
    assert_eq!(put.ts("x-weave-timestamp"), put.ts("x-last-modified"));
    assert_eq!(ms(put.text.trim()), put.ts("x-last-modified"));
    let read = user.get("/storage/tabs").await;
    assert!(read.ts("x-weave-timestamp") >= read.ts("x-last-modified"));
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    server.get_raw("/1.5").await.assert_code(404, 0);
    user.get("/info/nonsense").await.assert_code(404, 0);
    user.call(Method::GET, "")
        .raw_path("/1.5/abc/info/collections")
        .send()
        .await
        .assert(404);
    let patch = user.call(Method::PATCH, "/storage/bookmarks").send().await;
    patch.assert_code(405, 0);
    user.call(Method::PUT, "/info/quota")
        .json(&json!({}))
        .send()
        .await
        .assert_code(405, 0);
}

#[tokio::test]
async fn bad_collection_names_are_400_code_13() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.get("/storage/bad%20name").await.assert_code(400, 13);
    user.get(&format!("/storage/{}", "x".repeat(33)))
        .await
        .assert_code(400, 13);
    user.put("/storage/bad$name/id", json!({"payload": "x"}))
        .await
        .assert_code(400, 13);
}

#[tokio::test]
async fn an_oversized_body_is_413_code_17() {
    let server =
        TestServer::spawn_with(|c| c.syncstorage.limits.max_request_bytes = Some(1_000)).await;
    let user = server.user(1);
    let big = json!([{"id": "a", "payload": "x".repeat(2_000)}]);
    user.post("/storage/history", big)
        .await
        .assert_code(413, 17);
    assert_eq!(user.get("/storage/history").await.json(), json!([]));
}

#[tokio::test]
async fn a_malformed_or_truncated_chunked_body_is_400_not_413() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let authority = format!("127.0.0.1:{}", server.port);
    for (what, body) in [
        ("malformed", "zz\r\n[]\r\n0\r\n\r\n"),
        ("truncated", "40\r\n[{\"id\": \"a\""),
    ] {
        let call = user.call(Method::POST, "/storage/history");
        let head = format!(
            "POST /1.5/1/storage/history HTTP/1.1\r\nHost: {authority}\r\n\
             Authorization: {}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n",
            call.authorization().unwrap()
        );
        let answer = exchange(&authority, format!("{head}{body}").as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{what}: {answer}");
        assert!(answer.ends_with("\r\n\r\n0"), "{what}: {answer}");
    }
    assert_eq!(user.get("/storage/history").await.json(), json!([]));
}

#[tokio::test]
async fn unsupported_content_types_are_415() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.call(Method::POST, "/storage/history")
        .body("application/xml", "<bso/>")
        .send()
        .await
        .assert_code(415, 0);
    user.call(Method::PUT, "/storage/history/a")
        .body("image/png", "x")
        .send()
        .await
        .assert_code(415, 0);
    // text/plain is treated as JSON for old clients.
    user.call(Method::PUT, "/storage/history/a")
        .body("text/plain", r#"{"payload": "ok"}"#)
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn unacceptable_accept_is_406() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.call(Method::GET, "/storage/history")
        .header("Accept", "text/html")
        .send()
        .await
        .assert_code(406, 0);
    user.call(Method::GET, "/storage/history")
        .header("Accept", "*/*")
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn cors_preflights_are_answered() {
    let server = TestServer::spawn().await;
    let response = reqwest::Client::new()
        .request(
            Method::OPTIONS,
            format!("{}/1.5/1/storage/bookmarks", server.origin()),
        )
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, x-if-unmodified-since",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
}

#[tokio::test]
async fn operational_endpoints_answer_without_auth() {
    let server = TestServer::spawn().await;
    let heartbeat = server.get_raw("/__heartbeat__").await;
    heartbeat.assert(200);
    assert_eq!(heartbeat.json()["database"], "Ok");
    assert_eq!(heartbeat.json()["status"], "Ok");
    server.get_raw("/__lbheartbeat__").await.assert(200);
    let version = server.get_raw("/__version__").await;
    version.assert(200);
    assert!(version.json()["version"].is_string());
}

#[tokio::test]
async fn operator_backoff_and_alert_headers_are_sent() {
    let server = TestServer::spawn_with(|c| {
        c.syncstorage.backoff_seconds = Some(300);
        c.syncstorage.alert = Some("maintenance tonight".into());
    })
    .await;
    let response = server.user(1).get("/info/collections").await;
    assert_eq!(response.header("x-weave-backoff").as_deref(), Some("300"));
    assert_eq!(
        response.header("x-weave-alert").as_deref(),
        Some("maintenance tonight")
    );
}

#[tokio::test]
async fn a_decommissioned_node_answers_513_with_a_hard_eol_alert() {
    let server = TestServer::spawn_with(|c| c.syncstorage.decommissioned = true).await;
    let response = server.user(1).get("/info/collections").await;
    response.assert_code(513, 0);
    let alert: serde_json::Value =
        serde_json::from_str(&response.header("x-weave-alert").unwrap()).unwrap();
    assert_eq!(alert["code"], "hard-eol");
    server.get_raw("/__heartbeat__").await.assert(200);
}

#[tokio::test]
async fn a_wrong_method_lists_the_allowed_ones() {
    let server = TestServer::spawn().await;
    let response = server
        .user(1)
        .call(Method::PATCH, "/storage/bookmarks/x")
        .send()
        .await;
    response.assert_code(405, 0);
    let allow = response.header("allow").expect("Allow header");
    assert!(allow.contains("PUT") && allow.contains("GET"), "{allow}");
}
