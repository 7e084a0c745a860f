//! Purging replaced records deletes their data on the real storage node
//! first, and keeps records whose node cannot be reached.

use integration_tests::fxa::access_token;
use integration_tests::sync_client::{get_token, SyncClient};
use serde_json::json;
use sync_common::db_url::DatabaseUrl;
use sync_common::secret::Secret;
use sync_common::token::TokenSecrets;
use tokenserver::purge::{purge_replaced, DataPolicy, OverHttp, PurgeReport};
use tokio::net::TcpListener;

use crate::support::TestTokenserver;

/// A storage node sharing `secret`, on a loopback port; returns its URL.
async fn storage_node(secret: &str, dir: &std::path::Path) -> String {
    let mut config = syncstorage::Config {
        master_secret: Secret::new(secret),
        ..syncstorage::Config::default()
    };
    config.syncstorage.database_url =
        DatabaseUrl::new(format!("sqlite:{}", dir.join("storage.db").display()));
    config.syncstorage.purge_interval_seconds = 0;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        syncstorage::serve(config, listener, std::future::pending())
            .await
            .unwrap();
    });
    // Ready once it answers: a request signed while the node starts is
    // refused as possibly served before a restart (ADR 0009).
    reqwest::get(format!("{url}/__heartbeat__")).await.unwrap();
    url
}

async fn client(ts: &TestTokenserver, fxa_uid: &str, key_id: &str, generation: i64) -> SyncClient {
    let reply = get_token(
        &format!("{}/1.0/sync/1.5", ts.url),
        &access_token(fxa_uid, Some(generation)),
        key_id,
    )
    .await;
    SyncClient::from_token(&reply.assert(200).json())
}

#[tokio::test]
async fn a_purge_deletes_the_replaced_uids_data_on_its_node() {
    let dir = tempfile::tempdir().unwrap();
    let secret = hex::encode(rand::random::<[u8; 16]>());
    let node = storage_node(&secret, dir.path()).await;
    let ts = TestTokenserver::spawn_with(|c| {
        c.master_secret = Secret::new(secret.clone());
        c.tokenserver.init_node_url = Some(node.clone());
    })
    .await;
    let old = client(&ts, "purged", "10-qqo", 10).await;
    old.put(
        "/storage/meta/global",
        &json!({"id": "global", "payload": "old keys"}),
    )
    .await
    .assert(200);
    // A key reset: the old uid's data is garbage from now on.
    let new = client(&ts, "purged", "20-u7s", 20).await;
    new.put(
        "/storage/meta/global",
        &json!({"id": "global", "payload": "new keys"}),
    )
    .await
    .assert(200);

    let nodes = OverHttp::new(TokenSecrets::new(&[secret.as_str()]).unwrap()).unwrap();
    let future = tokenserver::db::now_ms() + 1_000;
    let report = purge_replaced(ts.store.as_ref(), future, 10, &DataPolicy::Delete(&nodes))
        .await
        .unwrap();
    assert_eq!(report, PurgeReport { purged: 1, kept: 0 });
    // The old credentials still authenticate; the data behind them is gone.
    old.get("/storage/meta/global").await.assert(404);
    assert_eq!(
        old.get("/info/collections").await.assert(200).json(),
        json!({})
    );
    let kept = new.get("/storage/meta/global").await.assert(200).json();
    assert_eq!(kept["payload"], "new keys");
    assert_eq!(ts.records("purged").await.len(), 1);
}

#[tokio::test]
async fn records_on_an_unreachable_node_are_kept_unless_data_is_skipped() {
    let dead = integration_tests::unreachable_url();
    let ts = TestTokenserver::spawn().await;
    ts.store.add_node(&dead, 10, false, false).await.unwrap();
    let keys = tokenserver::model::user::KeyState {
        generation: 1,
        keys_changed_at: Some(1),
        client_state: tokenserver::model::keys::ClientState::from_stored("aaaa"),
    };
    let email = "gone@api.accounts.firefox.com";
    let first = ts
        .store
        .allocate_user(
            email,
            &keys,
            Some(&dead),
            None,
            0.1,
            tokenserver::db::UserCap::Ignored,
        )
        .await
        .unwrap();
    let node = Some(crate::support::NODE);
    ts.store
        .allocate_user(
            email,
            &keys,
            node,
            Some(first.uid),
            0.1,
            tokenserver::db::UserCap::Ignored,
        )
        .await
        .unwrap();
    let nodes = OverHttp::new(TokenSecrets::new(&[ts.secret.as_str()]).unwrap()).unwrap();
    let future = tokenserver::db::now_ms() + 1_000;
    let report = purge_replaced(ts.store.as_ref(), future, 10, &DataPolicy::Delete(&nodes))
        .await
        .unwrap();
    assert_eq!(report, PurgeReport { purged: 0, kept: 1 });
    assert_eq!(ts.records("gone").await.len(), 2);
    // Once the node is removed, its records are still kept: no one could
    // delete their data any more, so the operator must say so.
    ts.store.remove_node(&dead).await.unwrap();
    let report = purge_replaced(ts.store.as_ref(), future, 10, &DataPolicy::Delete(&nodes))
        .await
        .unwrap();
    assert_eq!(report, PurgeReport { purged: 0, kept: 1 });
    let report = purge_replaced(ts.store.as_ref(), future, 10, &DataPolicy::Skip)
        .await
        .unwrap();
    assert_eq!(report, PurgeReport { purged: 1, kept: 0 });
    assert_eq!(ts.records("gone").await.len(), 1);
}
