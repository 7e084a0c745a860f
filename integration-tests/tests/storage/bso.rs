//! `/storage/{collection}/{id}`: GET, PUT, DELETE of one BSO.

use reqwest::Method;
use serde_json::json;

use crate::support::{ms, TestServer};

#[tokio::test]
async fn put_then_get_returns_the_bso_without_ttl() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let put = user
        .put(
            "/storage/bookmarks/abc",
            json!({"payload": "hello", "sortindex": 42, "ttl": 3600}),
        )
        .await;
    put.assert(200);
    let modified = ms(put.text.trim());
    assert_eq!(put.ts("x-last-modified"), modified);
    let get = user.get("/storage/bookmarks/abc").await;
    get.assert(200);
    assert_eq!(get.ts("x-last-modified"), modified);
    let bso = get.json();
    assert_eq!(bso["id"], "abc");
    assert_eq!(bso["payload"], "hello");
    assert_eq!(bso["sortindex"], 42);
    assert!(bso.get("ttl").is_none() && bso.get("expiry").is_none());
    assert!(get
        .text
        .contains(&format!("\"modified\":{}", put.text.trim())));
}

#[tokio::test]
async fn a_missing_bso_is_404_with_body_0() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.get("/storage/bookmarks/nope")
        .await
        .assert_code(404, 0);
    user.delete("/storage/bookmarks/nope")
        .await
        .assert_code(404, 0);
}

#[tokio::test]
async fn put_updates_only_the_fields_it_sends_and_null_resets() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.put(
        "/storage/prefs/p",
        json!({"payload": "one", "sortindex": 5}),
    )
    .await
    .assert(200);
    let first = user.get("/storage/prefs/p").await.json();
    // A ttl-only touch keeps payload, sortindex and modified.
    user.put("/storage/prefs/p", json!({"ttl": 1000}))
        .await
        .assert(200);
    let touched = user.get("/storage/prefs/p").await.json();
    assert_eq!(touched["payload"], "one");
    assert_eq!(touched["sortindex"], 5);
    assert_eq!(touched["modified"], first["modified"]);
    // Payload only: sortindex kept.
    user.put("/storage/prefs/p", json!({"payload": "two"}))
        .await
        .assert(200);
    let updated = user.get("/storage/prefs/p").await.json();
    assert_eq!(updated["payload"], "two");
    assert_eq!(updated["sortindex"], 5);
    // Null resets to the default (no sortindex).
    user.put("/storage/prefs/p", json!({"sortindex": null}))
        .await
        .assert(200);
    let reset = user.get("/storage/prefs/p").await.json();
    assert!(reset.get("sortindex").is_none());
    assert_eq!(reset["payload"], "two");
}

#[tokio::test]
async fn a_new_bso_without_payload_gets_an_empty_one() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.put("/storage/prefs/p", json!({"sortindex": 1}))
        .await
        .assert(200);
    assert_eq!(user.get("/storage/prefs/p").await.json()["payload"], "");
}

#[tokio::test]
async fn invalid_bsos_are_400_code_8() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    for bad in [
        json!({"payload": 5}),
        json!({"sortindex": "high"}),
        json!({"sortindex": 1_000_000_000}),
        json!({"ttl": -1}),
        json!({"ttl": 1.5}),
        json!({"unknown": true}),
        json!({"id": "other", "payload": "x"}),
        json!(["not", "an", "object"]),
    ] {
        user.put("/storage/prefs/p", bad).await.assert_code(400, 8);
    }
    user.call(Method::PUT, "/storage/prefs/p")
        .body("application/json", "{not json")
        .send()
        .await
        .assert_code(400, 6);
    user.get("/storage/prefs/p").await.assert(404);
}

#[tokio::test]
async fn bad_bso_ids_in_the_path_are_400_code_8() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let long = "x".repeat(65);
    user.get(&format!("/storage/prefs/{long}"))
        .await
        .assert_code(400, 8);
    user.get("/storage/prefs/%C3%A9").await.assert_code(400, 8);
    user.put("/storage/prefs/tab%09id", json!({"payload": "x"}))
        .await
        .assert_code(400, 8);
}

#[tokio::test]
async fn ids_with_url_special_characters_round_trip() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.put("/storage/prefs/a%2Fb%3Fc%20d", json!({"payload": "odd"}))
        .await
        .assert(200);
    let bso = user.get("/storage/prefs/a%2Fb%3Fc%20d").await.json();
    assert_eq!(bso["id"], "a/b?c d");
}

#[tokio::test]
async fn a_payload_over_the_record_limit_is_refused() {
    let server =
        TestServer::spawn_with(|c| c.syncstorage.limits.max_record_payload_bytes = 10).await;
    let user = server.user(1);
    user.put("/storage/prefs/p", json!({"payload": "x".repeat(11)}))
        .await
        .assert_code(400, 8);
    user.put("/storage/prefs/p", json!({"payload": "x".repeat(10)}))
        .await
        .assert(200);
}

#[tokio::test]
async fn delete_returns_modified_and_removes_the_bso() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.put("/storage/tabs/t", json!({"payload": "x"}))
        .await
        .assert(200);
    let deleted = user.delete("/storage/tabs/t").await;
    deleted.assert(200);
    let modified = deleted.json()["modified"].clone();
    assert!(deleted
        .text
        .contains(&deleted.header("x-last-modified").unwrap()));
    assert!(modified.is_number());
    user.get("/storage/tabs/t").await.assert(404);
    // The collection itself still exists with the deletion's timestamp.
    let info = user.get("/info/collections").await.json();
    assert_eq!(info["tabs"], modified);
}

#[tokio::test]
async fn a_bso_with_an_elapsed_ttl_is_invisible_and_can_be_rewritten() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.put(
        "/storage/tabs/t",
        json!({"payload": "old", "sortindex": 3, "ttl": 0}),
    )
    .await
    .assert(200);
    user.get("/storage/tabs/t").await.assert(404);
    assert_eq!(user.get("/storage/tabs").await.json(), json!([]));
    assert_eq!(user.get("/info/collection_counts").await.json(), json!({}));
    // Rewriting an expired BSO starts from defaults, not from the old row.
    user.put("/storage/tabs/t", json!({"ttl": 100}))
        .await
        .assert(200);
    let bso = user.get("/storage/tabs/t").await.json();
    assert_eq!(bso["payload"], "");
    assert!(bso.get("sortindex").is_none());
}

#[tokio::test]
async fn expired_rows_are_purged_from_the_database() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.put("/storage/tabs/expired", json!({"payload": "x", "ttl": 0}))
        .await
        .assert(200);
    user.put("/storage/tabs/live", json!({"payload": "y"}))
        .await
        .assert(200);
    let store = server.store().await;
    let removed = syncstorage::purge::purge_all(store.as_ref(), 1)
        .await
        .unwrap();
    assert_eq!(removed.rows(), 1);
    assert_eq!(server.db.count("SELECT COUNT(*) FROM bsos").await, 1);
    let live = "SELECT COUNT(*) FROM bsos WHERE id = 'live'";
    assert_eq!(server.db.count(live).await, 1);
}

#[tokio::test]
async fn abandoned_batches_are_purged_with_their_items_in_chunks() {
    let server = TestServer::spawn_with(|c| c.syncstorage.batch_ttl_seconds = 0).await;
    let user = server.user(1);
    for _ in 0..3 {
        user.post(
            "/storage/history?batch=true",
            crate::support::bsos("a", 0..2),
        )
        .await
        .assert(202);
    }
    assert_eq!(server.db.count("SELECT COUNT(*) FROM batch_items").await, 6);
    let store = server.store().await;
    // At most one item and one emptied batch per step: 6 items and
    // 3 batches go in bounded steps.
    assert_eq!(store.purge_expired(1).await.unwrap().rows(), 1);
    assert_eq!(server.db.count("SELECT COUNT(*) FROM batch_items").await, 5);
    assert_eq!(
        syncstorage::purge::purge_all(store.as_ref(), 1)
            .await
            .unwrap()
            .rows(),
        8
    );
    assert_eq!(server.db.count("SELECT COUNT(*) FROM batches").await, 0);
    assert_eq!(server.db.count("SELECT COUNT(*) FROM batch_items").await, 0);
}

#[tokio::test]
async fn ids_differing_only_in_trailing_spaces_are_two_records() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.put("/storage/tabs/a", json!({"payload": "plain"}))
        .await
        .assert(200);
    user.put("/storage/tabs/a%20", json!({"payload": "spaced"}))
        .await
        .assert(200);
    assert_eq!(user.get("/storage/tabs/a").await.json()["payload"], "plain");
    let spaced = user.get("/storage/tabs/a%20").await.json();
    assert_eq!(spaced["id"], "a ");
    assert_eq!(spaced["payload"], "spaced");
    let ids = user.get("/storage/tabs?sort=oldest").await.json();
    assert_eq!(ids.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_payload_with_nul_is_refused_on_every_backend() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.put("/storage/tabs/n", json!({"payload": "a\u{0}b"}))
        .await
        .assert_code(400, 8);
}

#[tokio::test]
async fn the_known_bad_iv_is_refused_in_crypto_only() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let bad = r#"{"ciphertext": "x", "IV": "AAAAAAAAAAAAAAAAAAAAAA==", "hmac": "y"}"#;
    let spaced = r#"{"ciphertext": "x", "IV":"AAAAAAAAAAAAAAAAAAAAAA==", "hmac": "y"}"#;
    for payload in [bad, spaced] {
        user.put("/storage/crypto/keys", json!({"payload": payload}))
            .await
            .assert_code(400, 8);
        user.post(
            "/storage/crypto",
            json!([{"id": "keys", "payload": payload}]),
        )
        .await
        .assert_code(400, 8);
    }
    user.get("/storage/crypto/keys").await.assert(404);
    user.put("/storage/tabs/t", json!({"payload": bad}))
        .await
        .assert(200);
    user.post("/storage/tabs", json!([{"id": "u", "payload": bad}]))
        .await
        .assert(200);
}
