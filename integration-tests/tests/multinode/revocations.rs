//! Moves take effect at once (ADR 0012): the node a user left refuses the
//! old token within seconds, on every process serving it, also when it was
//! down at the time of the move.

use std::time::Duration;

use integration_tests::cluster::{binary, within, Cluster};
use integration_tests::db::TestBackend;
use integration_tests::fxa::access_token;
use integration_tests::process::{key_id, Server};
use integration_tests::sync_client::{get_token, SyncClient};
use reqwest::Method;
use serde_json::json;
use sync_common::revocation::Notice;
use sync_common::token::TokenSecrets;
use tokenserver::node_client::{JsonBody, NodeClient};
use tokenserver::revocations::{OverHttp, Postbox};

/// The default configuration's promise: a move reaches the node in 10 s.
const MOVE_DEADLINE: Duration = Duration::from_secs(10);

async fn two_nodes() -> Cluster {
    let backend = TestBackend::from_env();
    Cluster::start(&[backend, backend], &[], &[]).await
}

async fn writes(client: &SyncClient) -> u16 {
    let bso = json!({"payload": "x"});
    client.put("/storage/bookmarks/a", &bso).await.status
}

async fn refused(client: &SyncClient) -> bool {
    client.get("/info/collections").await.status == 401
}

#[tokio::test]
async fn an_unassigned_user_is_refused_by_the_old_node_within_seconds() {
    let cluster = two_nodes().await;
    let old = cluster.client("mover").await;
    assert_eq!(writes(&old).await, 200);
    let node = cluster.node_of(&old);
    let out = cluster.admin(&["node", "unassign", cluster.nodes[node].url()]);
    assert!(out.contains("refuse the old tokens now"), "{out}");
    let took = within(MOVE_DEADLINE, "the old token refused", || refused(&old)).await;
    println!("unassign reached the old node in {took:?}");
    assert_eq!(writes(&old).await, 401, "a write with the old token");
    // The next token is a new record: served, with the old one still refused.
    let new = cluster.client("mover").await;
    assert_ne!(new.uid, old.uid);
    assert_eq!(writes(&new).await, 200);
    assert!(refused(&old).await);
}

#[tokio::test]
async fn a_key_reset_refuses_the_old_uid_and_serves_the_new() {
    let cluster = two_nodes().await;
    let url = format!("{}/1.0/sync/1.5", cluster.tokenserver.url);
    let old = SyncClient::from_token(
        &get_token(
            &url,
            &access_token("resetter", Some(1)),
            &key_id(1, &[1; 16]),
        )
        .await
        .assert(200)
        .json(),
    );
    assert_eq!(writes(&old).await, 200);
    let new = SyncClient::from_token(
        &get_token(
            &url,
            &access_token("resetter", Some(2)),
            &key_id(2, &[2; 16]),
        )
        .await
        .assert(200)
        .json(),
    );
    assert_ne!(new.uid, old.uid);
    within(MOVE_DEADLINE, "the old uid refused", || refused(&old)).await;
    assert_eq!(writes(&new).await, 200);
}

#[tokio::test]
async fn drain_now_refuses_every_token_of_the_node_and_later_tokens_work() {
    let cluster = two_nodes().await;
    let old = cluster.client("drained").await;
    let node = cluster.node_of(&old);
    let url = cluster.nodes[node].url().to_owned();
    let out = cluster.admin(&["node", "drain", &url, "--now"]);
    assert!(out.contains("every token issued for"), "{out}");
    within(MOVE_DEADLINE, "the old token refused", || refused(&old)).await;
    // A user placed there after the drain gets a token of the new epoch.
    cluster.admin(&["user", "allocate", "placed", &url]);
    let placed = cluster.client("placed").await;
    assert_eq!(cluster.node_of(&placed), node);
    assert_eq!(writes(&placed).await, 200);
    // The drained user's next token is for the other node.
    let moved = cluster.client("drained").await;
    assert_ne!(cluster.node_of(&moved), node);
    assert_eq!(writes(&moved).await, 200);
}

#[tokio::test]
async fn a_downed_node_refuses_its_tokens_so_clients_come_back_and_move() {
    let cluster = two_nodes().await;
    let old = cluster.client("downed").await;
    let node = cluster.node_of(&old);
    let url = cluster.nodes[node].url().to_owned();
    cluster.admin(&["node", "update", &url, "--downed", "true"]);
    within(MOVE_DEADLINE, "the old token refused", || refused(&old)).await;
    let moved = cluster.client("downed").await;
    assert_ne!(cluster.node_of(&moved), node);
    assert_eq!(writes(&moved).await, 200);
}

#[tokio::test]
async fn a_node_that_was_down_refuses_the_old_token_once_it_is_back() {
    let mut cluster = two_nodes().await;
    let old = cluster.client("patient").await;
    assert_eq!(writes(&old).await, 200);
    let node = cluster.node_of(&old);
    let other = 1 - node;
    cluster.nodes[node].kill();
    let to = cluster.nodes[other].url().to_owned();
    let out = cluster.admin(&["user", "allocate", "patient", &to]);
    assert!(out.contains("revocations wait for"), "{out}");
    cluster.nodes[node].restart().await;
    let took = within(
        MOVE_DEADLINE,
        "the old token refused after the restart",
        || refused(&old),
    )
    .await;
    println!("the restarted node refused the old token {took:?} after it was back");
}

#[tokio::test]
async fn every_process_serving_a_node_refuses_the_old_token() {
    let cluster = two_nodes().await;
    let old = cluster.client("replicated").await;
    let node = &cluster.nodes[cluster.node_of(&old)];
    // A second process of the same node: its database, its public URL.
    let replica = Server::start_service(
        &binary("syncstorage"),
        &[
            ("SYNC_MASTER_SECRET", &cluster.secret),
            ("SYNC_SYNCSTORAGE__DATABASE_URL", &node.db.url),
            ("SYNC_PUBLIC_URL", node.url()),
        ],
    )
    .await;
    let through_replica = || old.send_via(&replica.url, Method::GET, "/info/collections");
    assert_eq!(through_replica().await.status, 200);
    cluster.admin(&["node", "unassign", node.url()]);
    let took = within(
        MOVE_DEADLINE,
        "the replica refused the old token",
        || async { through_replica().await.status == 401 },
    )
    .await;
    println!("the replica refused the old token after {took:?}");
}

#[tokio::test]
async fn only_the_tokenserver_can_revoke() {
    let cluster = two_nodes().await;
    let user = cluster.client("bystander").await;
    let node = cluster.nodes[cluster.node_of(&user)].url().to_owned();
    let path = sync_common::revocation::PATH;
    // No signature, or a user's token: refused.
    let unsigned = reqwest::Client::new()
        .post(format!("{node}{path}"))
        .json(&json!({"node": node, "uids": [user.uid], "until": u32::MAX}))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let notice = json!({"node": node, "uids": [user.uid], "until": u32::MAX});
    let as_user = user
        .send_to(Method::POST, &format!("{node}{path}"), Some(&notice))
        .await;
    assert_eq!(as_user.status, 401);
    assert_eq!(writes(&user).await, 200);
    // Signed by the tokenserver, but naming another node, or not a notice.
    let nodes = tokenserver_client(&cluster);
    let other = cluster
        .nodes
        .iter()
        .find(|n| n.url() != node)
        .unwrap()
        .url();
    let misdirected = json!({"node": other, "uids": [user.uid], "until": u32::MAX});
    for body in [misdirected.to_string(), "{\"node\":".to_owned()] {
        let sent = nodes
            .send(
                "test",
                &node,
                0,
                Method::POST,
                path,
                Some(JsonBody(body.into_bytes())),
            )
            .await
            .unwrap();
        assert_eq!(sent.status(), 400);
    }
    assert_eq!(writes(&user).await, 200, "nothing was revoked");
    // Signed and addressed: taken at once by the process that took it.
    let notice = Notice {
        node: node.clone(),
        uids: vec![user.uid],
        until: u64::from(u32::MAX),
        epoch: None,
    };
    tokenserver_postbox(&cluster).post(&notice).await.unwrap();
    assert!(refused(&user).await);
}

fn tokenserver_client(cluster: &Cluster) -> NodeClient {
    let secrets = TokenSecrets::new(&[cluster.secret.as_str()]).unwrap();
    NodeClient::new(secrets, Duration::from_secs(5)).unwrap()
}

fn tokenserver_postbox(cluster: &Cluster) -> OverHttp {
    OverHttp::new(
        &tokenserver::TokenserverConfig::default(),
        &[&cluster.secret],
    )
    .unwrap()
}
