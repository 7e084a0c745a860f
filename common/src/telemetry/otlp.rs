//! OTLP export over HTTP/protobuf, configured by the standard
//! `OTEL_EXPORTER_OTLP_*` variables (endpoint, headers, timeout,
//! compression) and `OTEL_METRIC_EXPORT_INTERVAL`. Off unless an endpoint
//! is named.

use std::time::Duration;

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithHttpConfig};
use opentelemetry_sdk::metrics::PeriodicReader;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// Which signals an endpoint was given for.
pub(super) struct Exports {
    traces: bool,
    metrics: bool,
}

impl Exports {
    pub(super) fn from_env() -> Self {
        let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        let any = set("OTEL_EXPORTER_OTLP_ENDPOINT");
        Self {
            traces: any || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            metrics: any || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
        }
    }
}

/// The tracer provider: with a batch exporter when traces are exported,
/// else one that only gives spans their ids.
pub(super) fn tracer_provider(exports: &Exports, resource: Resource) -> SdkTracerProvider {
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let exporter = exports.traces.then(client).flatten().and_then(|client| {
        SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .build()
            .map_err(|e| eprintln!("OTLP trace export disabled: {e}"))
            .ok()
    });
    match exporter {
        Some(exporter) => builder.with_batch_exporter(exporter).build(),
        None => builder.build(),
    }
}

/// A reader pushing the metrics over OTLP, when they are exported.
pub(super) fn metric_reader(exports: &Exports) -> Option<PeriodicReader<MetricExporter>> {
    let client = exports.metrics.then(client).flatten()?;
    let exporter = MetricExporter::builder()
        .with_http()
        .with_http_client(client)
        .build()
        .map_err(|e| tracing::error!("OTLP metric export disabled: {e}"))
        .ok()?;
    Some(PeriodicReader::builder(exporter).build())
}

/// The exporters run on threads of their own; their requests are sent on
/// the server's runtime, with the same HTTP client stack as FxA calls.
#[derive(Debug)]
struct RuntimeClient {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

fn client() -> Option<RuntimeClient> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .ok()?;
    Some(RuntimeClient { http, runtime })
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let http = self.http.clone();
        let sent = self.runtime.spawn(async move {
            let response = http.execute(request.try_into()?).await?;
            let mut reply = http::Response::builder().status(response.status());
            if let Some(headers) = reply.headers_mut() {
                *headers = response.headers().clone();
            }
            Ok::<_, HttpError>(reply.body(response.bytes().await?)?)
        });
        sent.await?
    }
}
