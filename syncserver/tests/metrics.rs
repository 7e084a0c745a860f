//! The metrics listener of the real `syncserver` binary, scraped while real
//! requests run: counters and histograms move by exactly what was done,
//! labels name routes (never uids or ids), and every request gets a
//! request id that is its trace id and is in its log lines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use integration_tests::db::TestDb;
use integration_tests::fxa::{access_claims, TestKey};
use integration_tests::prometheus::Scrape;
use serde_json::json;
use sqlx::Connection;
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
        // The purge and the reread of revocations take connections too: not
        // during a test that counts the requests' own.
        ("SYNC_SYNCSTORAGE__REVOCATION_REFRESH_SECONDS", "3600"),
        ("SYNC_SYNCSTORAGE__PURGE_INTERVAL_SECONDS", "0"),
    ];
    let server = Server::start_with(SYNCSERVER, &env, None).await;
    let metrics = format!("http://{address}");
    reread_at_start(&metrics).await;
    (server, metrics)
}

/// Waits for the node's rereads of revocations at start (the load, then the
/// refresher's first round, which may land after the server answers).
async fn reread_at_start(metrics: &str) {
    let rereads = [("db_operation_name", "revocations")];
    for _ in 0..100 {
        let scrape = Scrape::get(metrics).await;
        if scrape.sum("db_client_operation_duration_seconds_count", &rereads) >= 2.0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the node did not reread its revocations at start");
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
        assert!(!value.contains("rec1"), "{value}");
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
    assert!(scrape.sum("process_open_file_descriptors", &[]) >= 3.0);
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

/// `(records, payload bytes)` of a collection's write and read counters.
fn synced(scrape: &Scrape, direction: &str, collection: &str) -> (f64, f64) {
    let labels = [("collection", collection)];
    (
        scrape.sum(&format!("sync_storage_records_{direction}_total"), &labels),
        scrape.sum(
            &format!("sync_storage_payload_{direction}_bytes_total"),
            &labels,
        ),
    )
}

#[tokio::test]
async fn syncing_moves_the_storage_token_and_database_metrics() {
    let db = TestDb::fresh("metrics").await;
    let (server, metrics) = server_with_metrics(&db).await;
    let before = Scrape::get(&metrics).await;

    let client = token(&server.url, "storage-metrics-user", 1, &[3; 16]).await;
    let mut expired = access_claims("storage-metrics-user", Some(1));
    expired["exp"] = json!(1);
    let refused = integration_tests::sync_client::get_token(
        &format!("{}/1.0/sync/1.5", server.url),
        &TestKey::Primary.sign("at+jwt", &expired),
        "1-AwMDAwMDAwMDAwMDAwMDAw",
    )
    .await;
    assert_eq!(refused.status, 401);
    let records = json!([
        {"id": "a", "payload": "x".repeat(100)},
        {"id": "b", "payload": "y".repeat(200)},
        {"id": "c", "payload": "z".repeat(300)},
    ]);
    let posted = client.post("/storage/bookmarks", &records).await.ok();
    assert_eq!(posted["success"].as_array().unwrap().len(), 3);
    client.get("/storage/bookmarks?full=1").await.assert(200);
    client
        .put("/storage/my-own-thing/x", &json!({"payload": "p"}))
        .await
        .assert(200);
    let opened = client
        .post(
            "/storage/history?batch=true",
            &json!([{"id": "h1", "payload": "1234"}]),
        )
        .await;
    let batch = opened.assert(202).json()["batch"]
        .as_str()
        .unwrap()
        .to_owned();
    client
        .post(
            &format!("/storage/history?batch={batch}&commit=true"),
            &json!([{"id": "h2", "payload": "56"}]),
        )
        .await
        .assert(200);
    let stale = client
        .signed(
            reqwest::Method::PUT,
            "/storage/bookmarks/a",
            Some(&json!({"payload": "q"})),
        )
        .header("X-If-Unmodified-Since", "1.00")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let unchanged = client
        .signed(reqwest::Method::GET, "/storage/bookmarks", None)
        .header("X-If-Modified-Since", "99999999999.00")
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);

    let after = Scrape::get(&metrics).await;
    let written = |c| {
        let (r0, b0) = synced(&before, "written", c);
        let (r1, b1) = synced(&after, "written", c);
        (r1 - r0, b1 - b0)
    };
    assert_eq!(written("bookmarks"), (3.0, 600.0));
    assert_eq!(written("other"), (1.0, 1.0));
    assert_eq!(written("history"), (2.0, 6.0));
    let (r0, b0) = synced(&before, "read", "bookmarks");
    let (r1, b1) = synced(&after, "read", "bookmarks");
    assert_eq!((r1 - r0, b1 - b0), (3.0, 600.0));
    let batches = "sync_storage_batches_total";
    assert_eq!(grew(&before, &after, batches, &[("event", "opened")]), 1.0);
    assert_eq!(
        grew(&before, &after, batches, &[("event", "committed")]),
        1.0
    );
    let preconditions = "sync_storage_preconditions_total";
    assert_eq!(
        grew(&before, &after, preconditions, &[("status", "412")]),
        1.0
    );
    assert_eq!(
        grew(&before, &after, preconditions, &[("status", "304")]),
        1.0
    );

    let tokens = "sync_tokenserver_token_requests_total";
    assert_eq!(grew(&before, &after, tokens, &[("outcome", "ok")]), 1.0);
    assert_eq!(
        grew(
            &before,
            &after,
            tokens,
            &[("outcome", "invalid-credentials")]
        ),
        1.0
    );
    let allocations = "sync_tokenserver_allocations_total";
    let placed = [("kind", "new"), ("node", server.url.as_str())];
    assert_eq!(grew(&before, &after, allocations, &placed), 1.0);
    let verified = "sync_tokenserver_fxa_verification_duration_seconds_count";
    let local = [("method", "local"), ("outcome", "ok")];
    assert_eq!(grew(&before, &after, verified, &local), 1.0);
    let up = [("node", server.url.as_str())];
    assert_eq!(after.sum("sync_tokenserver_node_up", &up), 1.0);
    assert!(after.sum("sync_tokenserver_node_capacity", &up) > 0.0);

    let operations = "db_client_operation_duration_seconds_count";
    let post = [
        ("db_namespace", "syncstorage"),
        ("db_operation_name", "post_bsos"),
        ("outcome", "ok"),
    ];
    assert_eq!(grew(&before, &after, operations, &post), 1.0);
    let rejected = [("db_operation_name", "put_bso"), ("outcome", "rejected")];
    assert_eq!(grew(&before, &after, operations, &rejected), 1.0);
    for database in ["syncstorage", "tokenserver"] {
        assert_eq!(
            after.sum("sync_db_healthy", &[("db_namespace", database)]),
            1.0
        );
    }
    let waits = "db_client_connection_wait_time_seconds_count";
    // One pool on PostgreSQL, a reader's and a writer's elsewhere.
    let waited: f64 = ["syncstorage", "syncstorage.read", "syncstorage.write"]
        .into_iter()
        .map(|pool| {
            grew(
                &before,
                &after,
                waits,
                &[("db_client_connection_pool_name", pool)],
            )
        })
        .sum();
    // Seven storage requests, a connection each.
    assert_eq!(waited, 7.0);
    assert!(after.sum("db_client_connection_max", &[]) > 0.0);
    assert!(after.sum("db_client_connections_usage", &[]) > 0.0);
}

#[tokio::test]
async fn refusals_and_housekeeping_are_counted() {
    let db = TestDb::fresh("metrics").await;
    let address = format!("127.0.0.1:{}", integration_tests::free_port());
    let fxa = integration_tests::fxa::FakeFxa::spawn().await;
    let env = [
        ("SYNC_SYNCSTORAGE__DATABASE_URL", db.url.as_str()),
        ("SYNC_METRICS_ADDRESS", address.as_str()),
        ("SYNC_SYNCSTORAGE__ENABLE_QUOTA", "true"),
        ("SYNC_SYNCSTORAGE__MAX_QUOTA_LIMIT", "1000"),
        ("SYNC_SYNCSTORAGE__BATCH_TTL_SECONDS", "1"),
        ("SYNC_SYNCSTORAGE__PURGE_INTERVAL_SECONDS", "1"),
        ("SYNC_TOKENSERVER__FXA_OAUTH_SERVER_URL", fxa.url.as_str()),
    ];
    let server = Server::start_with(SYNCSERVER, &env, None).await;
    let metrics = format!("http://{address}");
    let before = Scrape::get(&metrics).await;

    // An opaque token is verified by FxA itself.
    let opaque = fxa.opaque_token(
        "housekeeping-user",
        Some(1),
        &["https://identity.mozilla.com/apps/oldsync"],
    );
    let answer = integration_tests::sync_client::get_token(
        &format!("{}/1.0/sync/1.5", server.url),
        &opaque,
        &support::key_id(1, &[5; 16]),
    )
    .await;
    let client = integration_tests::sync_client::SyncClient::from_token(&answer.assert(200).json());
    client
        .put("/storage/tabs/short", &json!({"payload": "t", "ttl": 1}))
        .await
        .assert(200);
    let forgotten = json!([{"id": "f", "payload": "f"}]);
    client
        .post("/storage/forms?batch=true", &forgotten)
        .await
        .assert(202);
    client
        .put("/storage/prefs/big", &json!({"payload": "x".repeat(1500)}))
        .await
        .assert(200);
    client
        .put("/storage/prefs/more", &json!({"payload": "y"}))
        .await
        .assert(400);

    // The purge runs every second: wait for it to take the expired record
    // and the forgotten batch.
    let purged = "sync_storage_purge_rows_total";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let after = loop {
        let scrape = Scrape::get(&metrics).await;
        let expired = [("event", "expired")];
        if grew(&before, &scrape, purged, &[("kind", "records")]) >= 1.0
            && grew(&before, &scrape, "sync_storage_batches_total", &expired) >= 1.0
        {
            break scrape;
        }
        assert!(std::time::Instant::now() < deadline, "no purge counted");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        grew(&before, &after, "sync_storage_quota_rejections_total", &[]),
        1.0
    );
    assert!(
        grew(
            &before,
            &after,
            "sync_storage_purge_runs_total",
            &[("outcome", "ok")]
        ) >= 1.0
    );
    let remote = [("method", "remote"), ("outcome", "ok")];
    let verified = "sync_tokenserver_fxa_verification_duration_seconds_count";
    assert_eq!(grew(&before, &after, verified, &remote), 1.0);
    let call = [
        ("server_address", "fxa-verify"),
        ("http_response_status_code", "200"),
    ];
    assert_eq!(
        grew(
            &before,
            &after,
            "http_client_request_duration_seconds_count",
            &call
        ),
        1.0
    );
}

/// A syncserver on SQLite files of its own, with its metrics listener on
/// and `env` besides; its metrics URL.
async fn sqlite_server_with(env: &[(&str, &str)]) -> (Server, String) {
    let address = format!("127.0.0.1:{}", integration_tests::free_port());
    let mut env = env.to_vec();
    env.push(("SYNC_METRICS_ADDRESS", address.as_str()));
    let server = Server::start_with(SYNCSERVER, &env, None).await;
    (server, format!("http://{address}"))
}

/// Takes `server`'s SQLite write lock, held until a `ROLLBACK` on the
/// connection returned: its writes wait meanwhile.
async fn hold_write_lock(server: &Server) -> sqlx::SqliteConnection {
    let file = server.dir.path().join("data/syncstorage.db");
    let url = format!("sqlite:{}", file.display());
    let mut lock = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();
    lock
}

#[tokio::test]
async fn an_operation_its_request_gave_up_on_is_still_measured() {
    // SQLite's write lock, held from here, keeps a PUT waiting past its
    // request's deadline; the write itself carries on and ends later.
    let (server, metrics) =
        sqlite_server_with(&[("SYNC_SYNCSTORAGE__REQUEST_TIMEOUT_SECONDS", "1")]).await;
    let client = token(&server.url, "deadline-user", 1, &[8; 16]).await;
    let record = json!({"payload": "p"});
    client.put("/storage/prefs/p", &record).await.assert(200);
    let before = Scrape::get(&metrics).await;

    let mut lock = hold_write_lock(&server).await;
    client.put("/storage/prefs/p", &record).await.assert(503);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();

    let put = [("db_operation_name", "put_bso")];
    let operations = "db_client_operation_duration_seconds_count";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let after = Scrape::get(&metrics).await;
        if grew(&before, &after, operations, &put) == 1.0 {
            let answered = route("PUT", BSO_ROUTE, "503");
            assert_eq!(grew(&before, &after, DURATION, &answered), 1.0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the PUT was never measured"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_fxa_that_does_not_answer_in_time_is_measured() {
    let fxa = integration_tests::fxa::FakeFxa::spawn().await;
    fxa.set_mode(integration_tests::fxa::Mode::Slow(
        std::time::Duration::from_secs(3),
    ));
    let env = [
        ("SYNC_TOKENSERVER__FXA_OAUTH_SERVER_URL", fxa.url.as_str()),
        ("SYNC_TOKENSERVER__FXA_OAUTH_REQUEST_TIMEOUT", "1"),
    ];
    let (server, metrics) = sqlite_server_with(&env).await;
    let before = Scrape::get(&metrics).await;
    let scope = ["https://identity.mozilla.com/apps/oldsync"];
    let opaque = fxa.opaque_token("slow-fxa-user", Some(1), &scope);
    let answer = integration_tests::sync_client::get_token(
        &format!("{}/1.0/sync/1.5", server.url),
        &opaque,
        &support::key_id(1, &[2; 16]),
    )
    .await;
    assert_eq!(answer.status, 503, "{}", answer.text);

    let after = Scrape::get(&metrics).await;
    let verified = "sync_tokenserver_fxa_verification_duration_seconds_count";
    let unavailable = [("method", "remote"), ("outcome", "unavailable")];
    assert_eq!(grew(&before, &after, verified, &unavailable), 1.0);
    let calls = "http_client_request_duration_seconds_count";
    let to_fxa = [("server_address", "fxa-verify")];
    assert_eq!(grew(&before, &after, calls, &to_fxa), 1.0);
    let tokens = "sync_tokenserver_token_requests_total";
    assert_eq!(grew(&before, &after, tokens, &[]), 1.0);
}

#[tokio::test]
async fn a_request_whose_client_left_is_counted_and_no_longer_active() {
    let (server, metrics) = sqlite_server_with(&[]).await;
    let client = token(&server.url, "leaving-user", 1, &[1; 16]).await;
    let record = json!({"payload": "p"});
    client.put("/storage/prefs/p", &record).await.assert(200);
    let before = Scrape::get(&metrics).await;

    let mut lock = hold_write_lock(&server).await;
    let put = client.signed(reqwest::Method::PUT, "/storage/prefs/p", Some(&record));
    let gave_up = tokio::time::timeout(std::time::Duration::from_millis(300), put.send()).await;
    assert!(gave_up.is_err(), "the PUT should still be waiting");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after = Scrape::get(&metrics).await;
    let active = "http_server_active_requests";
    assert_eq!(after.sum(active, &[]), 0.0);
    let cancelled = [("http_route", BSO_ROUTE), ("error_type", "cancelled")];
    assert_eq!(grew(&before, &after, DURATION, &cancelled), 1.0);
    // The write itself ran to its end, measured.
    let operations = "db_client_operation_duration_seconds_count";
    let put = [("db_operation_name", "put_bso"), ("outcome", "ok")];
    assert_eq!(grew(&before, &after, operations, &put), 1.0);
}

#[tokio::test]
async fn a_call_to_fxa_carries_the_requests_trace() {
    let fxa = integration_tests::fxa::FakeFxa::spawn().await;
    let env = [("SYNC_TOKENSERVER__FXA_OAUTH_SERVER_URL", fxa.url.as_str())];
    let server = Server::start_with(SYNCSERVER, &env, None).await;
    let scope = ["https://identity.mozilla.com/apps/oldsync"];
    let opaque = fxa.opaque_token("traced-user", Some(1), &scope);
    let trace_id = "6bf92f3577b34da6a3ce929d0e0e4738";
    let answer = reqwest::Client::new()
        .get(format!("{}/1.0/sync/1.5", server.url))
        .header("Authorization", format!("Bearer {opaque}"))
        .header("X-KeyID", support::key_id(1, &[3; 16]))
        .header("traceparent", format!("00-{trace_id}-20f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let sent = fxa.traceparents();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let fields: Vec<&str> = sent[0].split('-').collect();
    assert_eq!(fields[1], trace_id);
    // Its parent is the server's own call span, not the caller's.
    assert_ne!(fields[2], "20f067aa0ba902b7");
}
