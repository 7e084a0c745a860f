//! Paging through 1,000+ records with every sort order: every record once,
//! in order, including ties on timestamps and sortindexes.

use serde_json::{json, Value};

use crate::support::{ms_of, Client, TestServer};

const RECORDS: usize = 1_050;

/// Uploads RECORDS records in POSTs of 100 (so 100 share each timestamp),
/// with sortindexes that repeat and some that are absent.
async fn upload(user: &Client) {
    let items: Vec<Value> = (0..RECORDS)
        .map(|i| {
            let mut bso = json!({"id": format!("r{i:04}"), "payload": format!("p{i}")});
            if i % 7 != 0 {
                bso["sortindex"] = json!((i % 13) as i64 - 6);
            }
            bso
        })
        .collect();
    for chunk in items.chunks(100) {
        user.post("/storage/history", Value::Array(chunk.to_vec()))
            .await
            .assert(200);
    }
}

/// Every record (full) following X-Weave-Next-Offset with pages of `limit`.
async fn page_all(user: &Client, query: &str, limit: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let mut offset: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/storage/history?full=1&limit={limit}&{query}");
        if let Some(o) = &offset {
            path.push_str(&format!("&offset={o}"));
        }
        let page = user.get(&path).await;
        page.assert(200);
        let items = page.json().as_array().unwrap().clone();
        assert!(items.len() <= limit);
        assert_eq!(
            page.header("x-weave-records"),
            Some(items.len().to_string())
        );
        all.extend(items);
        pages += 1;
        assert!(pages <= RECORDS + 1, "paging does not terminate");
        match page.header("x-weave-next-offset") {
            Some(next) => offset = Some(next),
            None => return all,
        }
    }
}

fn ids(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn sort_key(record: &Value) -> i64 {
    record["sortindex"].as_i64().unwrap_or(i64::MIN)
}

#[tokio::test]
async fn paging_with_every_sort_order_returns_every_record_once_in_order() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    upload(&user).await;
    let everything = user.get("/storage/history?full=1").await.json();
    let everything = everything.as_array().unwrap().clone();
    assert_eq!(everything.len(), RECORDS);

    let mut newest = everything.clone();
    newest.sort_by(|a, b| {
        (ms_of(&b["modified"]), b["id"].as_str()).cmp(&(ms_of(&a["modified"]), a["id"].as_str()))
    });
    let mut oldest = newest.clone();
    oldest.reverse();
    let mut index = everything.clone();
    index.sort_by(|a, b| (sort_key(b), b["id"].as_str()).cmp(&(sort_key(a), a["id"].as_str())));

    for (query, expected) in [
        ("sort=newest", &newest),
        ("sort=oldest", &oldest),
        ("sort=index", &index),
    ] {
        for limit in [1, 37, 100, 1_000] {
            if limit == 1 && query != "sort=index" {
                continue; // one full walk at limit 1 is enough
            }
            let paged = page_all(&user, query, limit).await;
            assert_eq!(ids(&paged), ids(expected), "{query} limit={limit}");
        }
    }
    // The default order pages completely too.
    let default = page_all(&user, "", 64).await;
    assert_eq!(ids(&default), ids(&newest));
}

#[tokio::test]
async fn paging_composes_with_newer_and_ids_only_listings() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    upload(&user).await;
    let all = user.get("/storage/history?full=1&sort=oldest").await.json();
    let cutoff = &all.as_array().unwrap()[500]["modified"];
    let newer = page_all(&user, &format!("sort=oldest&newer={cutoff}"), 45).await;
    assert!(newer.iter().all(|r| ms_of(&r["modified"]) > ms_of(cutoff)));
    assert_eq!(newer.len(), RECORDS - 600);
    // Id-only pages.
    let mut seen = Vec::new();
    let mut path = "/storage/history?limit=300&sort=index".to_owned();
    loop {
        let page = user.get(&path).await;
        let batch: Vec<String> = serde_json::from_value(page.json()).unwrap();
        seen.extend(batch);
        match page.header("x-weave-next-offset") {
            Some(next) => path = format!("/storage/history?limit=300&sort=index&offset={next}"),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), RECORDS);
}

#[tokio::test]
async fn an_offset_for_another_sort_or_garbage_is_400() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    upload(&user).await;
    let page = user.get("/storage/history?limit=10&sort=index").await;
    let offset = page.header("x-weave-next-offset").unwrap();
    assert!(offset
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    user.get(&format!(
        "/storage/history?limit=10&sort=newest&offset={offset}"
    ))
    .await
    .assert(400);
    user.get("/storage/history?limit=10&offset=%21%21")
        .await
        .assert(400);
}

#[tokio::test]
async fn an_unlimited_get_is_capped_at_max_total_records_with_an_offset() {
    let server = TestServer::spawn_with(|c| c.syncstorage.limits.max_total_records = 500).await;
    let user = server.user(1);
    upload(&user).await;
    let page = user.get("/storage/history").await;
    assert_eq!(page.json().as_array().unwrap().len(), 500);
    assert!(page.header("x-weave-next-offset").is_some());
}
