//! The metrics listener of the real `syncserver` binary, scraped while real
//! requests run: counters and histograms move by exactly what was done,
//! labels name routes (never uids or ids), and every request gets a
//! request id that is its trace id and is in its log lines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use integration_tests::db::TestDb;
use integration_tests::prometheus::Scrape;
use serde_json::json;
use support::{token, Server, SYNCSERVER};

const DURATION: &str = "http_server_request_duration_seconds_count";
const BSO_ROUTE: &str = "/1.5/{uid}/storage/{collection}/{id}";

/// A syncserver with its metrics listener on, logging each request; its
/// metrics URL.
async fn server_with_metrics(db: &TestDb) -> (Server, String) {
    server_logging(db, "warn,sync_common::telemetry=debug").await
}

async fn server_logging(db: &TestDb, log_level: &str) -> (Server, String) {
    let address = format!("127.0.0.1:{}", integration_tests::free_port());
    let env = [
        ("SYNC_SYNCSTORAGE__DATABASE_URL", db.url.as_str()),
        ("SYNC_METRICS_ADDRESS", address.as_str()),
        ("SYNC_HUMAN_LOGS", "false"),
        ("SYNC_LOG_LEVEL", log_level),
    ];
    let server = Server::start_with(SYNCSERVER, &env, None).await;
    (server, format!("http://{address}"))
}

/// How much a sample grew between two scrapes.
fn grew(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.sum(name, labels) - before.sum(name, labels)
}

fn route(
    method: &'static str,
    route: &'static str,
    status: &'static str,
) -> [(&'static str, &'static str); 3] {
    [
        ("http_request_method", method),
        ("http_route", route),
        ("http_response_status_code", status),
    ]
}

#[tokio::test]
async fn requests_move_their_route_metrics_by_what_was_done() {
    let db = TestDb::fresh("metrics").await;
    let (server, metrics) = server_with_metrics(&db).await;
    let before = Scrape::get(&metrics).await;

    let client = token(&server.url, "metrics-user", 1, &[7; 16]).await;
    let record = json!({"id": "rec1", "payload": "x".repeat(300)});
    client
        .put("/storage/bookmarks/rec1", &record)
        .await
        .assert(200);
    let read = client.get("/storage/bookmarks/rec1").await;
    read.assert(200);
    client.get("/storage/bookmarks/missing").await.assert(404);
    let stray = reqwest::get(format!("{}/no/such/thing", server.url))
        .await
        .unwrap();
    assert_eq!(stray.status(), 404);

    let after = Scrape::get(&metrics).await;
    let put = route("PUT", BSO_ROUTE, "200");
    let get = route("GET", BSO_ROUTE, "200");
    assert_eq!(grew(&before, &after, DURATION, &put), 1.0);
    assert_eq!(grew(&before, &after, DURATION, &get), 1.0);
    assert_eq!(
        grew(&before, &after, DURATION, &route("GET", BSO_ROUTE, "404")),
        1.0
    );
    assert_eq!(
        grew(
            &before,
            &after,
            DURATION,
            &route("GET", "/1.0/{application}/{version}", "200")
        ),
        1.0
    );
    assert_eq!(
        grew(&before, &after, DURATION, &[("http_route", "unmatched")]),
        1.0
    );
    let sent = serde_json::to_vec(&record).unwrap().len() as f64;
    let request_bytes = "http_server_request_body_size_bytes_sum";
    assert_eq!(grew(&before, &after, request_bytes, &put), sent);
    let response_bytes = "http_server_response_body_size_bytes_sum";
    assert_eq!(
        grew(&before, &after, response_bytes, &get),
        read.text.len() as f64
    );
    // A histogram's +Inf bucket holds every request it counted.
    let all = [("le", "+Inf"), put[0], put[1], put[2]];
    let bucket = "http_server_request_duration_seconds_bucket";
    assert_eq!(after.sum(bucket, &all), after.sum(DURATION, &put));
    assert_eq!(
        after.types["http_server_request_duration_seconds"],
        "histogram"
    );
    assert_eq!(after.sum("http_server_active_requests", &[]), 0.0);

    // Labels carry routes, never what the path held.
    let uid = client.uid.to_string();
    for value in after.label_values() {
        assert!(
            !value.contains("rec1") && !value.contains("bookmarks"),
            "{value}"
        );
        assert!(!value.contains(&format!("/1.5/{uid}")), "{value}");
    }
}

#[tokio::test]
async fn the_process_reports_its_build_memory_and_files() {
    let db = TestDb::fresh("metrics").await;
    let (server, metrics) = server_with_metrics(&db).await;
    let scrape = Scrape::get(&metrics).await;
    let build = [
        ("service_name", "syncserver"),
        ("service_version", env!("CARGO_PKG_VERSION")),
    ];
    assert_eq!(scrape.sum("sync_build_info", &build), 1.0);
    let rss = scrape.sum("process_memory_usage_bytes", &[]);
    let real = support::memory_mib(server.pid(), "VmRSS") * 1_048_576.0;
    assert!(
        rss > 1e6 && (rss - real).abs() < real / 2.0,
        "{rss} vs {real}"
    );
    assert!(scrape.sum("process_open_file_descriptor_count", &[]) >= 3.0);
    assert!(scrape.sum("process_uptime_seconds", &[]) > 0.0);
    // Not on the public port.
    let public = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
}

#[tokio::test]
async fn a_request_id_is_the_trace_id_and_marks_the_requests_log_lines() {
    let db = TestDb::fresh("metrics").await;
    let (server, _) = server_with_metrics(&db).await;
    let http = reqwest::Client::new();
    let heartbeat = format!("{}/__heartbeat__", server.url);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let traced = http
        .get(&heartbeat)
        .header("traceparent", &traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(traced.headers()["x-request-id"], trace_id);
    let own = http
        .get(&heartbeat)
        .header("x-request-id", "lb-1234.5")
        .send()
        .await
        .unwrap();
    assert_eq!(own.headers()["x-request-id"], "lb-1234.5");
    let plain = http
        .get(&heartbeat)
        .header("x-request-id", "no good")
        .send()
        .await
        .unwrap();
    let id = plain.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_ne!(id, trace_id);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let line = loop {
        let log = server.log();
        if let Some(line) = log
            .iter()
            .find(|l| l.contains("request finished") && l.contains(trace_id))
        {
            break line.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line of the request: {log:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["span"]["trace_id"], trace_id);
    assert_eq!(line["span"]["http.route"], "/__heartbeat__");
}

#[tokio::test]
async fn requests_are_traced_whatever_the_log_level() {
    let db = TestDb::fresh("metrics").await;
    let (server, _) = server_logging(&db, "warn").await;
    let http = reqwest::Client::new();
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    // Every one, not only the first: a filter once lost spans after the
    // database driver had asked whether it should log.
    for _ in 0..5 {
        let traced = http
            .get(format!("{}/__heartbeat__", server.url))
            .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
            .send()
            .await
            .unwrap();
        assert_eq!(traced.status(), 200);
        assert_eq!(traced.headers()["x-request-id"], trace_id);
    }
}
