//! Who may sync on the all-in-one (ADR 0014): the first start says how to
//! restrict it, and `syncserver access` restricts a running server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use integration_tests::fxa::access_token;
use integration_tests::sync_client::{get_token, Reply};
use support::{Server, SYNCSERVER};

const ALICE: &str = "a11ce000000000000000000000000001";
const BOB: &str = "b0b00000000000000000000000000002";
const HINT: &str = "To keep it for your household";

async fn ask(server: &Server, fxa_uid: &str) -> Reply {
    let url = format!("{}/1.0/sync/1.5", server.url);
    get_token(&url, &access_token(fxa_uid, Some(1)), "1-qqo").await
}

fn hints(server: &Server) -> usize {
    server.log().iter().filter(|l| l.contains(HINT)).count()
}

/// Waits up to 10 s for `done`.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_open_server_says_how_to_restrict_it_and_access_does() {
    let mut server = Server::start(SYNCSERVER).await;
    eventually("the first start explains how to restrict it", async || {
        hints(&server) == 1
    })
    .await;
    ask(&server, BOB).await.assert(200);

    let output = Command::new(SYNCSERVER)
        .args(["access", "allow", ALICE])
        .current_dir(server.dir.path())
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
    assert!(stdout.contains(ALICE), "{stdout}");

    eventually("the running server refuses Bob", async || {
        ask(&server, BOB).await.status == 403
    })
    .await;
    ask(&server, ALICE).await.assert(200);

    // Restricted, a restart says nothing more of it.
    server.stop();
    server.spawn(&[]).await;
    ask(&server, ALICE).await.assert(200);
    assert_eq!(hints(&server), 1, "{:?}", server.log());
}
