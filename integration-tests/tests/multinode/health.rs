//! Dead nodes are noticed: the tokenserver checks each node's heartbeat,
//! stops giving a failing node users, brings it back when it answers, and
//! (with a grace period) moves its users.

use std::time::Duration;

use integration_tests::cluster::{within, Cluster};
use integration_tests::db::TestBackend;

/// Checks every second, a node down after two failures.
const FAST_CHECKS: [(&str, &str); 3] = [
    ("SYNC_TOKENSERVER__NODE_CHECK_INTERVAL_SECONDS", "1"),
    ("SYNC_TOKENSERVER__NODE_TIMEOUT_SECONDS", "1"),
    ("SYNC_TOKENSERVER__NODE_CHECK_FAILURES", "2"),
];

const NOTICED: Duration = Duration::from_secs(20);

async fn cluster(extra: &[(&str, &str)]) -> Cluster {
    let backend = TestBackend::from_env();
    let mut env = FAST_CHECKS.to_vec();
    env.extend_from_slice(extra);
    Cluster::start(&[backend, backend], &env, &[]).await
}

/// The `node list` line of `url`.
fn listed(cluster: &Cluster, url: &str) -> String {
    let list = cluster.admin(&["node", "list"]);
    list.lines()
        .find(|line| line.contains(&format!(" {url} ")))
        .unwrap_or_else(|| panic!("{url} is not listed:\n{list}"))
        .to_owned()
}

fn health_of(cluster: &Cluster, url: &str) -> String {
    let line = listed(cluster, url);
    let words: Vec<&str> = line.split_whitespace().collect();
    // id, node, capacity, load, available, users, health, …
    words[6].to_owned()
}

#[tokio::test]
async fn a_dead_node_gets_no_new_users_and_comes_back_when_it_answers() {
    let mut cluster = cluster(&[]).await;
    let dead = cluster.nodes[0].url().to_owned();
    within(NOTICED, "the first checks", || async {
        health_of(&cluster, &dead) == "ok"
    })
    .await;
    cluster.nodes[0].kill();
    let took = within(NOTICED, "the dead node marked down", || async {
        health_of(&cluster, &dead) == "down"
    })
    .await;
    println!("a killed node was marked down after {took:?}");
    let list = cluster.admin(&["node", "list"]);
    assert!(list.contains("last check failed"), "{list}");
    for i in 0..4 {
        let client = cluster.client(&format!("while-down-{i}")).await;
        assert_eq!(
            cluster.node_of(&client),
            1,
            "a new user went to the dead node"
        );
    }
    cluster.nodes[0].restart().await;
    within(NOTICED, "the node back in use", || async {
        health_of(&cluster, &dead) == "ok"
    })
    .await;
    // It is the least loaded now: the next new user goes there.
    let client = cluster.client("after").await;
    assert_eq!(cluster.node_of(&client), 0);
}

#[tokio::test]
async fn a_node_down_past_the_grace_period_has_its_users_moved() {
    let mut cluster = cluster(&[("SYNC_TOKENSERVER__NODE_DOWN_GRACE_SECONDS", "2")]).await;
    let old = cluster.client("stranded").await;
    let node = cluster.node_of(&old);
    cluster.nodes[node].kill();
    let took = within(NOTICED, "the user moved to the live node", || async {
        cluster.node_of(&cluster.client("stranded").await) != node
    })
    .await;
    println!("a dead node's user was moved {took:?} after the kill");
    // Back, the node refuses the token it served before.
    cluster.nodes[node].restart().await;
    within(NOTICED, "the old token refused", || async {
        old.get("/info/collections").await.status == 401
    })
    .await;
}

#[tokio::test]
async fn a_node_the_operator_downed_stays_downed_while_healthy() {
    let cluster = cluster(&[]).await;
    let url = cluster.nodes[0].url().to_owned();
    cluster.admin(&["node", "update", &url, "--downed", "true"]);
    // Two rounds of checks find it healthy; it stays downed.
    within(NOTICED, "checks of the downed node", || async {
        health_of(&cluster, &url) == "ok"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(listed(&cluster, &url).ends_with("downed"));
    for i in 0..3 {
        let client = cluster.client(&format!("new-{i}")).await;
        assert_eq!(cluster.node_of(&client), 1);
    }
}
