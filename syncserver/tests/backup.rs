//! `syncserver backup` of a server that clients keep writing to, and
//! `syncserver restore` of it into a fresh data dir: every write
//! acknowledged before the backup began is there, with its timestamps,
//! for the same uid.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use support::{succeeded, token, Server, SYNCSERVER};

const FXA_UID: &str = "backed-up";

fn syncserver(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(SYNCSERVER);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("SYNC_LOG_LEVEL", "warn");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

fn failed(output: &Output) -> String {
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn bookmark(i: usize) -> Value {
    json!({"id": format!("bm{i:05}"), "payload": format!("{{\"ciphertext\":\"b{i}\"}}"), "sortindex": i})
}

#[tokio::test]
async fn a_backup_taken_while_clients_write_restores_every_acknowledged_write() {
    let server = Server::start(SYNCSERVER).await;
    let client = token(&server.url, FXA_UID, 1, &[7; 16]).await;
    let uid = client.uid;
    let mut acknowledged: Vec<(String, f64)> = Vec::new();
    let write = async |i: usize, acknowledged: &mut Vec<(String, f64)>| {
        let record = bookmark(i);
        let path = format!("/storage/bookmarks/{}", record["id"].as_str().unwrap());
        let modified = client.put(&path, &record).await.assert(200).json();
        acknowledged.push((
            record["id"].as_str().unwrap().to_owned(),
            modified.as_f64().unwrap(),
        ));
    };
    for i in 0..200 {
        write(i, &mut acknowledged).await;
    }

    // The backup runs while the client keeps writing.
    let backup = tempfile::tempdir().unwrap();
    let target = backup.path().join("copy");
    let target_arg = target.to_str().unwrap();
    let mut running = syncserver(server.dir.path(), &["backup", target_arg], &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let before = acknowledged.len();
    let mut i = before;
    while running.try_wait().unwrap().is_none() {
        write(i, &mut acknowledged).await;
        i += 1;
    }
    let during = acknowledged.len() - before;
    succeeded(&running.wait_with_output().unwrap());
    for _ in 0..20 {
        write(i, &mut acknowledged).await;
        i += 1;
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(target.join("master_secret"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o600,
        "the copied secret is readable by others"
    );
    let refused = syncserver(server.dir.path(), &["backup", target_arg], &[])
        .output()
        .unwrap();
    assert!(failed(&refused).contains("is not empty"));

    // A fresh data dir, restored, served.
    let fresh = tempfile::tempdir().unwrap();
    let data = fresh.path().join("data");
    let data_env = [("SYNC_DATA_DIR", data.to_str().unwrap())];
    let restored = syncserver(fresh.path(), &["restore", target_arg], &data_env)
        .output()
        .unwrap();
    succeeded(&restored);
    let again = syncserver(fresh.path(), &["restore", target_arg], &data_env)
        .output()
        .unwrap();
    assert!(failed(&again).contains("restore into an empty data dir"));
    let secret = |dir: &Path| std::fs::read_to_string(dir.join("master_secret")).unwrap();
    assert_eq!(
        secret(&data).trim(),
        secret(&server.dir.path().join("data")).trim()
    );
    drop(server);
    let restored = Server::start_with(SYNCSERVER, &data_env, None).await;
    let client = token(&restored.url, FXA_UID, 1, &[7; 16]).await;
    assert_eq!(client.uid, uid, "the restored tokenserver gave another uid");

    let listed = client
        .get("/storage/bookmarks?full=1")
        .await
        .assert(200)
        .json();
    let stored: std::collections::HashMap<String, f64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["modified"].as_f64().unwrap(),
            )
        })
        .collect();
    for (id, modified) in &acknowledged[..before] {
        assert_eq!(stored.get(id), Some(modified), "{id} lost or changed");
    }
    // Whatever the copy holds beyond that is exactly what was written.
    for (id, modified) in &acknowledged[before..] {
        if let Some(found) = stored.get(id) {
            assert_eq!(found, modified, "{id} changed");
        }
    }
    assert!(stored.len() <= acknowledged.len());
    eprintln!(
        "{before} writes before the backup, {during} during it, {} restored",
        stored.len()
    );

    // The restored server goes on from there, its clock past the copy's.
    let next = client
        .put("/storage/bookmarks/bm99999", &bookmark(99_999))
        .await;
    let newest = stored.values().copied().fold(0.0, f64::max);
    assert!(next.assert(200).json().as_f64().unwrap() > newest);
}

#[test]
fn backup_of_a_server_database_points_at_its_own_tools() {
    let dir = tempfile::tempdir().unwrap();
    let env = [(
        "SYNC_SYNCSTORAGE__DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    )];
    let output = syncserver(dir.path(), &["backup", "copy"], &env)
        .output()
        .unwrap();
    assert!(failed(&output).contains("pg_dump"));
    assert!(!dir.path().join("copy").exists());
}

/// A backup of a server that ran, and a fresh folder to restore it into.
async fn backed_up() -> (tempfile::TempDir, std::path::PathBuf) {
    let server = Server::start(SYNCSERVER).await;
    token(&server.url, FXA_UID, 1, &[7; 16]).await;
    let backup = tempfile::tempdir().unwrap();
    let target = backup.path().join("copy");
    let output = syncserver(
        server.dir.path(),
        &["backup", target.to_str().unwrap()],
        &[],
    )
    .output()
    .unwrap();
    succeeded(&output);
    (backup, target)
}

#[tokio::test]
async fn restore_refuses_what_sqlite_would_apply_to_the_copy() {
    let (_backup, target) = backed_up().await;
    let fresh = tempfile::tempdir().unwrap();
    let data = fresh.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // An old write-ahead log beside where the copy would go.
    std::fs::write(data.join("tokenserver.db-wal"), b"old").unwrap();
    let env = [("SYNC_DATA_DIR", data.to_str().unwrap())];
    let output = syncserver(fresh.path(), &["restore", target.to_str().unwrap()], &env)
        .output()
        .unwrap();
    assert!(failed(&output).contains("tokenserver.db-wal exists"));
    assert!(!data.join("syncstorage.db").exists());
}

#[tokio::test]
async fn a_restore_that_cannot_finish_places_nothing() {
    let (_backup, target) = backed_up().await;
    let fresh = tempfile::tempdir().unwrap();
    let data = fresh.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("master_secret"), "another\n").unwrap();
    let env = [("SYNC_DATA_DIR", data.to_str().unwrap())];
    let output = syncserver(fresh.path(), &["restore", target.to_str().unwrap()], &env)
        .output()
        .unwrap();
    assert!(failed(&output).contains("differs from the backup's"));
    let left: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("master_secret")]);
}
