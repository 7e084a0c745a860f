//! `syncserver import`: a deployment of Mozilla's Python syncserver (SQLite,
//! MySQL) or syncstorage-rs (MySQL, PostgreSQL), built from their schemas
//! and filled as Firefox leaves them, taken over by a fresh all-in-one.
//! Every Firefox that synced there gets its own uid here and finds every
//! record with its timestamps: an incremental sync, nothing to upload.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use integration_tests::mozilla::{Deployment, Layout, SourceUser};
use integration_tests::sync_client::SyncClient;
use serde_json::Value;
use support::{succeeded, token, Server, SYNCSERVER};

fn import_command(data: &Path, source: &Deployment) -> Command {
    let mut command = Command::new(SYNCSERVER);
    command
        .arg("import")
        .args(["--from", &source.storage_url])
        .env_clear()
        .env("SYNC_DATA_DIR", data)
        .env("SYNC_LOG_LEVEL", "warn");
    if source.tokens_url != source.storage_url {
        command.args(["--tokens-from", &source.tokens_url]);
    }
    command
}

/// Seconds as the protocol gives them, from milliseconds.
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// The user syncs as their Firefox would: their token names their old
/// uid, and every collection is there as the source had it.
async fn finds_everything(server: &str, user: &SourceUser) -> SyncClient {
    let client = token(server, &user.fxa_uid, user.generation, &user.client_state).await;
    assert_eq!(
        client.uid,
        u64::try_from(user.uid).unwrap(),
        "{}'s uid",
        user.fxa_uid
    );
    let info = client.get("/info/collections").await;
    assert_eq!(
        info.header("x-last-modified")
            .unwrap()
            .parse::<f64>()
            .unwrap(),
        seconds(user.modified),
        "the storage's timestamp"
    );
    let expected: serde_json::Map<String, Value> = user
        .collections
        .iter()
        .map(|(name, ms)| (name.clone(), Value::from(seconds(*ms))))
        .collect();
    assert_eq!(info.assert(200).json(), Value::Object(expected));
    for (name, modified) in &user.collections {
        let mut got = listed(&client, name).await;
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let want: Vec<(String, f64, String, Option<i64>)> = user
            .records
            .get(name)
            .map(|records| {
                records
                    .iter()
                    .map(|r| {
                        (
                            r.id.clone(),
                            seconds(r.modified),
                            r.payload.clone(),
                            r.sortindex,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got.len(), want.len(), "{name}: records");
        assert!(got == want, "{name}: the records differ");
        // An incremental sync since the last one finds nothing new.
        let newer = client
            .get(&format!("/storage/{name}?newer={}", seconds(*modified)))
            .await;
        assert_eq!(newer.assert(200).json(), Value::Array(vec![]), "{name}");
    }
    client
}

/// Every record of the collection, page by page as clients read them.
async fn listed(client: &SyncClient, name: &str) -> Vec<(String, f64, String, Option<i64>)> {
    let mut records = Vec::new();
    let mut offset = String::new();
    loop {
        let path = format!("/storage/{name}?full=1&sort=oldest&limit=5000&offset={offset}");
        let page = client.get(&path).await;
        let next = page.header("x-weave-next-offset");
        for r in page.assert(200).json().as_array().unwrap() {
            records.push((
                r["id"].as_str().unwrap().to_owned(),
                r["modified"].as_f64().unwrap(),
                r["payload"].as_str().unwrap().to_owned(),
                r["sortindex"].as_i64(),
            ));
        }
        match next {
            Some(next) => offset = next,
            None => return records,
        }
    }
}

async fn takes_over(layout: Layout) {
    let source = Deployment::build(layout).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = succeeded(&import_command(&data, &source).output().unwrap());
    println!("{out}");
    assert!(out.contains("imported 3 users"), "{out}");

    let env = [("SYNC_DATA_DIR", data.to_str().unwrap())];
    let server = Server::start_with(SYNCSERVER, &env, None).await;
    for user in source.users.iter().filter(|u| u.live) {
        finds_everything(&server.url, user).await;
    }
    // Bob's old keys were replaced there: they are refused here too.
    let bob_old = source.users.iter().find(|u| u.uid == 2).unwrap();
    let refused = integration_tests::sync_client::get_token(
        &format!("{}/1.0/sync/1.5", server.url),
        &integration_tests::fxa::access_token(&bob_old.fxa_uid, Some(bob_old.generation + 10)),
        &support::key_id(bob_old.generation + 10, &bob_old.client_state),
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert!(
        refused.text.contains("invalid-client-state"),
        "{}",
        refused.text
    );
    // Firefoxes set up for the Python server's /token path reach us too.
    let alice = &source.users[0];
    let moved = integration_tests::sync_client::get_token(
        &format!("{}/token/1.0/sync/1.5", server.url),
        &integration_tests::fxa::access_token(&alice.fxa_uid, Some(alice.generation)),
        &support::key_id(alice.generation, &alice.client_state),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.text);

    // Once more: everything is here already.
    let again = succeeded(&import_command(&data, &source).output().unwrap());
    assert!(
        again.contains("imported 0 users and 0 records")
            && again.contains("3 users had nothing new"),
        "{again}"
    );
}

#[tokio::test]
async fn a_python_syncserver_on_sqlite_is_taken_over() {
    takes_over(Layout::PythonSqlite).await;
}

#[tokio::test]
async fn a_python_syncserver_on_mysql_is_taken_over() {
    takes_over(Layout::PythonMysql).await;
}

#[tokio::test]
async fn a_syncstorage_rs_deployment_on_mysql_is_taken_over() {
    takes_over(Layout::RustMysql).await;
}

#[tokio::test]
async fn a_syncstorage_rs_deployment_on_postgres_is_taken_over() {
    takes_over(Layout::RustPostgres).await;
}

#[tokio::test]
async fn an_import_killed_half_way_is_finished_by_running_it_again() {
    let source = Deployment::build(Layout::PythonSqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = import_command(&data, &source)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Into the large user's records.
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let out = succeeded(&import_command(&data, &source).output().unwrap());
    println!("{out}");
    let env = [("SYNC_DATA_DIR", data.to_str().unwrap())];
    let server = Server::start_with(SYNCSERVER, &env, None).await;
    for user in source.users.iter().filter(|u| u.live) {
        finds_everything(&server.url, user).await;
    }
}

#[tokio::test]
async fn accounts_of_another_fxa_are_not_imported_under_ours() {
    let source = Deployment::build(Layout::PythonSqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = import_command(&data, &source)
        .env("SYNC_TOKENSERVER__FXA_EMAIL_DOMAIN", "accounts.example.org")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SYNC_TOKENSERVER__FXA_EMAIL_DOMAIN"),
        "{stderr}"
    );
}
