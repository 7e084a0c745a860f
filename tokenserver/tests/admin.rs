//! The operator command line, run as the real binary against a database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn tokenserver(db: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_tokenserver"))
        .args(args)
        .env_clear()
        .env(
            "SYNC_TOKENSERVER__DATABASE_URL",
            format!("sqlite:{}", db.display()),
        )
        .env("SYNC_LOG_LEVEL", "warn")
        .output()
        .unwrap();
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[track_caller]
fn ok(db: &Path, args: &[&str]) -> String {
    let run = tokenserver(db, args);
    assert!(run.ok, "{args:?} failed: {}", run.stderr);
    run.stdout
}

#[track_caller]
fn fails(db: &Path, args: &[&str]) -> String {
    let run = tokenserver(db, args);
    assert!(!run.ok, "{args:?} should fail: {}", run.stdout);
    run.stderr
}

#[test]
fn nodes_can_be_added_listed_updated_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ts.db");
    let added = ok(
        &db,
        &[
            "node",
            "add",
            "https://node-1.example.com",
            "--capacity",
            "50",
        ],
    );
    assert!(
        added.contains("added node https://node-1.example.com"),
        "{added}"
    );
    let duplicate = fails(&db, &["node", "add", "https://node-1.example.com"]);
    assert!(duplicate.contains("already exists"), "{duplicate}");
    let bad = fails(&db, &["node", "add", "node-1.example.com"]);
    assert!(bad.contains("not a node URL"), "{bad}");
    let updated = ok(
        &db,
        &[
            "node",
            "update",
            "https://node-1.example.com",
            "--capacity",
            "80",
            "--downed",
            "true",
        ],
    );
    assert!(
        updated.contains("80") && updated.contains("downed"),
        "{updated}"
    );
    let list = ok(&db, &["node", "list"]);
    assert!(list.contains("https://node-1.example.com"), "{list}");
    let missing = fails(&db, &["node", "remove", "https://nowhere.example.com"]);
    assert!(missing.contains("no node"), "{missing}");
    ok(&db, &["node", "remove", "https://node-1.example.com"]);
    assert!(!ok(&db, &["node", "list"]).contains("node-1"));
}

#[test]
fn users_can_be_allocated_shown_counted_drained_and_purged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ts.db");
    ok(&db, &["node", "add", "https://a.example.com"]);
    ok(&db, &["node", "add", "https://b.example.com"]);
    let allocated = ok(&db, &["user", "allocate", "fxa1", "https://a.example.com"]);
    assert!(
        allocated.contains("allocated fxa1@api.accounts.firefox.com to https://a.example.com"),
        "{allocated}"
    );
    ok(
        &db,
        &[
            "user",
            "allocate",
            "fxa2@api.accounts.firefox.com",
            "https://a.example.com",
        ],
    );
    assert_eq!(ok(&db, &["user", "count"]).trim(), "2");
    assert_eq!(
        ok(&db, &["user", "count", "--node", "https://a.example.com"]).trim(),
        "2"
    );
    // Moving a user replaces their old record.
    ok(&db, &["user", "allocate", "fxa1", "https://b.example.com"]);
    let shown = ok(&db, &["user", "show", "fxa1"]);
    assert_eq!(shown.lines().count(), 2, "{shown}");
    assert!(
        shown
            .lines()
            .next()
            .unwrap()
            .contains("https://b.example.com")
            && shown.contains("replaced at"),
        "{shown}"
    );
    assert!(fails(&db, &["user", "show", "nobody"]).contains("no user"));
    let drained = ok(&db, &["node", "drain", "https://a.example.com"]);
    assert!(drained.contains("1 users move"), "{drained}");
    assert_eq!(
        ok(&db, &["user", "count", "--node", "https://a.example.com"]).trim(),
        "0"
    );
    assert!(ok(&db, &["node", "list"]).contains("backoff"));
    // Two records are replaced now (fxa1's move, fxa2's drain).
    let purged = ok(
        &db,
        &["purge-replaced", "--older-than-days", "0", "--skip-data"],
    );
    assert!(purged.contains("purged 2 replaced records"), "{purged}");
    assert_eq!(ok(&db, &["user", "show", "fxa1"]).lines().count(), 1);
}

#[test]
fn commands_other_than_node_add_need_an_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("typo.db");
    let error = fails(&db, &["user", "show", "someone"]);
    assert!(error.contains("no tokenserver database"), "{error}");
    assert!(!db.exists(), "a mistyped path is not created");
    ok(&db, &["migrate"]);
    assert!(db.exists());
}

#[test]
fn purging_with_data_deletion_needs_the_master_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ts.db");
    ok(&db, &["migrate"]);
    let error = fails(&db, &["purge-replaced", "--older-than-days", "30"]);
    assert!(error.contains("master secret"), "{error}");
}

#[test]
fn an_unusable_database_url_is_a_readable_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_tokenserver"))
        .args(["node", "list"])
        .env_clear()
        .env("SYNC_TOKENSERVER__DATABASE_URL", "redis://localhost")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unsupported database URL"));
}
