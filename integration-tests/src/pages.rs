//! Large collections, for the memory test and its benchmark: one user
//! with records of nearly the largest size, one with 10,000 records of
//! 2 KB (a 20 MB page), both written through the server.

use serde_json::json;

use crate::process::{token, Server};
use crate::sync_client::{Counted, SyncClient};

pub const LARGE_PAYLOAD: usize = 2_500_000;
pub const SMALL_RECORDS: usize = 10_000;
pub const SMALL_PAYLOAD: usize = 2_000;
/// Each record's serialized start, counted in the bodies.
pub const MARKER: &[u8] = b"{\"id\":";

/// The owners of the large and the small collection.
pub async fn users(server: &Server) -> (SyncClient, SyncClient) {
    (
        token(&server.url, "large", 1, b"large-keys-00000").await,
        token(&server.url, "small", 1, b"small-keys-00000").await,
    )
}

/// Stores `large_records` in `large` (one per POST: each is nearly a whole
/// POST's worth) and `SMALL_RECORDS` in `small`, a hundred per POST.
pub async fn fill((large, small): &(SyncClient, SyncClient), large_records: usize) {
    for i in 0..large_records {
        let record = json!([{"id": format!("large{i:04}"), "payload": "x".repeat(LARGE_PAYLOAD)}]);
        large.post("/storage/large", &record).await.assert(200);
    }
    for chunk in 0..SMALL_RECORDS / 100 {
        let records: Vec<_> = (0..100)
            .map(|i| json!({"id": format!("small{chunk:03}-{i:02}"), "payload": "y".repeat(SMALL_PAYLOAD)}))
            .collect();
        let reply = small.post("/storage/small", &json!(records)).await;
        assert_eq!(reply.ok()["success"].as_array().unwrap().len(), 100);
    }
}

/// The large collection in one GET.
pub async fn get_large(large: &SyncClient) -> Counted {
    large.get_counted("/storage/large?full=1", MARKER).await
}

/// Four GETs at once of the small collection's 20 MB page.
pub async fn get_small_four_at_once(small: &SyncClient) -> Vec<Counted> {
    let path = format!("/storage/small?full=1&limit={SMALL_RECORDS}");
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (small, path) = (small.clone(), path.clone());
            tokio::spawn(async move { small.get_counted(&path, MARKER).await })
        })
        .collect();
    let mut pages = Vec::new();
    for task in tasks {
        pages.push(task.await.unwrap());
    }
    pages
}
