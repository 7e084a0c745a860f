//! A request is served once: not again after the node restarts, nor by
//! another replica of the same node (ADR 0009). Replicas share the replay
//! cache in the Redis server at `SYNC_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`); an unreachable one fails the tests.

use std::time::Duration;

use reqwest::Method;
use sync_common::db_url::DatabaseUrl;
use syncstorage::Config;

use crate::support::{now, Auth, Client, TestServer};

/// `SYNC_TEST_REDIS_URL`, or the Redis these machines run.
fn redis_url() -> String {
    std::env::var("SYNC_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn shared_replay_cache(config: &mut Config) {
    config.syncstorage.replay_cache_url = Some(DatabaseUrl::new(redis_url()));
}

/// A signed `GET /info/collections`, as an eavesdropper would capture it.
fn captured(user: &Client) -> String {
    user.call(Method::GET, "/info/collections")
        .authorization()
        .unwrap()
}

async fn send(user: &Client, authorization: &str) -> u16 {
    user.call(Method::GET, "/info/collections")
        .auth(Auth::Raw(authorization.to_owned()))
        .send()
        .await
        .status
}

async fn next_second() {
    let this = now();
    while now() == this {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Another process serving `server`'s URL on its database: a restart of
/// it, or a second replica.
async fn same_node(server: &TestServer, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let url = server.origin();
    server
        .spawn_beside_with(|config| {
            config.public_url = Some(url);
            adjust(config);
        })
        .await
}

#[tokio::test]
async fn a_request_replayed_after_a_restart_is_401() {
    let before = TestServer::spawn().await;
    let user = before.user(1);
    let request = captured(&user);
    assert_eq!(send(&user, &request).await, 200);

    // The restarted process remembers nothing of the old one's nonces, and
    // may start within the second the request was signed.
    let after = same_node(&before, |_| {}).await;
    drop(before);
    let user = user.sending_to(&after);
    assert_eq!(send(&user, &request).await, 401, "the replay is refused");
    next_second().await;
    user.get("/info/collections").await.assert(200);
}

#[tokio::test]
async fn a_request_replayed_to_another_replica_or_after_a_restart_is_401_with_a_shared_cache() {
    let first = TestServer::spawn_with(shared_replay_cache).await;
    let user = first.user(1);
    let request = captured(&user);
    let early = captured(&user);
    let second = same_node(&first, shared_replay_cache).await;
    assert_eq!(send(&user, &request).await, 200);
    let at_second = user.clone().sending_to(&second);
    assert_eq!(
        send(&at_second, &request).await,
        401,
        "replayed to a replica"
    );

    // A restart: the cache is Redis's, so requests signed before it still
    // pass once, and replays do not.
    next_second().await;
    let restarted = same_node(&first, shared_replay_cache).await;
    drop(first);
    let at_restarted = user.sending_to(&restarted);
    assert_eq!(
        send(&at_restarted, &request).await,
        401,
        "replayed after a restart"
    );
    assert_eq!(
        send(&at_restarted, &early).await,
        200,
        "signed before, sent once"
    );
    assert_eq!(send(&at_second, &early).await, 401);
}

#[tokio::test]
async fn an_unreachable_replay_cache_is_503_and_the_heartbeat_says_so() {
    let port = integration_tests::unreachable_url()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let server = TestServer::spawn_with(|config| {
        config.syncstorage.replay_cache_url =
            Some(DatabaseUrl::new(format!("redis://127.0.0.1:{port}")));
    })
    .await;
    let reply = server.user(1).get("/info/collections").await;
    reply.assert(503);
    assert!(reply.header("retry-after").is_some());
    assert_eq!(reply.text, "0");
    let heartbeat = server.get_raw("/__heartbeat__").await;
    heartbeat.assert(503);
    let body: serde_json::Value = serde_json::from_str(&heartbeat.text).unwrap();
    assert_eq!(body["replay_cache"], "Err");
    assert_eq!(body["database"], "Ok");
}
