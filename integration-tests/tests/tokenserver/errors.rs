//! Every row of the spec's error table, body for body.

use integration_tests::fxa::{access_claims, access_token, TestKey};
use integration_tests::sync_client::Reply;

use crate::support::{TestTokenserver, TokenRequest};

#[tokio::test]
async fn a_missing_or_schemeless_authorization_is_401_error() {
    let ts = TestTokenserver::spawn().await;
    let missing = TokenRequest::new(&ts.url).key_id("1-qqo").send().await;
    missing.assert_error(401, "error", "body", "", "Unauthorized");
    let schemeless = TokenRequest::new(&ts.url)
        .header("Authorization", "Bearer")
        .key_id("1-qqo")
        .send()
        .await;
    schemeless.assert_error(401, "error", "body", "", "Unauthorized");
    assert!(
        missing.header("x-timestamp").is_none(),
        "X-Timestamp is only sent on 200"
    );
}

#[tokio::test]
async fn a_non_bearer_scheme_is_401_unsupported() {
    let ts = TestTokenserver::spawn().await;
    let reply = TokenRequest::new(&ts.url)
        .header("Authorization", "BrowserID abc")
        .key_id("1-qqo")
        .send()
        .await;
    reply.assert_error(401, "error", "body", "", "Unsupported");
}

/// A valid access token for `user`.
fn sign_for(user: &str) -> String {
    TestKey::Primary.sign("at+jwt", &access_claims(user, Some(1)))
}

#[tokio::test]
async fn a_bad_oauth_token_is_401_invalid_credentials() {
    let ts = TestTokenserver::spawn().await;
    let expired = {
        let mut claims = access_claims("u", Some(1));
        claims["exp"] = serde_json::json!(1_000_000);
        TestKey::Primary.sign("at+jwt", &claims)
    };
    let no_scope = {
        let mut claims = access_claims("u", Some(1));
        claims["scope"] = serde_json::json!("profile");
        TestKey::Primary.sign("at+jwt", &claims)
    };
    let cases = [
        (
            "unknown key",
            TestKey::Rogue.sign("at+jwt", &access_claims("u", Some(1))),
        ),
        ("expired", expired),
        (
            "wrong typ",
            TestKey::Primary.sign("JWT", &access_claims("u", Some(1))),
        ),
        ("no sync scope", no_scope),
        ("unknown to FxA", "not-a-jwt-at-all".to_owned()),
        // Such users would not fit the `email` column, or hold NUL
        // (500 on PostgreSQL and MySQL before).
        ("a 1,000-character user", sign_for(&"a".repeat(1000))),
        ("a user with NUL", sign_for("ab\u{0}cd")),
        ("a user with @", sign_for("a@b")),
    ];
    for (what, token) in cases {
        let reply = ts.with_bearer(&token).send().await;
        assert_eq!(reply.status, 401, "{what}: {}", reply.text);
        reply.assert_error(401, "invalid-credentials", "body", "", "Unauthorized");
    }
}

#[tokio::test]
async fn a_missing_x_key_id_is_401_invalid_key_id() {
    let ts = TestTokenserver::spawn().await;
    let reply = ts
        .request("u", Some(1), "1-qqo")
        .without("X-KeyID")
        .send()
        .await;
    reply.assert_error(
        401,
        "invalid-key-id",
        "header",
        "",
        "Missing X-KeyID header",
    );
}

#[tokio::test]
async fn an_unreadable_x_key_id_is_401_invalid_key_id() {
    let ts = TestTokenserver::spawn().await;
    let request = reqwest::Client::new()
        .get(format!("{}/1.0/sync/1.5", ts.url))
        .header(
            "Authorization",
            format!("Bearer {}", access_token("u", Some(1))),
        )
        .header(
            "X-KeyID",
            reqwest::header::HeaderValue::from_bytes(b"1-\xff\xfe").unwrap(),
        );
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "invalid-key-id");
    assert_eq!(body["errors"][0]["description"], "Invalid X-KeyID header");
}

#[tokio::test]
async fn a_malformed_x_key_id_is_401_invalid_credentials() {
    let ts = TestTokenserver::spawn().await;
    for key_id in [
        "1234",
        "abc-qqo",
        "1-!!!",
        "1-qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
    ] {
        let reply = ts.request("u", Some(1), key_id).send().await;
        reply.assert_error(401, "invalid-credentials", "body", "", "Unauthorized");
    }
}

#[tokio::test]
async fn a_malformed_x_client_state_is_400() {
    let ts = TestTokenserver::spawn().await;
    let reply = ts
        .request("u", Some(1), "1-qqo")
        .header("X-Client-State", "aa aa")
        .send()
        .await;
    reply.assert_error(
        400,
        "error",
        "header",
        "X-Client-State",
        "Invalid client state value",
    );
}

#[tokio::test]
async fn an_x_client_state_disagreeing_with_x_key_id_is_401() {
    let ts = TestTokenserver::spawn().await;
    let reply = ts
        .request("u", Some(1), "1-qqo")
        .header("X-Client-State", "bbbb")
        .send()
        .await;
    reply.assert_error(401, "invalid-client-state", "body", "", "Unauthorized");
    let agreeing = ts
        .request("u", Some(1), "1-qqo")
        .header("X-Client-State", "aaaa")
        .send()
        .await;
    agreeing.ok();
}

#[tokio::test]
async fn other_applications_and_versions_are_404() {
    let ts = TestTokenserver::spawn().await;
    let app = ts
        .request("u", Some(1), "1-qqo")
        .path("/1.0/bookmarks/1.5")
        .send()
        .await;
    app.assert_error(
        404,
        "error",
        "url",
        "application",
        "Unsupported application",
    );
    let version = ts
        .request("u", Some(1), "1-qqo")
        .path("/1.0/sync/1.1")
        .send()
        .await;
    version.assert_error(
        404,
        "error",
        "url",
        "1.1",
        "Unsupported application version",
    );
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_get_an_error_body() {
    let ts = TestTokenserver::spawn().await;
    let missing = ts
        .request("u", Some(1), "1-qqo")
        .path("/nothing/here")
        .send()
        .await;
    missing.assert_error(404, "error", "url", "", "Not Found");
    let response = reqwest::Client::new()
        .post(format!("{}/1.0/sync/1.5", ts.url))
        .send()
        .await
        .unwrap();
    let allow = response.headers().get("allow").cloned();
    let reply = Reply::read(response).await;
    reply.assert_error(405, "error", "url", "", "Method Not Allowed");
    assert_eq!(allow.unwrap(), "GET,HEAD");
}

#[tokio::test]
async fn an_unparsable_query_is_400() {
    let ts = TestTokenserver::spawn().await;
    let reply = ts
        .request("u", Some(1), "1-qqo")
        .path("/1.0/sync/1.5?duration=60&duration=120")
        .send()
        .await;
    reply.assert_error(400, "error", "url", "", "invalid query params");
}

#[tokio::test]
async fn unknown_accounts_are_403_when_new_users_are_disabled() {
    let ts = TestTokenserver::spawn_with(|c| c.tokenserver.allow_new_users = false).await;
    let reply = ts.request("newbie", Some(1), "1-qqo").send().await;
    reply.assert_error(
        403,
        "new-users-disabled",
        "body",
        "",
        "New users are not allowed",
    );
    // Known accounts still get tokens.
    let email = "known@api.accounts.firefox.com";
    let keys = tokenserver::model::user::KeyState {
        generation: 1,
        keys_changed_at: Some(1),
        client_state: tokenserver::model::keys::ClientState::from_stored("aaaa"),
    };
    ts.store
        .allocate_user(
            email,
            &keys,
            None,
            None,
            0.1,
            tokenserver::db::UserCap::Ignored,
        )
        .await
        .unwrap();
    ts.request("known", Some(1), "1-qqo").send().await.ok();
}

#[tokio::test]
async fn no_node_at_all_is_503_with_retry_after() {
    let ts = TestTokenserver::spawn_with(|c| c.tokenserver.init_node_url = None).await;
    let reply = ts.request("u", Some(1), "1-qqo").send().await;
    reply.assert_error(503, "internal-error", "internal", "", "Server error");
    assert_eq!(reply.header("retry-after").as_deref(), Some("10"));
}

#[tokio::test]
async fn an_unreachable_fxa_is_503_with_retry_after() {
    let closed = integration_tests::unreachable_url();
    let ts = TestTokenserver::spawn_with(|c| {
        c.tokenserver.fxa_oauth_server_url = closed.clone();
    })
    .await;
    let reply = ts.with_bearer("opaque-token").send().await;
    reply.assert_error(503, "error", "body", "", "Resource is not available");
    assert_eq!(reply.header("retry-after").as_deref(), Some("10"));
}

#[tokio::test]
async fn a_slow_fxa_is_503_after_the_timeout_not_a_hang() {
    let ts = TestTokenserver::spawn_with(|c| c.tokenserver.fxa_oauth_request_timeout = 1).await;
    ts.fxa.set_mode(integration_tests::fxa::Mode::Slow(
        std::time::Duration::from_secs(30),
    ));
    let started = std::time::Instant::now();
    let token = ts
        .fxa
        .opaque_token("u", Some(1), &[integration_tests::fxa::SYNC_SCOPE]);
    let reply = ts.with_bearer(&token).send().await;
    reply.assert_error(503, "error", "body", "", "Resource is not available");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the request hung"
    );
}

#[tokio::test]
async fn a_database_failure_is_500_without_details() {
    let ts = TestTokenserver::spawn().await;
    // Someone breaks the schema under the running server.
    let mut db = ts.connect_db().await;
    db.execute("ALTER TABLE users RENAME TO users_gone").await;
    let reply = ts.request("u", Some(1), "1-qqo").send().await;
    reply.assert_error(500, "internal-error", "internal", "", "Server error");
    assert!(
        !reply.text.contains("users"),
        "no database details leak: {}",
        reply.text
    );
}

#[tokio::test]
async fn a_database_locked_elsewhere_is_503_with_retry_after() {
    let ts = TestTokenserver::spawn_with(|c| c.tokenserver.database_busy_timeout_ms = 100).await;
    // MySQL waits whole seconds for a lock, at least one.
    let mut other = ts.hold_write_lock().await;
    let reply = ts.request("locked-out", Some(1), "1-qqo").send().await;
    reply.assert_error(503, "error", "body", "", "Resource is not available");
    assert_eq!(reply.header("retry-after").as_deref(), Some("10"));
    other.execute("ROLLBACK").await;
    ts.request("locked-out", Some(1), "1-qqo").send().await.ok();
}
