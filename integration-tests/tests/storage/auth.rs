//! HAWK authentication, tokens and user isolation: every failure is a 401.

use reqwest::Method;
use serde_json::json;
use sync_common::token::TokenSecrets;

use crate::support::{now, Auth, TestServer};

#[tokio::test]
async fn a_signed_request_succeeds_and_an_unsigned_one_is_401() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    user.get("/info/collections").await.assert(200);
    user.call(Method::GET, "/info/collections")
        .auth(Auth::None)
        .send()
        .await
        .assert_code(401, 0);
}

#[tokio::test]
async fn garbage_authorization_headers_are_401_not_500() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    // A genuine token with an absurd timestamp must not reach the hawk
    // crate's unchecked time arithmetic, however the header is spaced.
    let id = server.mint(&server.payload(1)).token;
    let absurd = [
        format!("Hawk id=\"{id}\", ts=\"18446744073709551615\", nonce=\"n\", mac=\"bWFj\""),
        format!("Hawk id=\"{id}\", ts =\"18446744073709551615\", nonce=\"n\", mac=\"bWFj\""),
        format!("Hawk id=\"{id}\", ts= \"+9223372036854775808\", nonce=\"n\", mac=\"bWFj\""),
    ];
    for garbage in [
        "Hawk",
        "Hawk id=",
        "Hawk id=\"not-a-token\", ts=\"1\", nonce=\"n\", mac=\"m\"",
        "Basic dXNlcjpwYXNz",
        "Hawk id=\"\", ts=\"\", nonce=\"\", mac=\"\"",
        "Hawk id=\"AAAA\", ts=\"abc\", nonce=\"n\", mac=\"bWFj\"",
        "Hawk id=\"AAAA\", ts=\"18446744073709551615\", nonce=\"n\", mac=\"bWFj\"",
    ]
    .into_iter()
    .map(String::from)
    .chain(absurd)
    {
        user.call(Method::GET, "/info/collections")
            .auth(Auth::Raw(garbage))
            .send()
            .await
            .assert_code(401, 0);
    }
}

#[tokio::test]
async fn an_unauthenticated_upload_is_refused_before_its_body_is_read() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let big = vec![b'x'; 2 * 1024 * 1024];
    user.call(Method::POST, "/storage/history")
        .auth(Auth::Raw(
            "Hawk id=\"AAAA\", ts=\"1\", nonce=\"n\", mac=\"bWFj\"".into(),
        ))
        .body("application/json", big)
        .send()
        .await
        .assert_code(401, 0);
}

#[tokio::test]
async fn a_signature_for_another_request_is_401() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let signed_for_counts = user
        .call(Method::GET, "/info/collection_counts")
        .authorization()
        .unwrap();
    user.call(Method::GET, "/info/collections")
        .auth(Auth::Raw(signed_for_counts))
        .send()
        .await
        .assert(401);
}

#[tokio::test]
async fn a_replayed_nonce_is_401() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let header = user
        .call(Method::GET, "/info/collections")
        .authorization()
        .unwrap();
    let first = user
        .call(Method::GET, "/info/collections")
        .auth(Auth::Raw(header.clone()))
        .send()
        .await;
    first.assert(200);
    user.call(Method::GET, "/info/collections")
        .auth(Auth::Raw(header))
        .send()
        .await
        .assert(401);
}

#[tokio::test]
async fn another_users_uid_in_the_path_is_401() {
    let server = TestServer::spawn().await;
    let alice = server.user(1);
    alice
        .put("/storage/passwords/secret", json!({"payload": "alice's"}))
        .await
        .assert(200);
    // Bob's valid token, aimed at Alice's storage.
    let bob_token = server.mint(&server.payload(2));
    let bob_as_alice = server.client_with(1, &bob_token);
    bob_as_alice
        .get("/storage/passwords/secret")
        .await
        .assert(401);
    bob_as_alice.delete("/storage").await.assert(401);
    bob_as_alice
        .put("/storage/passwords/secret", json!({"payload": "bob's"}))
        .await
        .assert(401);
    // Bob's own storage is empty, and Alice's data is intact.
    let bob = server.client_with(2, &bob_token);
    bob.get("/storage/passwords/secret").await.assert(404);
    assert_eq!(bob.get("/info/collections").await.json(), json!({}));
    let alice_bso = alice.get("/storage/passwords/secret").await.json();
    assert_eq!(alice_bso["payload"], "alice's");
}

#[tokio::test]
async fn an_expired_token_is_401_except_on_info_collections() {
    let server = TestServer::spawn().await;
    let mut payload = server.payload(1);
    payload.expires = now() - 10;
    let user = server.client_with(1, &server.mint(&payload));
    user.get("/info/collection_counts")
        .await
        .assert_code(401, 0);
    user.get("/storage/bookmarks").await.assert(401);
    user.put("/storage/bookmarks/a", json!({"payload": "x"}))
        .await
        .assert(401);
    user.get("/info/collections").await.assert(200);
}

#[tokio::test]
async fn a_token_from_another_secret_or_for_another_node_is_401() {
    let server = TestServer::spawn().await;
    let forged = TokenSecrets::new(&["not-the-secret"])
        .unwrap()
        .make_token(&server.payload(1))
        .unwrap();
    server
        .client_with(1, &forged)
        .get("/info/collections")
        .await
        .assert(401);

    let mut elsewhere = server.payload(1);
    elsewhere.node = "https://other-node.example.com".into();
    let token = server.mint(&elsewhere);
    server
        .client_with(1, &token)
        .get("/info/collections")
        .await
        .assert(401);
}

#[tokio::test]
async fn tokens_signed_with_a_previous_master_secret_still_work() {
    let old = "the-old-secret".to_owned();
    let server = TestServer::spawn_with(|c| {
        c.previous_master_secrets = vec![sync_common::secret::Secret::new(old.clone())];
    })
    .await;
    let token = TokenSecrets::new(&[old.as_str()])
        .unwrap()
        .make_token(&server.payload(1))
        .unwrap();
    server
        .client_with(1, &token)
        .get("/info/collections")
        .await
        .assert(200);
}

#[tokio::test]
async fn a_stale_timestamp_is_401_with_the_server_time() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let response = user
        .call(Method::GET, "/info/collections")
        .auth(Auth::Sign {
            ts: Some(now() - 3600),
            nonce: None,
            hash: false,
        })
        .send()
        .await;
    response.assert(401);
    let challenge = response
        .header("www-authenticate")
        .expect("WWW-Authenticate");
    assert!(challenge.starts_with("Hawk ts=\""), "{challenge}");
    assert!(challenge.contains("tsm=\""), "{challenge}");
    assert!(challenge.contains("Stale timestamp"), "{challenge}");
}

#[tokio::test]
async fn payload_hashes_are_accepted_when_right_and_refused_when_wrong() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    let with_hash = Auth::Sign {
        ts: None,
        nonce: None,
        hash: true,
    };
    user.call(Method::PUT, "/storage/meta/global")
        .json(&json!({"payload": "x"}))
        .auth(with_hash.clone())
        .send()
        .await
        .assert(200);
    // Signed over one body, sent with another.
    let signed = user
        .call(Method::PUT, "/storage/meta/global")
        .json(&json!({"payload": "original"}))
        .auth(with_hash)
        .authorization()
        .unwrap();
    user.call(Method::PUT, "/storage/meta/global")
        .json(&json!({"payload": "tampered"}))
        .auth(Auth::Raw(signed))
        .send()
        .await
        .assert(401);
    assert_eq!(
        user.get("/storage/meta/global").await.json()["payload"],
        "x"
    );
}

#[tokio::test]
async fn behind_a_proxy_the_public_url_is_what_is_signed() {
    let server = TestServer::spawn_with(|c| {
        c.public_url = Some("https://sync.example.com".into());
    })
    .await;
    let mut payload = server.payload(1);
    payload.node = "https://sync.example.com".into();
    let token = server.mint(&payload);
    let mut user = server.client_with(1, &token);
    // Signed for the loopback address the request really went to: refused.
    user.get("/info/collections").await.assert(401);
    // Signed for the public host and port, as a client behind TLS would.
    user.host = "sync.example.com".into();
    user.port = 443;
    user.get("/info/collections").await.assert(200);
}

#[tokio::test]
async fn trusted_forwarded_headers_give_the_signed_host() {
    let server = TestServer::spawn_with(|c| c.trust_forwarded_headers = true).await;
    let mut payload = server.payload(1);
    payload.node = "https://proxy.example.com".into();
    let mut user = server.client_with(1, &server.mint(&payload));
    user.host = "proxy.example.com".into();
    user.port = 443;
    user.call(Method::GET, "/info/collections")
        .header("X-Forwarded-Host", "proxy.example.com")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .assert(200);
}
