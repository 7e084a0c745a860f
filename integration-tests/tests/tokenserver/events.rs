//! FxA's account-event webhook: deletion retires the user, a password
//! change invalidates older generations; forged events change nothing.

use integration_tests::fxa::{unix_now, TestKey};
use serde_json::{json, Value};

use crate::support::{TestTokenserver, NODE};

const CLIENT_ID: &str = "sync-tokenserver-test";
const ISSUER: &str = "https://accounts.firefox.com/";

async fn spawn() -> TestTokenserver {
    TestTokenserver::spawn_with(|c| {
        c.tokenserver.fxa_webhook_enabled = true;
        c.tokenserver.fxa_webhook_set_client_id = CLIENT_ID.into();
    })
    .await
}

fn event_token(key: TestKey, audience: &str, sub: &str, events: Value) -> String {
    let claims = json!({
        "iss": ISSUER,
        "aud": audience,
        "sub": sub,
        "iat": unix_now(),
        "jti": hex::encode(rand::random::<[u8; 8]>()),
        "events": events,
    });
    key.sign("secevent+jwt", &claims)
}

async fn post_event(ts: &TestTokenserver, token: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{}/1.0/webhooks/fxa/events", ts.url))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_deleted_account_is_retired_and_refused() {
    let ts = spawn().await;
    ts.request("del", Some(10), "10-qqo").send().await.ok();
    // A key reset leaves an older record behind.
    ts.request("del", Some(20), "20-u7s").send().await.ok();
    assert_eq!(ts.store.count_users(None).await.unwrap(), 1);
    let events = json!({"https://schemas.accounts.firefox.com/event/delete-user": {}});
    let (status, body) = post_event(
        &ts,
        &event_token(TestKey::Primary, CLIENT_ID, "del", events),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, ""));
    let records = ts.records("del").await;
    assert_eq!(records[0].keys.generation, i64::MAX);
    assert!(records[0].replaced_at.is_some());
    assert_eq!(
        ts.store.count_users(None).await.unwrap(),
        0,
        "deleted accounts are not counted"
    );
    let refused = ts.request("del", Some(20), "20-u7s").send().await;
    refused.assert_error(401, "invalid-generation", "body", "", "Unauthorized");
    // Both uids are revoked on the node (the key reset's and the deletion's;
    // the node does not exist here, so they wait).
    let pending = ts.store.pending_revocations(NODE, 10).await.unwrap();
    let mut revoked: Vec<i64> = pending.iter().filter_map(|r| r.uid).collect();
    revoked.sort_unstable();
    let mut uids: Vec<i64> = records.iter().map(|r| r.uid).collect();
    uids.sort_unstable();
    assert_eq!(revoked, uids);
}

#[tokio::test]
async fn a_password_change_refuses_older_generations() {
    let ts = spawn().await;
    ts.request("pw", Some(1000), "1000-qqo").send().await.ok();
    let events =
        json!({"https://schemas.accounts.firefox.com/event/password-change": {"changeTime": 5000}});
    let (status, _) =
        post_event(&ts, &event_token(TestKey::Primary, CLIENT_ID, "pw", events)).await;
    assert_eq!(status, 200);
    assert_eq!(ts.records("pw").await[0].keys.generation, 4999);
    let old_session = ts.request("pw", Some(1000), "1000-qqo").send().await;
    old_session.assert_error(401, "invalid-generation", "body", "", "Unauthorized");
    ts.request("pw", Some(5000), "1000-qqo").send().await.ok();
}

#[tokio::test]
async fn forged_or_misaddressed_events_are_refused_and_change_nothing() {
    let ts = spawn().await;
    ts.request("safe", Some(10), "10-qqo").send().await.ok();
    let events = json!({"https://schemas.accounts.firefox.com/event/delete-user": {}});
    for token in [
        event_token(TestKey::Rogue, CLIENT_ID, "safe", events.clone()),
        event_token(TestKey::Primary, "another-client", "safe", events.clone()),
        "not-a-jwt".to_owned(),
    ] {
        let (status, body) = post_event(&ts, &token).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["status"],
            "invalid-credentials"
        );
    }
    assert_eq!(ts.records("safe").await[0].keys.generation, 10);
    ts.request("safe", Some(10), "10-qqo").send().await.ok();
}

#[tokio::test]
async fn unknown_events_are_accepted_and_ignored() {
    let ts = spawn().await;
    let events = json!({"https://schemas.accounts.firefox.com/event/profile-change": {}});
    let (status, _) = post_event(&ts, &event_token(TestKey::Primary, CLIENT_ID, "x", events)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_webhook_is_absent_unless_enabled() {
    let ts = TestTokenserver::spawn().await;
    let (status, _) = post_event(&ts, "anything").await;
    assert_eq!(status, 404);
}
