//! Pages too large to send whole are streamed from their read transaction
//! as the client takes them: complete and in order in both formats, and a
//! client that leaves or stops reading gives its database connection back.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::support::{Client, TestServer};

/// Writes `count` records `big00…` with `bytes`-long payloads and
/// sortindex = number, a few per POST.
async fn fill(user: &Client, count: usize, bytes: usize) {
    let per_post = (2_000_000 / bytes).clamp(1, 100);
    for first in (0..count).step_by(per_post) {
        let records: Vec<Value> = (first..count.min(first + per_post))
            .map(|i| json!({"id": format!("big{i:02}"), "payload": payload(i, bytes), "sortindex": i}))
            .collect();
        user.post("/storage/big", json!(records)).await.assert(200);
    }
}

/// Record `i`'s payload: its number, then filler with a newline and quotes
/// (escaped in both formats).
fn payload(i: usize, bytes: usize) -> String {
    let mut p = format!("{i:02}\n\"");
    p.push_str(&"z".repeat(bytes - p.len()));
    p
}

fn records_of(text: &str, accept: &str) -> Vec<Value> {
    match accept {
        "application/json" => serde_json::from_str::<Vec<Value>>(text).unwrap(),
        _ => {
            assert!(text.is_empty() || text.ends_with('\n'));
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }
}

#[tokio::test]
async fn pages_too_large_to_send_whole_stream_complete_and_in_order_in_both_formats() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    // 300 KB records: a streamed page reads 27 per query, so pages of 30
    // take two.
    let (count, bytes) = (40, 300_000);
    fill(&user, count, bytes).await;
    let expected: Vec<String> = (0..count).rev().map(|i| format!("big{i:02}")).collect();
    for accept in ["application/json", "application/newlines"] {
        for full in [true, false] {
            let mut seen = Vec::new();
            let mut offset: Option<String> = None;
            loop {
                let mut path = String::from("/storage/big?sort=index&limit=30");
                if full {
                    path.push_str("&full=1");
                }
                if let Some(token) = &offset {
                    path.push_str(&format!("&offset={token}"));
                }
                let page = user
                    .call(Method::GET, &path)
                    .header("Accept", accept)
                    .send()
                    .await;
                page.assert(200);
                assert_eq!(page.header("content-type").as_deref(), Some(accept));
                let records = records_of(&page.text, accept);
                assert_eq!(
                    page.header("x-weave-records"),
                    Some(records.len().to_string())
                );
                if full && seen.is_empty() {
                    assert_eq!(
                        page.header("content-length"),
                        None,
                        "2.5 MB go out streamed"
                    );
                } else if !full {
                    assert!(page.header("content-length").is_some(), "ids go out whole");
                }
                seen.extend(records);
                offset = page.header("x-weave-next-offset");
                if offset.is_none() {
                    break;
                }
            }
            let ids: Vec<&str> = seen
                .iter()
                .map(|r| if full { r["id"].as_str() } else { r.as_str() }.unwrap())
                .collect();
            assert_eq!(ids, expected, "{accept}, full={full}");
            if full {
                for (record, i) in seen.iter().zip((0..count).rev()) {
                    assert_eq!(record["payload"], Value::from(payload(i, bytes)));
                    assert_eq!(record["sortindex"], Value::from(i));
                    assert!(record["modified"].is_number());
                }
            }
        }
    }
}

/// The node with one database connection: a page that kept its read
/// transaction would hold up every later request.
async fn node_with_one_connection(send_timeout_seconds: u64) -> TestServer {
    TestServer::spawn_with(|config| {
        config.syncstorage.database_max_connections = 1;
        config.connections.send_timeout_seconds = send_timeout_seconds;
    })
    .await
}

/// A page far larger than the sockets' buffers: 20 MB.
const BIG: (usize, usize) = (40, 500_000);

/// A raw GET of the big page once its headers have come (so it streams);
/// the rest is left unread.
async fn started_big_page(user: &Client) -> tokio::net::TcpStream {
    let mut socket = user.call(Method::GET, "/storage/big?full=1").open().await;
    let mut start = vec![0u8; 1024];
    socket.read_exact(&mut start).await.unwrap();
    assert!(start.starts_with(b"HTTP/1.1 200"));
    socket
}

/// Another user can write and read.
async fn assert_others_served(server: &TestServer) {
    let other = server.user(2);
    other
        .post("/storage/c", json!([{"id": "a", "payload": "x"}]))
        .await
        .assert(200);
    other.get("/storage/c?full=1").await.assert(200);
}

/// Everyone is served, and the big page is still whole.
async fn assert_node_serves(server: &TestServer, owner: &Client) {
    assert_others_served(server).await;
    let page = owner.get("/storage/big").await;
    assert_eq!(page.assert(200).json().as_array().unwrap().len(), BIG.0);
}

#[tokio::test]
async fn a_client_that_leaves_mid_page_gives_its_read_transaction_back() {
    let server = node_with_one_connection(60).await;
    let user = server.user(1);
    fill(&user, BIG.0, BIG.1).await;
    for _ in 0..3 {
        let mut socket = user.call(Method::GET, "/storage/big?full=1").open().await;
        let mut start = vec![0u8; 64 * 1024];
        socket.read_exact(&mut start).await.unwrap();
        assert!(start.starts_with(b"HTTP/1.1 200"));
    }
    assert_node_serves(&server, &user).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_and_gives_its_read_transaction_back() {
    let server = node_with_one_connection(1).await;
    let user = server.user(1);
    fill(&user, BIG.0, BIG.1).await;
    let mut stalled = started_big_page(&user).await;
    assert_node_serves(&server, &user).await;
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut received));
    let ended = read
        .await
        .expect("the server closed the stalled connection");
    assert!(
        ended.is_err() || received.len() < BIG.0 * BIG.1,
        "the stalled client was cut off before the end of its page"
    );
}

#[tokio::test]
async fn large_pages_stream_from_half_the_pool_and_wait_their_turn_holding_nothing() {
    // Two connections: one may stream, the other is everyone else's.
    let server = TestServer::spawn_with(|config| {
        config.syncstorage.database_max_connections = 2;
    })
    .await;
    let user = server.user(1);
    fill(&user, BIG.0, BIG.1).await;
    let streaming = started_big_page(&user).await;
    let waiting = {
        let user = user.clone();
        tokio::spawn(async move { user.get("/storage/big?full=1").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_others_served(&server).await;
    assert!(
        !waiting.is_finished(),
        "the second large page waits for the stream"
    );
    drop(streaming);
    let page = waiting.await.unwrap();
    assert_eq!(page.assert(200).json().as_array().unwrap().len(), BIG.0);
}

#[tokio::test]
async fn a_large_page_of_ids_streams_complete_and_in_order() {
    let server = TestServer::spawn().await;
    let user = server.user(1);
    // 5,000 ids of the longest size: a body of 335 KB.
    let id = |i: usize| format!("{i:05}{}", "i".repeat(59));
    for first in (0..5_000).step_by(100) {
        let records: Vec<Value> = (first..first + 100)
            .map(|i| json!({"id": id(i), "payload": "x", "sortindex": i}))
            .collect();
        user.post("/storage/ids", json!(records)).await.assert(200);
    }
    let page = user.get("/storage/ids?sort=index").await;
    page.assert(200);
    assert_eq!(
        page.header("content-length"),
        None,
        "335 KB go out streamed"
    );
    assert_eq!(page.header("x-weave-records").as_deref(), Some("5000"));
    let expected: Vec<Value> = (0..5_000).rev().map(|i| Value::from(id(i))).collect();
    assert_eq!(page.json(), Value::from(expected));
}
