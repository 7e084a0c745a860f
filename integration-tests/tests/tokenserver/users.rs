//! The user-record rules over HTTP: generations and keys_changed_at only
//! grow, a key reset gives a new uid, stale and unchanged states are refused.

use crate::support::TestTokenserver;

#[tokio::test]
async fn a_newer_generation_is_recorded_and_an_older_one_refused() {
    let ts = TestTokenserver::spawn().await;
    let first = ts.request("g", Some(10), "10-qqo").send().await.ok();
    let raised = ts.request("g", Some(20), "10-qqo").send().await.ok();
    assert_eq!(first["uid"], raised["uid"]);
    assert_eq!(ts.records("g").await[0].keys.generation, 20);
    let older = ts.request("g", Some(15), "10-qqo").send().await;
    older.assert_error(401, "invalid-generation", "body", "", "Unauthorized");
}

#[tokio::test]
async fn a_key_change_gives_a_new_uid_and_replaces_the_old_record() {
    let ts = TestTokenserver::spawn().await;
    let old = ts.request("k", Some(10), "10-qqo").send().await.ok();
    let new = ts.request("k", Some(20), "20-u7s").send().await.ok();
    assert_ne!(old["uid"], new["uid"]);
    assert_eq!(
        old["api_endpoint"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .unwrap()
            .0,
        new["api_endpoint"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .unwrap()
            .0,
        "a key change stays on the same node"
    );
    let records = ts.records("k").await;
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].uid, new["uid"].as_i64().unwrap());
    assert_eq!(records[0].keys.client_state.as_hex(), "bbbb");
    assert!(records[0].replaced_at.is_none());
    assert!(
        records[1].replaced_at.is_some(),
        "the old record is replaced"
    );
}

#[tokio::test]
async fn a_client_state_used_before_is_refused_as_stale() {
    let ts = TestTokenserver::spawn().await;
    ts.request("s", Some(10), "10-qqo").send().await.ok();
    ts.request("s", Some(20), "20-u7s").send().await.ok();
    let stale = ts.request("s", Some(30), "30-qqo").send().await;
    stale.assert_error(
        401,
        "invalid-client-state",
        "header",
        "X-Client-State",
        "Unacceptable client-state value stale value",
    );
}

#[tokio::test]
async fn a_new_client_state_needs_a_newer_generation_and_keys_changed_at() {
    let ts = TestTokenserver::spawn().await;
    ts.request("n", Some(10), "10-qqo").send().await.ok();
    let same_generation = ts.request("n", Some(10), "10-u7s").send().await;
    same_generation.assert_error(
        401,
        "invalid-client-state",
        "header",
        "X-Client-State",
        "Unacceptable client-state value new value with no generation change",
    );
    let same_kca = ts.request("n", Some(20), "10-u7s").send().await;
    same_kca.assert_error(
        401,
        "invalid-client-state",
        "header",
        "X-Client-State",
        "Unacceptable client-state value new value with no keys_changed_at change",
    );
}

#[tokio::test]
async fn an_empty_client_state_after_a_real_one_is_refused() {
    let ts = TestTokenserver::spawn().await;
    ts.request("e", Some(10), "10-qqo").send().await.ok();
    let empty = ts.request("e", Some(20), "20-").send().await;
    empty.assert_error(
        401,
        "invalid-client-state",
        "header",
        "X-Client-State",
        "Unacceptable client-state value empty string",
    );
}

#[tokio::test]
async fn keys_changed_at_rules() {
    let ts = TestTokenserver::spawn().await;
    ts.request("kca", Some(100), "100-qqo").send().await.ok();
    let lower = ts.request("kca", Some(100), "50-qqo").send().await;
    lower.assert_error(401, "invalid-keysChangedAt", "body", "", "Unauthorized");
    let ahead_of_generation = ts.request("kca", Some(100), "200-qqo").send().await;
    ahead_of_generation.assert_error(401, "invalid-keysChangedAt", "body", "", "Unauthorized");
    // 0 counts as absent: missing once one has been seen.
    let missing = ts.request("kca", Some(100), "0-qqo").send().await;
    missing.assert_error(401, "invalid-keysChangedAt", "body", "", "Unauthorized");
    // A newer one, with a generation at least as new, is recorded.
    ts.request("kca", Some(300), "300-qqo").send().await.ok();
    assert_eq!(ts.records("kca").await[0].keys.keys_changed_at, Some(300));
}

#[tokio::test]
async fn without_a_generation_keys_changed_at_stands_in_for_it() {
    let ts = TestTokenserver::spawn().await;
    ts.request("nogen", None, "1234-qqo").send().await.ok();
    let record = &ts.records("nogen").await[0];
    assert_eq!(record.keys.keys_changed_at, Some(1234));
    // A new account's generation is the request's (absent: 0); a later
    // keys_changed_at raises it.
    ts.request("nogen", None, "2000-qqo").send().await.ok();
    assert_eq!(ts.records("nogen").await[0].keys.generation, 2000);
}

#[tokio::test]
async fn remote_verification_gives_the_same_users() {
    let ts = TestTokenserver::spawn().await;
    let token = ts
        .fxa
        .opaque_token("remote", Some(5), &[integration_tests::fxa::SYNC_SCOPE]);
    let body = crate::support::TokenRequest::new(&ts.url)
        .bearer(&token)
        .key_id("5-qqo")
        .send()
        .await
        .ok();
    let again = ts.request("remote", Some(5), "5-qqo").send().await.ok();
    assert_eq!(body["uid"], again["uid"]);
    assert_eq!(ts.records("remote").await[0].keys.generation, 5);
}

#[tokio::test]
async fn racing_first_requests_share_one_uid() {
    let ts = TestTokenserver::spawn().await;
    let requests = (0..8).map(|_| ts.request("racer", Some(1), "1-qqo").send());
    let replies = futures_join_all(requests).await;
    let uids: std::collections::BTreeSet<i64> = replies
        .iter()
        .map(|r| r.ok()["uid"].as_i64().unwrap())
        .collect();
    assert_eq!(uids.len(), 1, "every racer got the same uid: {uids:?}");
    assert_eq!(ts.records("racer").await.len(), 1);
}

#[tokio::test]
async fn racing_key_resets_share_one_new_uid() {
    let ts = TestTokenserver::spawn().await;
    ts.request("reset", Some(1), "1-qqo").send().await.ok();
    let requests = (0..8).map(|_| ts.request("reset", Some(2), "2-u7s").send());
    let replies = futures_join_all(requests).await;
    let uids: std::collections::BTreeSet<i64> = replies
        .iter()
        .map(|r| r.ok()["uid"].as_i64().unwrap())
        .collect();
    assert_eq!(uids.len(), 1, "every racer got the same new uid: {uids:?}");
    assert_eq!(ts.records("reset").await.len(), 2);
}

#[tokio::test]
async fn racing_first_requests_on_two_servers_share_one_uid() {
    // Two servers on one database: two pools, as two processes have.
    let one = TestTokenserver::spawn().await;
    let two = TestTokenserver::spawn_beside(&one).await;
    let requests = (0..16).map(|i| {
        let ts = if i % 2 == 0 { &one } else { &two };
        ts.request("twin", Some(1), "1-qqo").send()
    });
    let replies = futures_join_all(requests).await;
    let uids: std::collections::BTreeSet<i64> = replies
        .iter()
        .map(|r| r.ok()["uid"].as_i64().unwrap())
        .collect();
    assert_eq!(uids.len(), 1, "every racer got the same uid: {uids:?}");
    assert_eq!(one.records("twin").await.len(), 1);
    let node = &one.store.nodes().await.unwrap()[0];
    assert_eq!(node.current_load, 1, "one user, counted once");
}

#[tokio::test]
async fn concurrent_new_users_on_two_servers_are_all_counted() {
    let one = TestTokenserver::spawn().await;
    let two = TestTokenserver::spawn_beside(&one).await;
    let requests = (0..24).map(|i| {
        let ts = if i % 2 == 0 { &one } else { &two };
        ts.request(&format!("crowd-{i}"), Some(1), "1-qqo").send()
    });
    let replies = futures_join_all(requests).await;
    let uids: std::collections::BTreeSet<i64> = replies
        .iter()
        .map(|r| r.ok()["uid"].as_i64().unwrap())
        .collect();
    assert_eq!(uids.len(), 24, "a uid each");
    // No allocation worked from a stale load: every one is counted.
    let node = &one.store.nodes().await.unwrap()[0];
    assert_eq!((node.current_load, node.available), (24, 100 - 24));
}

#[tokio::test]
async fn reserved_uids_are_never_handed_out() {
    let ts = TestTokenserver::spawn().await;
    let before = ts.request("early", Some(1), "1-qqo").send().await.ok();
    assert!(before["uid"].as_i64().unwrap() < 1000);
    // A storage database holds data up to uid 1000.
    assert!(ts.store.reserve_uids_through(1000).await.unwrap());
    let after = ts.request("late", Some(1), "1-qqo").send().await.ok();
    let uid = after["uid"].as_i64().unwrap();
    assert!(uid > 1000, "a reserved uid was handed out: {uid}");
    // Reserving what is already behind moves nothing.
    assert!(!ts.store.reserve_uids_through(500).await.unwrap());
    assert!(!ts.store.reserve_uids_through(uid).await.unwrap());
    assert!(ts.store.reserve_uids_through(uid + 10).await.unwrap());
    let last = ts.request("later", Some(1), "1-qqo").send().await.ok();
    assert!(last["uid"].as_i64().unwrap() > uid + 10);
}

/// Runs the futures concurrently on this runtime.
pub(crate) async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
