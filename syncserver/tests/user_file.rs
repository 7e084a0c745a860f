//! `syncserver export` and `syncserver import-user` on the all-in-one
//! server, straight on its databases: a user's data taken from one server
//! while it runs, and restored on another, where their devices find it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use support::{succeeded, token, Server, SYNCSERVER};

const FXA_UID: &str = "exported";

fn syncserver(dir: &Path, args: &[&str]) -> Output {
    Command::new(SYNCSERVER)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("SYNC_LOG_LEVEL", "warn")
        .output()
        .unwrap()
}

/// Every collection's timestamp and records, as the client sees them.
async fn everything(client: &integration_tests::sync_client::SyncClient) -> Value {
    let info = client.get("/info/collections").await.assert(200).json();
    let mut records = serde_json::Map::new();
    for name in info.as_object().unwrap().keys() {
        let listed = client.get(&format!("/storage/{name}?full=1")).await;
        records.insert(name.clone(), listed.assert(200).json());
    }
    json!({"info": info, "records": records})
}

#[tokio::test]
async fn a_user_exported_from_one_server_syncs_on_another() {
    let old = Server::start(SYNCSERVER).await;
    let client = token(&old.url, FXA_UID, 1, &[7; 16]).await;
    let bookmarks: Vec<Value> = (0..1_500)
        .map(|i| json!({"id": format!("b{i:04}"), "payload": format!("bookmark {i}"), "sortindex": i}))
        .collect();
    for chunk in bookmarks.chunks(100) {
        client
            .post("/storage/bookmarks", &json!(chunk))
            .await
            .assert(200);
    }
    let meta = json!({"payload": "{\"syncID\":\"s\",\"storageVersion\":5}"});
    client.put("/storage/meta/global", &meta).await.assert(200);
    let before = everything(&client).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exported.jsonl");
    let file_arg = file.to_str().unwrap();
    let out = succeeded(&syncserver(old.dir.path(), &["export", FXA_UID, file_arg]));
    assert!(
        out.contains("exported 1501 records in 2 collections"),
        "{out}"
    );

    let new = Server::start(SYNCSERVER).await;
    let out = succeeded(&syncserver(new.dir.path(), &["import-user", file_arg]));
    assert!(out.contains("imported 1501 records"), "{out}");
    let moved = token(&new.url, FXA_UID, 1, &[7; 16]).await;
    assert_eq!(everything(&moved).await, before);
    // The old server still serves the user: an export copies, it does not move.
    assert_eq!(everything(&client).await, before);
}
