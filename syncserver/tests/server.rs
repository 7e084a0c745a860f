//! The all-in-one in-process and through its command line: one heartbeat
//! for both databases, the single-node rule, and purges of local data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use base64::Engine;
use integration_tests::fxa::{access_token, TestKey};
use integration_tests::sync_client::{get_token, SyncClient};
use serde_json::json;
use sync_common::secret::Secret;
use syncserver::Config;
use tokio::net::TcpListener;

/// Serves a server with data under `dir/data` on a free port until the
/// test ends; returns its URL.
async fn serve(dir: &std::path::Path) -> Result<String, syncserver::StartError> {
    let (url, stop) = serve_until(dir).await?;
    std::mem::forget(stop);
    Ok(url)
}

/// Like `serve`, with a handle that stops the server (and waits for it).
async fn serve_until(dir: &std::path::Path) -> Result<(String, Stop), syncserver::StartError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = Config {
        data_dir: dir.join("data"),
        master_secret: Secret::new("in-process"),
        port: listener.local_addr().unwrap().port(),
        ..Config::default()
    };
    config.tokenserver.fxa_oauth_primary_jwk =
        Some(serde_json::from_value(TestKey::Primary.jwk()).unwrap());
    let url = config.public_url();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stop_rx.await;
        };
        let result = syncserver::serve(config, listener, shutdown).await;
        let _ = tx.send(result);
    });
    // The listener is bound, so this waits for the start; a start error
    // drops the listener and the request fails.
    match reqwest::get(format!("{url}/__lbheartbeat__")).await {
        Ok(_) => Ok((
            url,
            Stop {
                tx: stop_tx,
                done: rx,
            },
        )),
        Err(_) => Err(rx
            .await
            .unwrap()
            .expect_err("serve returned without a shutdown")),
    }
}

struct Stop {
    tx: tokio::sync::oneshot::Sender<()>,
    done: tokio::sync::oneshot::Receiver<Result<(), syncserver::StartError>>,
}

impl Stop {
    async fn now(self) {
        let _ = self.tx.send(());
        self.done.await.unwrap().unwrap();
    }
}

async fn heartbeat(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("{url}/__heartbeat__")).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn user(url: &str, generation: i64, state: u8) -> SyncClient {
    named_user(url, "purge-me", generation, state).await
}

async fn named_user(url: &str, fxa_uid: &str, generation: i64, state: u8) -> SyncClient {
    let key_id = format!(
        "{generation}-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([state; 16])
    );
    let reply = get_token(
        &format!("{url}/1.0/sync/1.5"),
        &access_token(fxa_uid, Some(generation)),
        &key_id,
    )
    .await;
    SyncClient::from_token(&reply.assert(200).json())
}

#[tokio::test]
async fn the_heartbeat_checks_both_databases() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve(dir.path()).await.unwrap();
    let (status, body) = heartbeat(&url).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["database"].as_str(),
            body["tokenserver_database"].as_str()
        ),
        (Some("Ok"), Some("Ok"))
    );
    let tokens = sqlx::SqlitePool::connect(&format!(
        "sqlite:{}",
        dir.path().join("data/tokenserver.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("ALTER TABLE services RENAME TO services_gone")
        .execute(&tokens)
        .await
        .unwrap();
    let (status, body) = heartbeat(&url).await;
    assert_eq!(status, 503);
    assert_eq!(
        (
            body["status"].as_str(),
            body["tokenserver_database"].as_str()
        ),
        (Some("Err"), Some("Err"))
    );
    assert_eq!(body["database"], "Ok", "the storage side is still reported");
}

#[tokio::test]
async fn other_storage_nodes_stop_the_start_with_a_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let url = sync_common::db_url::DatabaseUrl::new(format!(
        "sqlite:{}",
        dir.path().join("data/tokenserver.db").display()
    ));
    let store = tokenserver::db::open(&url, Default::default())
        .await
        .unwrap();
    store
        .add_node("https://a.example.com", 10, false, false)
        .await
        .unwrap();
    store
        .add_node("https://b.example.com", 10, false, false)
        .await
        .unwrap();
    let error = serve(dir.path()).await.unwrap_err().to_string();
    assert!(
        error.contains("https://a.example.com, https://b.example.com"),
        "{error}"
    );
    assert!(error.contains("syncserver node remove"), "{error}");
}

#[tokio::test]
async fn purge_replaced_deletes_the_old_uids_data_from_the_local_storage() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve(dir.path()).await.unwrap();
    let old = user(&url, 1, 0xaa).await;
    old.put(
        "/storage/meta/global",
        &json!({"id": "global", "payload": "old"}),
    )
    .await
    .assert(200);
    let new = user(&url, 2, 0xbb).await;
    new.put(
        "/storage/meta/global",
        &json!({"id": "global", "payload": "new"}),
    )
    .await
    .assert(200);

    let output = Command::new(env!("CARGO_BIN_EXE_syncserver"))
        .args(["purge-replaced", "--older-than-days", "0"])
        .current_dir(dir.path())
        .env_clear()
        .env("SYNC_LOG_LEVEL", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("purged 1 replaced records"), "{stdout}");
    old.get("/storage/meta/global").await.assert(404);
    let kept = new.get("/storage/meta/global").await.assert(200).json();
    assert_eq!(kept["payload"], "new");
}

#[tokio::test]
async fn a_reset_tokenserver_database_never_reuses_a_stored_uid() {
    let dir = tempfile::tempdir().unwrap();
    let (url, stop) = serve_until(dir.path()).await.unwrap();
    let first = named_user(&url, "first", 1, 1).await;
    first
        .put(
            "/storage/meta/global",
            &json!({"id": "global", "payload": "first's"}),
        )
        .await
        .assert(200);
    stop.now().await;
    // The operator deletes tokenserver.db but keeps syncstorage.db.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("data/tokenserver.db{suffix}")));
    }
    let url = serve(dir.path()).await.unwrap();
    let second = named_user(&url, "second", 1, 2).await;
    assert!(
        second.uid > first.uid,
        "uid {} was handed out again",
        second.uid
    );
    second.get("/storage/meta/global").await.assert(404);
}
