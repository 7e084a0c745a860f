//! An OTLP/HTTP collector stand-in: receives `/v1/traces` and
//! `/v1/metrics` in protobuf and keeps them decoded.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;

#[derive(Default)]
struct Received {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
}

/// A running collector; stops with the test's runtime.
pub struct Collector {
    pub url: String,
    received: Arc<Mutex<Received>>,
}

impl Collector {
    pub async fn spawn() -> Self {
        let received = Arc::new(Mutex::new(Received::default()));
        let router = Router::new()
            .route("/v1/traces", post(traces))
            .route("/v1/metrics", post(metrics))
            .with_state(received.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url, received }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        let received = self.received.lock().unwrap();
        received
            .traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    /// The names of every metric received so far.
    pub fn metric_names(&self) -> Vec<String> {
        let received = self.received.lock().unwrap();
        received
            .metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| s.metrics.iter().map(|m| m.name.clone()))
            .collect()
    }

    /// The `service.name` of every resource that sent metrics.
    pub fn metric_services(&self) -> Vec<String> {
        let received = self.received.lock().unwrap();
        received
            .metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .filter_map(|r| attribute(&r.resource.as_ref()?.attributes, "service.name"))
            .collect()
    }
}

/// A string or integer attribute's value, as text.
pub fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|a| a.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    }
}

async fn traces(State(received): State<Arc<Mutex<Received>>>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).unwrap();
    received.lock().unwrap().traces.push(request);
    ""
}

async fn metrics(State(received): State<Arc<Mutex<Received>>>, body: Bytes) -> &'static str {
    let request = ExportMetricsServiceRequest::decode(body).unwrap();
    received.lock().unwrap().metrics.push(request);
    ""
}
