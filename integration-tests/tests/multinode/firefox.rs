//! A real Firefox (ESR, headless, driven through Marionette) moved by a
//! live migration: it follows the old node's 401 to the new node, finds
//! its data there and uploads none of it again; a second device signed in
//! afterwards gets every bookmark from the new node.

use std::collections::BTreeMap;

use integration_tests::cluster::Cluster;
use integration_tests::db::TestBackend;
use integration_tests::firefox::{Account, Firefox};
use integration_tests::fxa::FakeFxa;
use serde_json::Value;

/// The node a sync ended on, from Sync's cluster URL
/// (`<node>/1.5/<uid>/`).
fn node_synced_with(cluster: &Cluster, attempts: &[Value]) -> usize {
    let url = attempts.last().unwrap()["cluster"].as_str().unwrap();
    cluster
        .nodes
        .iter()
        .position(|n| url.starts_with(&format!("{}/1.5/", n.url())))
        .unwrap_or_else(|| panic!("Firefox synced with {url}, no node of this cluster"))
}

/// Records uploaded to `collection` between two counts.
fn uploaded(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    collection: &str,
) -> f64 {
    after.get(collection).copied().unwrap_or(0.0) - before.get(collection).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn firefox_follows_a_migration_without_uploading_again() {
    let fxa = FakeFxa::spawn().await;
    let account = Account::random();
    fxa.sign_in(&account.fxa_uid);
    let backend = TestBackend::from_env();
    let fxa_env = [("SYNC_TOKENSERVER__FXA_OAUTH_SERVER_URL", fxa.url.as_str())];
    let cluster = Cluster::start(&[backend, backend], &fxa_env, &[]).await;
    let tokenserver = cluster.tokenserver.url.clone();

    // Desktop: 50 bookmarks, then sign in; the first sync uploads them.
    let mut desktop = Firefox::start(&fxa.url, &tokenserver).await;
    let titles: Vec<String> = (0..50).map(|i| format!("moved bookmark {i}")).collect();
    desktop.add_bookmarks("Before the move", &titles).await;
    let first = desktop.sign_in(&account).await;
    let old = node_synced_with(&cluster, &first);
    let new = 1 - old;
    let first_uploads = cluster.nodes[old].uploads().await;
    assert!(
        first_uploads.get("bookmarks").copied().unwrap_or(0.0) >= titles.len() as f64,
        "the first sync uploaded {first_uploads:?}"
    );

    let out = cluster.admin(&[
        "node",
        "migrate",
        cluster.nodes[old].url(),
        cluster.nodes[new].url(),
    ]);
    assert!(
        out.contains("migrated 1 users") && out.contains("; 0 failed"),
        "{out}"
    );
    let before = cluster.nodes[new].uploads().await;

    // Desktop again: the old node refuses its token, it follows the new
    // token to the new node and syncs incrementally there.
    let after_move = desktop.sync().await;
    assert_eq!(
        node_synced_with(&cluster, &after_move),
        new,
        "{after_move:#?}"
    );
    let after = cluster.nodes[new].uploads().await;
    for collection in ["bookmarks", "meta", "crypto"] {
        assert_eq!(
            uploaded(&before, &after, collection),
            0.0,
            "after the move Firefox uploaded {collection} again: {after:?}"
        );
    }
    println!("uploads to the new node by the moved desktop: {after:?}");

    // A second device signs in afterwards and gets everything from the
    // new node.
    let mut laptop = Firefox::start(&fxa.url, &tokenserver).await;
    let joined = laptop.sign_in(&account).await;
    assert_eq!(node_synced_with(&cluster, &joined), new);
    let seen = laptop.bookmark_titles().await;
    for title in &titles {
        assert!(
            seen.contains(title),
            "the second device lacks {title:?}: {seen:?}"
        );
    }
    let calls = fxa.browser_calls();
    println!("FxA calls besides tokens: {calls:?}");

    desktop.quit().await;
    laptop.quit().await;
}
