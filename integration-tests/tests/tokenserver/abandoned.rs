//! Clients that vanish mid-request (half-close or close 0–5 ms after
//! sending) during first token requests (allocations) and key changes:
//! each abandoned change is all-or-nothing, and afterwards everyone gets
//! a token at once and the heartbeat is green.

use std::time::Duration;

use integration_tests::raw::{in_waves, moment, Vanish};

use crate::support::{TestTokenserver, NODE};

/// Users whose clients vanish on their first request, and as many on a
/// key change.
const USERS: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_vanish_mid_request_change_nothing_but_their_own_request() {
    let ts = TestTokenserver::spawn_with(|c| c.tokenserver.init_node_capacity = 10_000).await;
    for n in 0..USERS {
        ts.request(&format!("k{n}"), Some(1), "1-qqo")
            .send()
            .await
            .ok();
    }
    let mut calls = Vec::new();
    for n in 0..USERS {
        calls.push(ts.request(&format!("new{n}"), Some(1), "1-qqo"));
        calls.push(ts.request(&format!("k{n}"), Some(2), "2-u7s"));
    }
    let vanishing_calls = calls.into_iter().enumerate();
    in_waves(vanishing_calls.map(|(i, call)| call.abandon(moment(), Vanish::alternating(i)))).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Everyone gets a token promptly: new users (an allocation each),
    // known ones, and those who vanished.
    for who in ["after0", "after1", "k0", "new0", "after2"] {
        let request = ts.request(who, Some(3), "3-3u4").send();
        let reply = tokio::time::timeout(Duration::from_secs(10), request)
            .await
            .unwrap_or_else(|_| panic!("{who}: token request hung"));
        reply.ok();
    }
    let heartbeat = reqwest::get(format!("{}/__heartbeat__", ts.url))
        .await
        .unwrap();
    assert_eq!(heartbeat.status(), 200);

    // Whole or nothing: one live record per user, and the node's load
    // counts exactly the users allocated to it.
    for n in 0..USERS {
        for who in [format!("new{n}"), format!("k{n}")] {
            let records = ts.records(&who).await;
            let live = records.iter().filter(|r| r.replaced_at.is_none()).count();
            assert!(records.is_empty() || live == 1, "{who}: {records:?}");
        }
    }
    let node = ts.store.nodes().await.unwrap();
    let node = node.iter().find(|n| n.node == NODE).unwrap();
    let users = ts.store.count_users(Some(NODE)).await.unwrap();
    assert_eq!(u64::try_from(node.current_load).unwrap(), users);
}
