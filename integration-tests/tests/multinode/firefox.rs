//! A real Firefox (ESR, headless, driven through Marionette) moved between
//! nodes. Moved by a live migration, it follows the old node's 401 to the
//! new node, finds its data there and uploads none of it again, and a
//! second device signed in afterwards gets every bookmark from the new node.
//! Moved by a drain instead, it starts afresh and uploads everything: the
//! count that shows no upload sees them.

use std::collections::BTreeMap;

use integration_tests::cluster::Cluster;
use integration_tests::db::TestBackend;
use integration_tests::firefox::{Account, Firefox};
use integration_tests::fxa::FakeFxa;
use serde_json::Value;

/// A desktop signed in on one of two nodes, its bookmarks uploaded.
struct Desktop {
    fxa: FakeFxa,
    account: Account,
    cluster: Cluster,
    firefox: Firefox,
    titles: Vec<String>,
    /// The node it syncs with, and the other one.
    old: usize,
    new: usize,
}

impl Desktop {
    /// 50 bookmarks, then the sign-in; the first sync uploads them.
    async fn signed_in() -> Self {
        let fxa = FakeFxa::spawn().await;
        let account = Account::random();
        fxa.sign_in(&account.fxa_uid);
        let backend = TestBackend::from_env();
        let fxa_env = [("SYNC_TOKENSERVER__FXA_OAUTH_SERVER_URL", fxa.url.as_str())];
        let cluster = Cluster::start(&[backend, backend], &fxa_env, &[]).await;
        let mut firefox = Firefox::start(&fxa.url, &cluster.tokenserver.url).await;
        let titles: Vec<String> = (0..50).map(|i| format!("moved bookmark {i}")).collect();
        firefox.add_bookmarks("Before the move", &titles).await;
        let first = firefox.sign_in(&account).await;
        let old = node_synced_with(&cluster, &first);
        let uploaded = cluster.nodes[old].uploads().await;
        assert!(
            uploaded.get("bookmarks").copied().unwrap_or(0.0) >= titles.len() as f64,
            "the first sync uploaded {uploaded:?}"
        );
        Self {
            fxa,
            account,
            cluster,
            firefox,
            titles,
            old,
            new: 1 - old,
        }
    }

    /// Moves the user with the operator's `command` (`FROM` and `TO` stand
    /// for the nodes), then syncs; what the desktop uploaded to the new
    /// node, by collection.
    async fn moved_by(&mut self, command: &[&str]) -> BTreeMap<String, f64> {
        let (from, to) = (
            self.cluster.nodes[self.old].url(),
            self.cluster.nodes[self.new].url(),
        );
        let args: Vec<&str> = command
            .iter()
            .map(|a| match *a {
                "FROM" => from,
                "TO" => to,
                other => other,
            })
            .collect();
        // Migration imports are not counted: anything counted from here on
        // is the browser's.
        let before = self.cluster.nodes[self.new].uploads().await;
        let out = self.cluster.admin(&args);
        println!("{}", out.trim());
        let synced = self.firefox.sync().await;
        assert_eq!(
            node_synced_with(&self.cluster, &synced),
            self.new,
            "{synced:#?}"
        );
        let after = self.cluster.nodes[self.new].uploads().await;
        let uploaded = after
            .iter()
            .map(|(c, n)| (c.clone(), n - before.get(c).copied().unwrap_or(0.0)))
            .filter(|(_, n)| *n > 0.0)
            .collect();
        println!("{command:?}: the desktop uploaded {uploaded:?} to the new node");
        uploaded
    }
}

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

#[tokio::test]
async fn firefox_follows_a_migration_without_uploading_again() {
    let mut desktop = Desktop::signed_in().await;
    let uploaded = desktop.moved_by(&["node", "migrate", "FROM", "TO"]).await;
    for collection in ["bookmarks", "meta", "crypto"] {
        assert!(
            !uploaded.contains_key(collection),
            "after the migration Firefox uploaded {collection} again: {uploaded:?}"
        );
    }

    // A second device signs in afterwards and gets everything from the
    // new node.
    let mut laptop = Firefox::start(&desktop.fxa.url, &desktop.cluster.tokenserver.url).await;
    let joined = laptop.sign_in(&desktop.account).await;
    assert_eq!(node_synced_with(&desktop.cluster, &joined), desktop.new);
    let seen = laptop.bookmark_titles().await;
    for title in &desktop.titles {
        assert!(
            seen.contains(title),
            "the second device lacks {title:?}: {seen:?}"
        );
    }
    let unknown: Vec<String> = desktop
        .fxa
        .browser_calls()
        .into_iter()
        .filter(|c| c.ends_with(" 404"))
        .collect();
    assert!(
        unknown.is_empty(),
        "Firefox called FxA endpoints the stand-in lacks: {unknown:?}"
    );

    desktop.firefox.quit().await;
    laptop.quit().await;
}

#[tokio::test]
async fn firefox_moved_by_a_drain_uploads_everything_again() {
    let mut desktop = Desktop::signed_in().await;
    let uploaded = desktop.moved_by(&["node", "drain", "FROM", "--now"]).await;
    let bookmarks = uploaded.get("bookmarks").copied().unwrap_or(0.0);
    assert!(bookmarks >= desktop.titles.len() as f64, "{uploaded:?}");
    assert!(
        uploaded.contains_key("meta") && uploaded.contains_key("crypto"),
        "{uploaded:?}"
    );
    desktop.firefox.quit().await;
}
