//! End to end, as Firefox does it: the `syncserver` binary started the way
//! the README says (no settings but FxA's key, data under `./data`), a token
//! from the tokenserver, then meta/global, crypto/keys and 500 history
//! records through the storage node with the token's HAWK credentials,
//! read back with `newer`; then a key reset lands on a new, empty storage.
//!
//! `SYNC_E2E_SERVER=http://host:port` runs the same flow against a server
//! you started yourself, configured with the test FxA key:
//! `SYNC_TOKENSERVER__FXA_OAUTH_PRIMARY_JWK='<integration-tests/src/fxa_test_keys.json primary.jwk>'`;
//! for a tokenserver with storage nodes apart, `SYNC_E2E_NODES` lists the
//! nodes' URLs (comma-separated) the tokens may point at.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use integration_tests::fxa::access_token;
use integration_tests::sync_client::{get_token, SyncClient};
use serde_json::{json, Value};
use support::{key_id, token, Server, SYNCSERVER};

/// For `SYNC_E2E_SERVER`: a server we did not start.
async fn wait_for_external(url: &str) {
    for _ in 0..1200 {
        if reqwest::get(format!("{url}/__heartbeat__"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no server answers at {url}");
}

fn history(i: usize) -> Value {
    json!({"id": format!("hist{i:04}"), "payload": format!("{{\"ciphertext\":\"h{i}\",\"IV\":\"iv\",\"hmac\":\"00\"}}"), "sortindex": i})
}

/// Uploads 500 history records as Firefox does: a batch of 100-record POSTs.
async fn upload_history(client: &SyncClient) -> f64 {
    let records: Vec<Value> = (0..500).map(history).collect();
    let chunks: Vec<&[Value]> = records.chunks(100).collect();
    let first = client
        .post("/storage/history?batch=true", &json!(chunks[0]))
        .await;
    let first = first.assert(202).json();
    assert_eq!(first["success"].as_array().unwrap().len(), 100);
    let batch = first["batch"].as_str().unwrap().to_owned();
    for chunk in &chunks[1..4] {
        let reply = client
            .post(&format!("/storage/history?batch={batch}"), &json!(chunk))
            .await;
        assert!(reply.assert(202).json()["failed"]
            .as_object()
            .unwrap()
            .is_empty());
    }
    let commit = client
        .post(
            &format!("/storage/history?batch={batch}&commit=true"),
            &json!(chunks[4]),
        )
        .await;
    commit.assert(200).json()["modified"].as_f64().unwrap()
}

/// Reads the whole collection newer than `since`, following offsets.
async fn read_history(client: &SyncClient, since: f64) -> Vec<Value> {
    let mut all = Vec::new();
    let mut offset: Option<String> = None;
    loop {
        let mut path = format!("/storage/history?full=1&newer={since:.2}&sort=oldest&limit=200");
        if let Some(o) = &offset {
            path.push_str(&format!("&offset={o}"));
        }
        let reply = client.get(&path).await;
        all.extend(reply.assert(200).json().as_array().unwrap().iter().cloned());
        offset = reply.header("x-weave-next-offset");
        if offset.is_none() {
            return all;
        }
    }
}

/// Whether `endpoint` is on the server under test: `server` itself, or
/// with `SYNC_E2E_NODES=URL,URL` (a tokenserver and storage nodes apart),
/// one of those nodes.
fn on_a_node_of(server: &str, endpoint: &str) -> bool {
    match std::env::var("SYNC_E2E_NODES") {
        Ok(nodes) => nodes
            .split(',')
            .any(|node| endpoint.starts_with(&format!("{}/", node.trim_end_matches('/')))),
        Err(_) => endpoint.starts_with(server),
    }
}

/// What Firefox does on first sync, then after a key reset.
async fn sync_like_firefox(server: &str) {
    let fxa_uid = hex::encode(rand::random::<[u8; 16]>());
    let client = token(server, &fxa_uid, 1000, &[0xaa; 16]).await;
    assert!(
        on_a_node_of(server, &client.endpoint),
        "{} is on this server",
        client.endpoint
    );
    assert_eq!(
        client.get("/info/collections").await.assert(200).json(),
        json!({})
    );

    let meta = json!({"id": "global", "payload": "{\"syncID\":\"abcdefghijkl\",\"storageVersion\":5,\"engines\":{}}"});
    client.put("/storage/meta/global", &meta).await.assert(200);
    let keys =
        json!({"id": "keys", "payload": "{\"ciphertext\":\"k\",\"IV\":\"iv\",\"hmac\":\"00\"}"});
    client.put("/storage/crypto/keys", &keys).await.assert(200);
    let before = client.get("/info/collections").await.json()["crypto"]
        .as_f64()
        .unwrap();

    let committed = upload_history(&client).await;
    let read = read_history(&client, before).await;
    assert_eq!(read.len(), 500);
    let ids: Vec<String> = read
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..500).map(|i| format!("hist{i:04}")).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    assert!(
        read.iter()
            .all(|b| b["modified"].as_f64().unwrap() == committed),
        "one commit, one timestamp"
    );
    assert!(
        read_history(&client, committed).await.is_empty(),
        "nothing is newer than the commit"
    );
    let got = client.get("/storage/meta/global").await.assert(200).json();
    assert_eq!(got["payload"], meta["payload"]);
    let collections = client.get("/info/collections").await.json();
    for name in ["meta", "crypto", "history"] {
        assert!(collections.get(name).is_some(), "{name} in {collections}");
    }

    // The user resets their sync key: a new client state, newer generation.
    let reset = token(server, &fxa_uid, 2000, &[0xbb; 16]).await;
    assert_ne!(reset.uid, client.uid, "a key change means a new uid");
    assert_eq!(
        reset.get("/info/collections").await.assert(200).json(),
        json!({})
    );
    assert_eq!(
        reset.get("/storage/history").await.assert(200).json(),
        json!([])
    );
    // The old keys are refused from now on.
    let stale = get_token(
        &format!("{server}/1.0/sync/1.5"),
        &access_token(&fxa_uid, Some(2000)),
        &key_id(1000, &[0xaa; 16]),
    )
    .await;
    assert_eq!(stale.status, 401);
}

#[tokio::test]
async fn firefox_syncs_through_the_all_in_one_server() {
    if let Ok(url) = std::env::var("SYNC_E2E_SERVER") {
        let url = url.trim_end_matches('/');
        wait_for_external(url).await;
        return sync_like_firefox(url).await;
    }
    let mut server = Server::start(SYNCSERVER).await;
    sync_like_firefox(&server.url).await;

    // The generated master secret is kept: a restart on the same address
    // serves the same users with the same credentials.
    let secret_file = server.dir.path().join("data/master_secret");
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "only the server's user may read the secret"
        );
    }
    let client = token(&server.url, "restart", 1, &[1; 16]).await;
    client
        .put(
            "/storage/meta/global",
            &json!({"id": "global", "payload": "x"}),
        )
        .await
        .assert(200);
    let port = server.port();
    server.stop();
    server.spawn(&[("SYNC_PORT", &port)]).await;
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret);
    let got = client.get("/storage/meta/global").await.assert(200).json();
    assert_eq!(got["payload"], "x");

    // A new public URL renames the node: the same uid, the same data.
    let old_url = server.url.clone();
    server.stop();
    server.spawn(&[("SYNC_PORT", "0")]).await;
    assert_ne!(server.url, old_url);
    let moved = token(&server.url, "restart", 1, &[1; 16]).await;
    assert!(moved.endpoint.starts_with(&server.url));
    assert_eq!(moved.uid, client.uid);
    let got = moved.get("/storage/meta/global").await.assert(200).json();
    assert_eq!(got["payload"], "x");
}
