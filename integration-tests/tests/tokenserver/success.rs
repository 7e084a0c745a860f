//! The 200: its body, headers and a token the storage node accepts.

use integration_tests::fxa::unix_now;
use sync_common::hawk::{HawkRequest, HawkVerifier, ReplayCache};
use sync_common::token::{hmac_sha256, TokenSecrets};

use crate::support::{TestTokenserver, NODE};

#[tokio::test]
async fn a_new_user_gets_credentials_for_the_node() {
    let ts = TestTokenserver::spawn().await;
    let reply = ts.request("u1", Some(1000), "1000-qqo").send().await;
    let body = reply.ok();
    let uid = body["uid"].as_i64().unwrap();
    assert_eq!(body["api_endpoint"], format!("{NODE}/1.5/{uid}"));
    assert_eq!(body["duration"], 3600);
    assert_eq!(body["hashalg"], "sha256");
    // The storage nodes' backend, a setting (`sqlite` by default) that
    // does not follow the tokenserver's own database.
    assert_eq!(body["node_type"], "sqlite");
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = [
        "api_endpoint",
        "duration",
        "hashalg",
        "hashed_fxa_uid",
        "id",
        "key",
        "node_type",
        "uid",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    let timestamp: u64 = reply.header("x-timestamp").unwrap().parse().unwrap();
    assert!(timestamp.abs_diff(unix_now()) <= 2);
    assert_eq!(
        reply.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
}

#[tokio::test]
async fn the_token_is_tokenlib_format_and_verifies_on_a_storage_node() {
    let ts = TestTokenserver::spawn().await;
    let body = ts.request("u2", Some(1000), "1234-qqo").send().await.ok();
    let secrets = TokenSecrets::new(&[ts.secret.as_str()]).unwrap();
    let token = secrets.parse_token(body["id"].as_str().unwrap()).unwrap();
    assert_eq!(token.derived_secret, body["key"].as_str().unwrap());
    let p = &token.payload;
    assert_eq!(p.node, NODE);
    assert_eq!(p.uid, body["uid"].as_u64().unwrap());
    assert_eq!(p.fxa_uid, "u2");
    assert_eq!(p.fxa_kid, "0000000001234-qqo");
    assert_eq!(p.tokenserver_origin, "rust");
    assert_eq!(p.salt.len(), 6);
    assert!(p.expires.abs_diff(unix_now() + 3600) <= 2);
    // The metrics hashes: HMAC-SHA256 keyed with the master secret (no
    // metrics secret configured), first 32 hex characters.
    let hash =
        |m: &str| hex::encode(hmac_sha256(ts.secret.as_bytes(), m.as_bytes()))[..32].to_owned();
    assert_eq!(body["hashed_fxa_uid"], hash("u2"));
    assert_eq!(p.hashed_fxa_uid, hash("u2"));
    assert_eq!(p.hashed_device_id, hash(&format!("{}none", hash("u2"))));
    // Payload keys in Mozilla's minting order.
    let raw = integration_tests::fxa::token_payload_json(body["id"].as_str().unwrap());
    let order: Vec<&str> = [
        "node",
        "fxa_kid",
        "fxa_uid",
        "hashed_device_id",
        "hashed_fxa_uid",
        "expires",
        "uid",
        "tokenserver_origin",
        "salt",
    ]
    .to_vec();
    let positions: Vec<usize> = order
        .iter()
        .map(|k| raw.find(&format!("\"{k}\"")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{raw}");
    // A storage node with the same secret accepts HAWK signed with the key.
    let verifier = HawkVerifier::new(secrets, 60, ReplayCache::in_process(0));
    let path = format!("/1.5/{}/info/collections", p.uid);
    let credentials = hawk::Credentials {
        id: body["id"].as_str().unwrap().to_owned(),
        key: hawk::Key::new(
            body["key"].as_str().unwrap().as_bytes(),
            hawk::DigestAlgorithm::Sha256,
        )
        .unwrap(),
    };
    let header = hawk::RequestBuilder::new("GET", "node-1.example.com", 443, &path)
        .request()
        .make_header(&credentials)
        .unwrap();
    let request = HawkRequest {
        method: "GET",
        host: "node-1.example.com",
        port: 443,
        path_and_query: &path,
        content_type: None,
        body: b"",
    };
    let verified = verifier
        .verify(Some(&format!("Hawk {header}")), &request, unix_now(), false)
        .await
        .unwrap();
    assert_eq!(verified.uid, p.uid);
}

#[tokio::test]
async fn a_shorter_duration_may_be_asked_for_but_not_a_longer_one() {
    let ts = TestTokenserver::spawn().await;
    let short = ts
        .request("u3", Some(1), "1-qqo")
        .path("/1.0/sync/1.5?duration=60")
        .send()
        .await
        .ok();
    assert_eq!(short["duration"], 60);
    let long = ts
        .request("u3", Some(1), "1-qqo")
        .path("/1.0/sync/1.5?duration=99999")
        .send()
        .await
        .ok();
    assert_eq!(long["duration"], 3600);
    let zero = ts
        .request("u3", Some(1), "1-qqo")
        .path("/1.0/sync/1.5?duration=0")
        .send()
        .await
        .ok();
    assert_eq!(
        zero["duration"], 3600,
        "a token already expired is never handed out"
    );
}

#[tokio::test]
async fn the_same_user_keeps_their_uid() {
    let ts = TestTokenserver::spawn().await;
    let first = ts.request("u4", Some(10), "10-qqo").send().await.ok();
    let second = ts.request("u4", Some(10), "10-qqo").send().await.ok();
    assert_eq!(first["uid"], second["uid"]);
    assert_ne!(first["id"], second["id"]);
}

#[tokio::test]
async fn operational_endpoints_answer() {
    let ts = TestTokenserver::spawn().await;
    let heartbeat = reqwest::get(format!("{}/__heartbeat__", ts.url))
        .await
        .unwrap();
    assert_eq!(heartbeat.status(), 200);
    let body: serde_json::Value = heartbeat.json().await.unwrap();
    assert_eq!(body["database"], "Ok");
    assert_eq!(body["status"], "Ok");
    let lb = reqwest::get(format!("{}/__lbheartbeat__", ts.url))
        .await
        .unwrap();
    assert_eq!(lb.status(), 200);
}
