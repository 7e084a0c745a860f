//! The courier's bookkeeping (ADR 0012); delivery to real nodes is tested
//! in the multinode suite.

use std::sync::Arc;

use tokenserver::db::now_ms;
use tokenserver::revocations::{Courier, OverHttp};
use tokenserver::TokenserverConfig;

use crate::support::{TestTokenserver, NODE};

#[tokio::test]
async fn revocations_whose_tokens_all_expired_are_dropped_undelivered() {
    // The server's own courier waits: this test runs the rounds.
    let ts =
        TestTokenserver::spawn_with(|c| c.tokenserver.revocation_interval_seconds = 3600).await;
    let settings = TokenserverConfig::default();
    let two_hours_ago = now_ms() - 2 * 3600 * 1000;
    let mut db = ts.connect_db().await;
    db.execute(&format!(
        "INSERT INTO node_revocations (service, node, uid, created_at) \
         SELECT id, '{NODE}', 42, {two_hours_ago} FROM services"
    ))
    .await;
    let postbox = OverHttp::new(&settings, &[ts.secret.as_str()]).unwrap();
    let courier = Courier::new(ts.store.clone(), Arc::new(postbox), &settings);
    let delivery = courier.deliver().await.unwrap();
    assert_eq!((delivery.delivered, delivery.expired), (0, 1));
    assert!(delivery.failed.is_empty(), "{:?}", delivery.failed);
    assert!(ts
        .store
        .pending_revocations(NODE, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn revocations_for_a_node_that_does_not_answer_wait() {
    let ts =
        TestTokenserver::spawn_with(|c| c.tokenserver.revocation_interval_seconds = 3600).await;
    let unreachable = integration_tests::unreachable_url();
    ts.store
        .add_node(&unreachable, 10, false, false)
        .await
        .unwrap();
    ts.store.revoke_node_tokens(&unreachable).await.unwrap();
    let settings = TokenserverConfig::default();
    let postbox = OverHttp::new(&settings, &[ts.secret.as_str()]).unwrap();
    let courier = Courier::new(ts.store.clone(), Arc::new(postbox), &settings);
    let delivery = courier.deliver().await.unwrap();
    assert_eq!(delivery.failed.len(), 1);
    let waiting = ts
        .store
        .pending_revocations(&unreachable, 10)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].epoch, Some(1));
}
