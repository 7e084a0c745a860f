//! OTLP export of the real `syncserver` binary to a local collector: the
//! spans of a request (server span, its database span as a child, the
//! caller's trace adopted) and the metrics, decoded from protobuf.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use integration_tests::db::TestDb;
use integration_tests::otlp::{attribute, Collector};
use support::{token, Server, SYNCSERVER};

#[tokio::test]
async fn spans_and_metrics_reach_an_otlp_collector() {
    let db = TestDb::fresh("otlp").await;
    let collector = Collector::spawn().await;
    let env = [
        ("SYNC_SYNCSTORAGE__DATABASE_URL", db.url.as_str()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url.as_str()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let server = Server::start_with(SYNCSERVER, &env, None).await;
    let client = token(&server.url, "otlp-user", 1, &[9; 16]).await;
    let trace_id = "5bf92f3577b34da6a3ce929d0e0e4737";
    let info = reqwest::Client::new()
        .get(format!("{}/__heartbeat__", server.url))
        .header("traceparent", format!("00-{trace_id}-10f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    client.get("/info/collections").await.assert(200);

    let route = "GET /1.5/{uid}/info/collections";
    const EXPECTED_METRICS: [&str; 4] = [
        "http.server.request.duration",
        "db.client.operation.duration",
        "sync.tokenserver.token.requests",
        "process.memory.usage",
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans = collector.spans();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        let metrics = collector.metric_names();
        // Each export holds what was recorded by then: wait for one that
        // has every instrument this test looks for.
        if names.contains(&route)
            && names.contains(&"collection_timestamps")
            && EXPECTED_METRICS
                .iter()
                .all(|n| metrics.iter().any(|m| m == n))
        {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "spans {names:?}, metrics {metrics:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let request = spans.iter().find(|s| s.name == route).unwrap();
    assert_eq!(
        attribute(&request.attributes, "http.route").as_deref(),
        Some("/1.5/{uid}/info/collections")
    );
    assert_eq!(
        attribute(&request.attributes, "http.response.status_code").as_deref(),
        Some("200")
    );
    let operation = spans
        .iter()
        .find(|s| s.name == "collection_timestamps" && s.trace_id == request.trace_id)
        .expect("the database span is in the request's trace");
    assert_eq!(operation.parent_span_id, request.span_id);
    assert_eq!(
        attribute(&operation.attributes, "db.namespace").as_deref(),
        Some("syncstorage")
    );
    let adopted = spans
        .iter()
        .find(|s| s.name == "GET /__heartbeat__" && hex::encode(&s.trace_id) == trace_id)
        .expect("the heartbeat joined the caller's trace");
    assert_eq!(hex::encode(&adopted.parent_span_id), "10f067aa0ba902b7");

    // Nothing that identifies the user or signs a request.
    let uid = client.uid.to_string();
    for span in &spans {
        for a in &span.attributes {
            let value = attribute(std::slice::from_ref(a), &a.key).unwrap_or_default();
            assert!(
                !value.contains("otlp-user") && !value.contains("Hawk"),
                "{value}"
            );
            assert!(!value.contains(&format!("/1.5/{uid}")), "{value}");
        }
    }
    assert!(collector
        .metric_services()
        .iter()
        .all(|s| s == "syncserver"));
}
