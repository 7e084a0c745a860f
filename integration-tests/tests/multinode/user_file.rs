//! `tokenserver export USER FILE` and `import-user FILE`: one user's data
//! as a file, read while they sync, restored on another deployment (and
//! backend) or in place after a wipe; the user's devices find everything
//! with its timestamps, and a failed import changes nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use integration_tests::cluster::{within, Cluster};
use integration_tests::db::TestBackend;
use integration_tests::process::token;
use integration_tests::sync_client::SyncClient;
use reqwest::Method;
use serde_json::{json, Value};

use crate::migration::{fill, observed};

/// What a client observes, but the tab that expires within seconds.
async fn lasting(client: &SyncClient) -> Value {
    let mut seen = observed(client).await;
    seen["records"].as_object_mut().unwrap().remove("tabs");
    seen
}

fn export(cluster: &Cluster, user: &str, file: &Path) -> String {
    let out = cluster.admin(&["export", user, file.to_str().unwrap()]);
    assert!(out.contains("exported"), "{out}");
    out
}

fn import(cluster: &Cluster, file: &Path) -> String {
    let out = cluster.admin(&["import-user", file.to_str().unwrap()]);
    assert!(out.contains("imported"), "{out}");
    out
}

fn lines(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn other_backend(backend: TestBackend) -> TestBackend {
    match backend {
        TestBackend::Sqlite => TestBackend::Postgres,
        TestBackend::Postgres => TestBackend::MySql,
        TestBackend::MySql => TestBackend::Sqlite,
    }
}

fn file_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("user.jsonl")
}

#[tokio::test]
async fn an_exported_user_moves_to_another_deployment_and_syncs_on() {
    let backend = TestBackend::from_env();
    let old = Cluster::start(&[backend], &[], &[]).await;
    let new = Cluster::start(&[other_backend(backend)], &[], &[]).await;
    let client = old.client("mover").await;
    // More bookmarks than one page of the node's export.
    fill(&client, 2_500).await;
    let before = lasting(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let file = file_in(&dir);
    export(&old, "mover", &file);
    let refused = old.admin_run(&["export", "mover", file.to_str().unwrap()]);
    assert!(!refused.0 && refused.1.contains("exists"), "{}", refused.1);
    let written = lines(&file);
    assert_eq!(written[0]["collections"]["bookmarks"]["records"], 2_500);
    let tab = written.iter().find(|l| l["id"] == "t1").unwrap();
    // Its TTL of 4 s, counted from the write (the node's clock, not
    // quite the record's timestamp).
    let ttl = tab["expiry"].as_i64().unwrap() - tab["modified"].as_i64().unwrap();
    assert!(
        (3_000..=4_000).contains(&ttl),
        "the tab's expiry came along: {ttl}"
    );

    let out = import(&new, &file);
    assert!(!out.contains("replacing"), "{out}");
    let moved = new.client("mover").await;
    assert_eq!(lasting(&moved).await, before, "everything as it was");
    // An incremental sync finds nothing new, and writing goes on after
    // the imported timestamps.
    let since = before["info"]["bookmarks"].as_f64().unwrap();
    let newer = moved
        .get(&format!("/storage/bookmarks?newer={since}"))
        .await;
    assert_eq!(newer.json(), json!([]));
    let put = moved
        .put("/storage/bookmarks/later", &json!({"payload": "new"}))
        .await;
    assert_eq!(put.status, 200);
    assert!(put.json().as_f64().unwrap() > since);
}

#[tokio::test]
async fn a_wiped_user_is_restored_in_place_and_their_devices_follow() {
    let cluster = Cluster::start(&[TestBackend::from_env()], &[], &[]).await;
    let client = cluster.client("wiped").await;
    fill(&client, 300).await;
    let before = lasting(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let file = file_in(&dir);
    export(&cluster, "wiped", &file);
    // A device wipes the server.
    assert_eq!(client.send(Method::DELETE, "", None).await.status, 200);

    let out = import(&cluster, &file);
    assert!(
        out.contains(&format!("replacing uid {}", client.uid)),
        "{out}"
    );
    within(
        Duration::from_secs(10),
        "the old token is refused",
        || async { client.get("/info/collections").await.status == 401 },
    )
    .await;
    let restored = cluster.client("wiped").await;
    assert_ne!(restored.uid, client.uid, "a new uid, so devices resync");
    assert_eq!(lasting(&restored).await, before);
    // Run again, it restores again (the file is unchanged).
    import(&cluster, &file);
    let again = cluster.client("wiped").await;
    assert_eq!(lasting(&again).await, before);
}

#[tokio::test]
async fn a_refused_import_changes_nothing() {
    let cluster = Cluster::start(&[TestBackend::from_env()], &[], &[]).await;
    let client = cluster.client("kept").await;
    fill(&client, 1_200).await;
    let dir = tempfile::tempdir().unwrap();
    let file = file_in(&dir);
    export(&cluster, "kept", &file);
    client
        .put(
            "/storage/history/newer",
            &json!({"payload": "after the export"}),
        )
        .await
        .assert(200);
    let now = lasting(&client).await;

    // Cut short: half of the bookmarks.
    let text = std::fs::read_to_string(&file).unwrap();
    let short = dir.path().join("short.jsonl");
    let keep: Vec<&str> = text.lines().take(600).collect();
    std::fs::write(&short, keep.join("\n")).unwrap();
    let (ok, out) = cluster.admin_run(&["import-user", short.to_str().unwrap()]);
    assert!(!ok && out.contains("cut short"), "{out}");
    let same = cluster.client("kept").await;
    assert_eq!(same.uid, client.uid, "the user kept their record");
    assert_eq!(lasting(&same).await, now, "and their data");
    // The record the import staged counts for nobody.
    assert_eq!(cluster.admin(&["user", "count"]).trim(), "1");

    // The account's keys changed since: the file is not theirs to read.
    let rekeyed = token(&cluster.tokenserver.url, "kept", 2, &[8; 16]).await;
    let (ok, out) = cluster.admin_run(&["import-user", file.to_str().unwrap()]);
    assert!(!ok && out.contains("other keys"), "{out}");
    let current = token(&cluster.tokenserver.url, "kept", 2, &[8; 16]).await;
    assert_eq!(current.uid, rekeyed.uid, "the account kept its record");

    // Not an export at all.
    let foreign = dir.path().join("foreign.jsonl");
    std::fs::write(&foreign, "{\"hello\": 1}\n").unwrap();
    let (ok, out) = cluster.admin_run(&["import-user", foreign.to_str().unwrap()]);
    assert!(!ok && out.contains("not a user export"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_taken_while_the_user_writes_is_consistent() {
    let cluster = Cluster::start(&[TestBackend::from_env()], &[], &[]).await;
    let client = cluster.client("busy").await;
    fill(&client, 3_000).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writing = stop.clone();
    // Writes into the largest collection all along, retrying when held.
    let writer = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        let mut i = 0;
        while !writing.load(std::sync::atomic::Ordering::Relaxed) {
            let id = format!("w{i:05}");
            let path = format!("/storage/bookmarks/{id}");
            let reply = client.put(&path, &json!({"payload": id})).await;
            match reply.status {
                200 => {
                    acknowledged.push((id, reply.json().as_f64().unwrap()));
                    i += 1;
                }
                503 => tokio::time::sleep(Duration::from_millis(20)).await,
                other => panic!("a write got {other}"),
            }
        }
        acknowledged
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = file_in(&dir);
    let out = tokio::task::block_in_place(|| export(&cluster, "busy", &file));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acknowledged = writer.await.unwrap();
    println!(
        "{} writes during the export; {}",
        acknowledged.len(),
        out.trim()
    );

    // The file holds the collection exactly as of its timestamp: every
    // write acknowledged by then, none after.
    let written = lines(&file);
    let modified = written[0]["collections"]["bookmarks"]["modified"]
        .as_i64()
        .unwrap();
    let ids: std::collections::HashSet<&str> = written[1..]
        .iter()
        .filter(|l| l["collection"] == "bookmarks")
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    for (id, at) in &acknowledged {
        let at = (at * 1000.0).round() as i64;
        assert_eq!(
            ids.contains(id.as_str()),
            at <= modified,
            "{id} written at {at}, the export's bookmarks are as of {modified}"
        );
    }
    assert_eq!(
        written[0]["collections"]["bookmarks"]["records"],
        ids.len(),
        "the header counts what the file holds"
    );
}
