//! A user with 100,000 history records: every sort order pages through all
//! of them, each exactly once and in order, with ties on the sort key broken
//! by id. (Each page's cost is shown by the query plans in
//! docs/operations.md; this checks correctness at size.)

use std::collections::HashSet;

use serde_json::Value;
use syncstorage::db::Uid;
use syncstorage::model::bso::{BsoId, BsoInput, CollectionName, Patch};
use syncstorage::model::precondition::Precondition;

use crate::support::TestServer;

const RECORDS: usize = 100_000;
const PER_WRITE: usize = 1_000;
const PAGE: usize = 1_000;

/// One stored record as the server orders it.
struct Row {
    id: String,
    modified: i64,
    sortkey: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_records_page_correctly_in_every_order() {
    let server = TestServer::spawn().await;
    let rows = fill_history(&server).await;
    let user = server.user(1);

    for (sort, descending, key) in [
        ("newest", true, (|r: &Row| r.modified) as fn(&Row) -> i64),
        ("oldest", false, |r: &Row| r.modified),
        ("index", true, |r: &Row| r.sortkey),
    ] {
        let mut expected: Vec<&Row> = rows.iter().collect();
        expected.sort_by(|a, b| (key(a), &a.id).cmp(&(key(b), &b.id)));
        if descending {
            expected.reverse();
        }
        let mut seen = Vec::with_capacity(RECORDS);
        let mut offset: Option<String> = None;
        loop {
            let mut path = format!("/storage/history?sort={sort}&limit={PAGE}");
            if let Some(token) = &offset {
                path.push_str(&format!("&offset={token}"));
            }
            let page = user.get(&path).await;
            page.assert(200);
            let ids = page.json();
            seen.extend(
                ids.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned()),
            );
            offset = page.header("x-weave-next-offset");
            if offset.is_none() {
                break;
            }
        }
        assert_eq!(seen.len(), RECORDS, "sort={sort}: wrong count");
        let distinct: HashSet<&String> = seen.iter().collect();
        assert_eq!(distinct.len(), RECORDS, "sort={sort}: a record came twice");
        for (i, (got, want)) in seen.iter().zip(&expected).enumerate() {
            assert_eq!(got, &want.id, "sort={sort}: wrong record at position {i}");
        }
    }
    let count = user.get("/info/collection_counts").await.json();
    assert_eq!(count["history"], Value::from(RECORDS));
}

/// Stores the records through the storage layer (fast), 1,000 per write so
/// a thousand rows share each timestamp, with sortindexes that repeat and
/// some absent.
async fn fill_history(server: &TestServer) -> Vec<Row> {
    let store = server.store().await;
    let history = CollectionName::parse("history").unwrap();
    let mut rows = Vec::with_capacity(RECORDS);
    for start in (0..RECORDS).step_by(PER_WRITE) {
        let mut writes = Vec::with_capacity(PER_WRITE);
        let mut sortkeys = Vec::with_capacity(PER_WRITE);
        for n in start..start + PER_WRITE {
            let sortindex = (n % 7 != 0).then(|| (n % 500) as i32 - 250);
            writes.push(BsoInput {
                id: BsoId::parse(&format!("h{:06x}", n.wrapping_mul(7919) % 1_000_003)).unwrap(),
                // Every field given: new rows need no lookup of stored ones.
                sortindex: sortindex.map_or(Patch::Reset, Patch::Set),
                payload: Patch::Set(format!("visit {n}")),
                ttl: Patch::Set(86_400),
            });
            sortkeys.push(sortindex.map_or(-1_000_000_000, i64::from));
        }
        let written = store
            .post_bsos(
                Uid::new(1).unwrap(),
                &history,
                writes.clone(),
                Precondition::None,
            )
            .await
            .unwrap();
        for (write, sortkey) in writes.iter().zip(sortkeys) {
            rows.push(Row {
                id: write.id.as_str().to_owned(),
                modified: written.modified.as_db(),
                sortkey,
            });
        }
    }
    rows
}
