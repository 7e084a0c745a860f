//! Who may sync (ADR 0014): the allowlist (uids, emails through FxA's
//! profile server, domains), the cap on accounts, and the `access`
//! commands changing both while the server runs.

use std::time::{Duration, Instant};
use tokio::process::Command;

use integration_tests::cluster::binary;
use integration_tests::fxa::SYNC_SCOPE;
use integration_tests::sync_client::Reply;
use serde_json::Value;

use crate::support::{TestTokenserver, TokenRequest};

const ALICE: &str = "a11ce000000000000000000000000001";
const BOB: &str = "b0b00000000000000000000000000002";
const CAROL: &str = "ca201000000000000000000000000003";
const DAVE: &str = "da7e0000000000000000000000000004";

fn refusal(reply: &Reply) -> (String, String) {
    assert_eq!(reply.status, 403, "{}", reply.text);
    let body: Value = reply.json();
    let description = body["errors"][0]["description"].as_str().unwrap();
    (
        body["status"].as_str().unwrap().to_owned(),
        description.to_owned(),
    )
}

/// A token request with an opaque token FxA vouches for, with `scopes`.
async fn ask(ts: &TestTokenserver, fxa_uid: &str, scopes: &[&str]) -> Reply {
    let token = ts.fxa.opaque_token(fxa_uid, Some(1), scopes);
    TokenRequest::new(&ts.url)
        .bearer(&token)
        .key_id("1-qqo")
        .send()
        .await
}

async fn ask_jwt(ts: &TestTokenserver, fxa_uid: &str) -> Reply {
    ts.request(fxa_uid, Some(1), "1-qqo").send().await
}

#[tokio::test]
async fn only_listed_accounts_get_tokens() {
    let ts = TestTokenserver::spawn_with(|c| {
        c.tokenserver.allowed_accounts = vec![ALICE.to_uppercase()];
    })
    .await;
    ask_jwt(&ts, ALICE).await.ok();
    let (status, description) = refusal(&ask_jwt(&ts, BOB).await);
    assert_eq!(status, "access-denied");
    assert!(description.contains(BOB), "{description}");
    assert!(
        ts.records(BOB).await.is_empty(),
        "a refused account got a record"
    );
    // A uid entry needs no email: the profile server is never asked.
    assert_eq!(ts.fxa.email_calls(), 0);
}

#[tokio::test]
async fn email_and_domain_entries_match_the_email_fxa_confirms() {
    let ts = TestTokenserver::spawn_with(|c| {
        c.tokenserver.allowed_accounts = vec![
            "Bob@Example.com".into(),
            "@family.example".into(),
            ALICE.into(),
        ];
    })
    .await;
    // An account a uid entry admits costs no call to the profile server.
    ask(&ts, ALICE, &[SYNC_SCOPE, "profile"]).await.ok();
    assert_eq!(ts.fxa.email_calls(), 0);
    ts.fxa.set_email(BOB, "bob@example.com");
    ts.fxa.set_email(CAROL, "carol@family.example");
    ts.fxa.set_email(DAVE, "dave@family.example.evil");
    let with_email = [SYNC_SCOPE, "profile:email"];
    ask(&ts, BOB, &with_email).await.ok();
    ask(&ts, CAROL, &["profile", SYNC_SCOPE]).await.ok();
    let (status, _) = refusal(&ask(&ts, DAVE, &with_email).await);
    assert_eq!(status, "access-denied");
    // A token that may not read the email (Firefox's Sync token) leaves
    // the email unknown: only a uid entry could admit the account.
    let (_, description) = refusal(&ask(&ts, CAROL, &[SYNC_SCOPE]).await);
    assert!(description.contains(CAROL), "{description}");
    assert_eq!(ts.fxa.email_calls(), 4);
}

#[tokio::test]
async fn a_failing_profile_server_is_an_outage_not_a_refusal() {
    let ts = TestTokenserver::spawn_with(|c| {
        c.tokenserver.allowed_accounts = vec!["bob@example.com".into()];
    })
    .await;
    ts.fxa.set_email(BOB, "bob@example.com");
    let with_email = [SYNC_SCOPE, "profile:email"];
    for status in [429, 404, 500] {
        ts.fxa.fail_profile(Some(status));
        let reply = ask(&ts, BOB, &with_email).await;
        assert_eq!(
            reply.status, 503,
            "profile server's {status}: {}",
            reply.text
        );
    }
    ts.fxa.fail_profile(None);
    ask(&ts, BOB, &with_email).await.ok();
}

#[tokio::test]
async fn the_cap_refuses_new_accounts_only() {
    let ts = TestTokenserver::spawn_with(|c| c.tokenserver.max_users = Some(2)).await;
    let alice = ts.request(ALICE, Some(1), "1-qqo").send().await.ok();
    ask_jwt(&ts, BOB).await.ok();
    let (status, description) = refusal(&ask_jwt(&ts, CAROL).await);
    assert_eq!(status, "new-users-disabled");
    assert!(description.contains("at most 2 users"), "{description}");
    assert!(ts.records(CAROL).await.is_empty());
    // Existing users keep syncing, through a key reset (a new record) too.
    assert_eq!(ask_jwt(&ts, ALICE).await.ok()["uid"], alice["uid"]);
    let reset = ts.request(ALICE, Some(2), "2-u7s").send().await.ok();
    assert_ne!(reset["uid"], alice["uid"]);
    // And when their node goes down, they move to another one.
    let other = "https://node-2.example.com";
    ts.store.add_node(other, 10, false, false).await.unwrap();
    let downed = tokenserver::db::NodeUpdate {
        downed: Some(true),
        ..Default::default()
    };
    ts.store
        .update_node(crate::support::NODE, &downed)
        .await
        .unwrap();
    let moved = ts.request(BOB, Some(1), "1-qqo").send().await.ok();
    assert!(moved["api_endpoint"].as_str().unwrap().starts_with(other));
}

#[tokio::test]
async fn racing_new_accounts_never_pass_the_cap() {
    let ts = TestTokenserver::spawn_with(|c| c.tokenserver.max_users = Some(3)).await;
    let uids: Vec<String> = (0..8).map(|i| format!("{i:032x}")).collect();
    let requests = uids
        .iter()
        .map(|uid| ts.request(uid, Some(1), "1-qqo").send());
    let replies = crate::users::futures_join_all(requests).await;
    let admitted = replies.iter().filter(|r| r.status == 200).count();
    for refused in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(refusal(refused).0, "new-users-disabled");
    }
    assert_eq!(
        admitted,
        3,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(ts.store.count_users(None).await.unwrap(), 3);
}

/// `tokenserver access …` against the test server's database, beside the
/// running server. Awaited, not waited for:
/// the server runs on this test's one thread, and a blocked thread would
/// freeze it, holding whatever lock it had (a node check's write, say)
/// until the command gave up on the database.
async fn run_access(ts: &TestTokenserver, args: &[&str]) -> std::process::Output {
    Command::new(binary("tokenserver"))
        .arg("access")
        .args(args)
        .env("SYNC_TOKENSERVER__DATABASE_URL", ts.database_url.expose())
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap()
}

/// [`run_access`], which must succeed; its output.
async fn access(ts: &TestTokenserver, args: &[&str]) -> String {
    let out = run_access(ts, args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "access {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Asks for `fxa_uid`'s token until the answer has `status` (a number,
/// or the body's status word): a running server rereads the access
/// settings every second here.
async fn until_status(ts: &TestTokenserver, fxa_uid: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = ask_jwt(ts, fxa_uid).await;
        let word = serde_json::from_str::<Value>(&reply.text)
            .ok()
            .and_then(|body| body["status"].as_str().map(str::to_owned));
        if reply.status.to_string() == status || word.as_deref() == Some(status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{fxa_uid} still gets {}: {}",
            reply.status,
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn access_commands_change_a_running_server() {
    let ts = TestTokenserver::spawn_with(|c| c.tokenserver.access_refresh_seconds = 1).await;
    ask_jwt(&ts, BOB).await.ok();
    let listed = access(&ts, &["allow", ALICE, "@family.example"]).await;
    assert!(
        listed.contains(ALICE) && listed.contains("@family.example"),
        "{listed}"
    );
    until_status(&ts, BOB, "access-denied").await;
    ask_jwt(&ts, ALICE).await.ok();
    // A cap is read by the allocation itself: at once.
    access(&ts, &["cap", "2"]).await;
    access(&ts, &["allow", CAROL]).await;
    until_status(&ts, CAROL, "new-users-disabled").await;
    let listed = access(&ts, &["cap", "none"]).await;
    assert!(
        listed.contains("cap: none (set with `access cap`); 2 accounts"),
        "{listed}"
    );
    ask_jwt(&ts, CAROL).await.ok();
    // Removing every entry opens the server again.
    access(&ts, &["deny", ALICE, "@family.example", CAROL]).await;
    let listed = access(&ts, &["list"]).await;
    assert!(listed.contains("allowlist: none"), "{listed}");
    until_status(&ts, BOB, "200").await;
}

#[tokio::test]
async fn an_access_command_waits_for_a_writer_to_finish() {
    let ts = TestTokenserver::spawn().await;
    let writer = ts.hold_write_lock().await;
    let finishing = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut writer = writer;
        writer.execute("ROLLBACK").await;
    });
    access(&ts, &["allow", ALICE]).await;
    finishing.await.unwrap();
    assert_eq!(ts.store.access().await.unwrap().entries.len(), 1);
}

#[tokio::test]
async fn access_commands_refuse_what_is_not_an_account() {
    let ts = TestTokenserver::spawn().await;
    let out = run_access(&ts, &["allow", "alice"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not an account"), "{stderr}");
    assert!(ts.store.access().await.unwrap().entries.is_empty());
}

#[tokio::test]
async fn allow_existing_closes_the_server_to_newcomers() {
    let ts = TestTokenserver::spawn_with(|c| c.tokenserver.access_refresh_seconds = 1).await;
    ask_jwt(&ts, ALICE).await.ok();
    ask_jwt(&ts, BOB).await.ok();
    // A key reset leaves a replaced record: still one account.
    ts.request(BOB, Some(2), "2-u7s").send().await.ok();
    let listed = access(&ts, &["allow", "--existing"]).await;
    assert!(listed.contains(ALICE) && listed.contains(BOB), "{listed}");
    assert_eq!(ts.store.access().await.unwrap().entries.len(), 2);
    until_status(&ts, CAROL, "access-denied").await;
    ask_jwt(&ts, ALICE).await.ok();
}
