//! Slow and idle clients against the `syncserver` process: headers that
//! never finish are cut off, kept-alive connections close when idle, and a
//! server limited to 1,024 open files keeps serving its real clients while
//! 1,100 slow ones try to hold it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use integration_tests::raw::{closed_within, http_request, read_answer, trickle};
use integration_tests::sync_client::SyncClient;
use support::{token, Server, SYNCSERVER};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What systemd gives a service unless its unit says otherwise.
const SYSTEMD_DEFAULT_OPEN_FILES: u32 = 1024;
const SLOW_CLIENTS: usize = 1100;
/// A real client waiting longer than this has been starved.
const STARVED: Duration = Duration::from_secs(5);

#[tokio::test]
async fn headers_sent_too_slowly_are_cut_off() {
    let server = Server::start_with(
        SYNCSERVER,
        &[("SYNC_CONNECTIONS__HEADER_READ_TIMEOUT_SECONDS", "2")],
        None,
    )
    .await;
    let until = Instant::now() + Duration::from_secs(6);
    let closed = trickle(&server.authority(), Duration::from_millis(300), until).await;
    assert!(
        (1..=3).contains(&closed),
        "a header a byte every 300 ms is cut off after 2 s: {closed} cut in 6 s"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_lives_until_idle_for_its_timeout() {
    let server = Server::start_with(
        SYNCSERVER,
        &[
            ("SYNC_CONNECTIONS__HEADER_READ_TIMEOUT_SECONDS", "1"),
            ("SYNC_CONNECTIONS__IDLE_TIMEOUT_SECONDS", "3"),
        ],
        None,
    )
    .await;
    let authority = server.authority();
    let request = http_request("GET", "/__lbheartbeat__", &authority, &[], b"");
    let mut socket = TcpStream::connect(&authority).await.unwrap();
    socket.write_all(&request).await.unwrap();
    assert!(read_answer(&mut socket)
        .await
        .unwrap()
        .starts_with("HTTP/1.1 200"));

    // Idle for longer than headers may take, less than the idle timeout.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    socket.write_all(&request).await.unwrap();
    let again = read_answer(&mut socket).await;
    assert!(
        again.is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "an idle connection is not a slow client"
    );

    let answered = Instant::now();
    assert!(
        closed_within(&mut socket, Duration::from_secs(10)).await,
        "an idle connection is closed"
    );
    assert!(
        answered.elapsed() >= Duration::from_secs(2),
        "not before its idle timeout ({:?})",
        answered.elapsed()
    );
}

#[tokio::test]
async fn a_full_server_makes_room_by_closing_the_slowest_connection() {
    let server = Server::start_with(
        SYNCSERVER,
        &[
            ("SYNC_CONNECTIONS__MAX_CONNECTIONS", "4"),
            ("SYNC_CONNECTIONS__HEADER_READ_TIMEOUT_SECONDS", "60"),
        ],
        None,
    )
    .await;
    let until = Instant::now() + Duration::from_secs(6);
    let slow: Vec<_> = (0..8)
        .map(|_| {
            let authority = server.authority();
            tokio::spawn(
                async move { trickle(&authority, Duration::from_millis(500), until).await },
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let client = token(&server.url, "room", 1, &[1; 16])
        .await
        .without_keep_alive();
    for _ in 0..5 {
        let reply = tokio::time::timeout(STARVED, client.get("/info/collections"))
            .await
            .expect("a new client is served at once");
        reply.assert(200);
    }
    let mut closed = 0;
    for task in slow {
        closed += task.await.unwrap();
    }
    assert!(closed >= 4, "slow connections made room: {closed} closed");
}

/// Requests `client` makes until `until`, with their latencies; a request
/// that waits past `STARVED` counts as starved.
async fn keep_syncing(client: SyncClient, until: Instant) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::new();
    let mut starved = 0;
    while Instant::now() < until {
        let start = Instant::now();
        match tokio::time::timeout(STARVED, client.get("/info/collections")).await {
            Ok(reply) => {
                reply.assert(200);
                latencies.push(start.elapsed());
            }
            Err(_) => starved += 1,
        }
    }
    (latencies, starved)
}

/// Eight clients, half of them opening a new connection per request.
async fn real_clients(server: &Server, for_how_long: Duration) -> (Vec<Duration>, usize) {
    let until = Instant::now() + for_how_long;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let client = token(&server.url, &format!("real{i}"), 1, &[1; 16]).await;
        let client = if i % 2 == 0 {
            client
        } else {
            client.without_keep_alive()
        };
        tasks.push(tokio::spawn(keep_syncing(client, until)));
    }
    let mut all = (Vec::new(), 0);
    for task in tasks {
        let (latencies, starved) = task.await.unwrap();
        all.0.extend(latencies);
        all.1 += starved;
    }
    all.0.sort();
    all
}

fn summary(latencies: &[Duration]) -> String {
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    format!(
        "{} requests, p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_starve_a_server_limited_to_1024_files() {
    let wanted = (SLOW_CLIENTS + 512) as u64;
    let have = rlimit::increase_nofile_limit(wanted).unwrap();
    assert!(
        have >= wanted,
        "the test needs {wanted} open files, has {have}"
    );
    let server = Server::start_with(SYNCSERVER, &[], Some(SYSTEMD_DEFAULT_OPEN_FILES)).await;
    let (before, _) = real_clients(&server, Duration::from_secs(2)).await;

    // The slow clients reconnect whenever they are cut off, so the server
    // stays under attack while the real clients sync.
    let until = Instant::now() + Duration::from_secs(25);
    let slow: Vec<_> = (0..SLOW_CLIENTS)
        .map(|_| {
            let authority = server.authority();
            tokio::spawn(async move { trickle(&authority, Duration::from_secs(2), until).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (during, starved) = real_clients(&server, Duration::from_secs(20)).await;
    let mut closed = 0;
    for task in slow {
        closed += task.await.unwrap();
    }

    println!("before the slow clients: {}", summary(&before));
    println!("with {SLOW_CLIENTS} slow clients: {}", summary(&during));
    println!("slow connections closed by the server: {closed}");
    assert_eq!(starved, 0, "real clients starved ({})", summary(&during));
    assert!(
        closed >= SLOW_CLIENTS,
        "every slow client was cut off at least once: {closed}"
    );
    let refused: Vec<String> = server
        .log()
        .into_iter()
        .filter(|l| l.contains("cannot accept"))
        .collect();
    assert!(
        refused.is_empty(),
        "the server ran out of files: {refused:?}"
    );
}
