//! Clients that vanish mid-request (half-close or close 0–5 ms after
//! sending) during writes, deletes and batch commits: each abandoned write
//! is all-or-nothing, and afterwards everyone's writes succeed at once and
//! the heartbeat is green. Before the fix, a request dropped inside a
//! transaction left a pooled connection in it, and every later write failed.

use std::collections::HashMap;
use std::time::Duration;

use integration_tests::raw::{in_waves, moment, Vanish};
use reqwest::Method;

use crate::support::{bsos, Client, TestServer};

/// Abandoned requests of each kind, per user (a user keeps at most 32
/// open batches).
const ROUNDS: usize = 30;
/// Users whose clients vanish.
const VANISHING_USERS: u64 = 12;
/// Records each abandoned request writes or deletes.
const RECORDS: usize = 20;

/// Prepares what the abandoned deletes and commits act on; returns the
/// batch ids to commit.
async fn prepare(user: &Client) -> Vec<String> {
    let mut batches = Vec::new();
    for i in 0..ROUNDS {
        user.post("/storage/doomed", bsos(&format!("d{i}_"), 0..RECORDS))
            .await
            .assert(200);
        let created = user
            .call(Method::POST, "/storage/batched?batch=true")
            .json(&bsos(&format!("b{i}_"), 0..RECORDS / 2))
            .send()
            .await;
        created.assert(202);
        batches.push(created.json()["batch"].as_str().unwrap().to_owned());
    }
    for i in 0..ROUNDS / 4 {
        user.post(&format!("/storage/whole{i}"), bsos("w", 0..RECORDS))
            .await
            .assert(200);
    }
    batches
}

/// Every abandoned request, one kind after another, interleaved in waves.
fn abandoned_calls(user: &Client, batches: &[String]) -> Vec<crate::support::Call> {
    let mut calls = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        calls.push(
            user.call(Method::POST, "/storage/written")
                .json(&bsos(&format!("p{i}_"), 0..RECORDS)),
        );
        let ids: Vec<String> = (0..RECORDS).map(|j| format!("d{i}_{j}")).collect();
        calls.push(user.call(
            Method::DELETE,
            &format!("/storage/doomed?ids={}", ids.join(",")),
        ));
        calls.push(
            user.call(
                Method::POST,
                &format!("/storage/batched?batch={batch}&commit=true"),
            )
            .json(&bsos(&format!("b{i}_"), RECORDS / 2..RECORDS)),
        );
        if i < ROUNDS / 4 {
            calls.push(user.call(Method::DELETE, &format!("/storage/whole{i}")));
        }
    }
    calls
}

/// Records per id prefix (`p3_`, `d3_`, …) in a collection.
async fn counts_by_prefix(user: &Client, collection: &str) -> HashMap<String, usize> {
    let ids = user
        .get(&format!("/storage/{collection}"))
        .await
        .assert(200)
        .json();
    let mut counts = HashMap::new();
    for id in ids.as_array().unwrap() {
        let id = id.as_str().unwrap();
        let prefix = &id[..=id.find('_').unwrap()];
        *counts.entry(prefix.to_owned()).or_insert(0) += 1;
    }
    counts
}

#[track_caller]
fn assert_all_or_nothing(counts: &HashMap<String, usize>, what: &str) {
    for (prefix, n) in counts {
        assert_eq!(*n, RECORDS, "{what} {prefix}: half applied ({n} records)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_vanish_mid_request_change_nothing_but_their_own_request() {
    let server = TestServer::spawn().await;
    let vanishing: Vec<Client> = (0..VANISHING_USERS).map(|n| server.user(10 + n)).collect();
    let mut calls = Vec::new();
    let mut batches = Vec::new();
    for user in &vanishing {
        let opened = prepare(user).await;
        calls.extend(abandoned_calls(user, &opened));
        batches.push(opened);
    }
    let vanishing_calls = calls.into_iter().enumerate();
    in_waves(vanishing_calls.map(|(i, call)| call.abandon(moment(), Vanish::alternating(i)))).await;
    // Whatever the server still does for them, it does promptly.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Everyone writes at once, promptly (no 500, no 30 s wait for a lost
    // connection), the vanished users included.
    for uid in [1, 2, 10, 10 + VANISHING_USERS - 1] {
        let user = server.user(uid);
        for n in 0..10 {
            let path = format!("/storage/after{n}");
            let write = user.post(&path, bsos("a_", 0..3));
            let reply = tokio::time::timeout(Duration::from_secs(10), write)
                .await
                .unwrap_or_else(|_| panic!("user {uid}: write {n} hung"));
            reply.assert(200);
            user.delete(&path).await.assert(200);
        }
    }
    let heartbeat = server.get_raw("/__heartbeat__").await;
    assert_eq!(heartbeat.status, 200, "{}", heartbeat.text);

    for (user, batches) in vanishing.iter().zip(&batches) {
        assert_whole_or_nothing(user, batches).await;
    }
}

/// Each abandoned write of `user` happened whole or not at all.
async fn assert_whole_or_nothing(user: &Client, batches: &[String]) {
    assert_all_or_nothing(&counts_by_prefix(user, "written").await, "POST");
    let committed_early = counts_by_prefix(user, "batched").await;
    assert_all_or_nothing(&committed_early, "commit");
    assert_all_or_nothing(&counts_by_prefix(user, "doomed").await, "DELETE ids");
    for i in 0..ROUNDS / 4 {
        let left = user.get(&format!("/storage/whole{i}")).await;
        let n = left.assert(200).json().as_array().unwrap().len();
        assert!(n == 0 || n == RECORDS, "DELETE whole{i}: {n} records left");
    }
    // A batch whose commit was abandoned is either committed (and gone) or
    // still open with its first half, and committable.
    for (i, batch) in batches.iter().enumerate() {
        if committed_early.contains_key(&format!("b{i}_")) {
            continue;
        }
        user.call(
            Method::POST,
            &format!("/storage/batched?batch={batch}&commit=true"),
        )
        .json(&bsos(&format!("b{i}_"), RECORDS / 2..RECORDS))
        .send()
        .await
        .assert(200);
    }
    let committed = counts_by_prefix(user, "batched").await;
    assert_eq!(committed.len(), ROUNDS, "every batch commits exactly once");
    assert_all_or_nothing(&committed, "late commit");
}
