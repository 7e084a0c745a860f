//! Logs, traces and metrics, set up once per process by [`init`].
//!
//! - Logs: human-readable lines for a terminal, JSON lines for containers;
//!   `RUST_LOG` overrides the configured level. A request's lines carry its
//!   trace id (the `request` span's fields).
//! - Traces: every request has an OpenTelemetry span whose trace id is
//!   logged and returned in `X-Request-Id`; spans are exported over OTLP when
//!   the standard `OTEL_EXPORTER_OTLP_*` variables name an endpoint.
//! - Metrics: one OpenTelemetry meter provider, read by the Prometheus
//!   endpoint of the metrics listener and, when configured, by OTLP. With
//!   neither, no provider is installed and every instrument is a no-op.

/// Outgoing calls: spans, trace context, durations.
pub mod client;
/// Database spans, latencies, health and pools.
pub mod db;
mod http;
mod listener;
/// Metric names shared by both services.
pub mod names;
mod otlp;
mod process;
/// Context for outgoing calls (W3C `traceparent`).
pub mod propagation;
mod user_agent;

use std::sync::OnceLock;

use opentelemetry::metrics::Histogram;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use http::observe;
pub use listener::{parse_address, MetricsListener};

/// The version every binary reports (`__version__`, `build_info`, traces).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What [`init`] needs to know.
pub struct Settings<'a> {
    /// `service.name` of traces and metrics: the binary's name.
    pub service: &'static str,
    pub human_logs: bool,
    pub log_level: &'a str,
    /// Whether the metrics listener is configured.
    pub metrics_listener: bool,
}

/// What `init` installed, kept for the metrics listener and for flushing.
struct Installed {
    tracer: SdkTracerProvider,
    meters: Option<SdkMeterProvider>,
    prometheus: Option<prometheus::Registry>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Installs logging, tracing and (when wanted) metrics once; later calls
/// are ignored (tests).
pub fn init(settings: &Settings<'_>) {
    INSTALLED.get_or_init(|| install(settings));
}

fn install(settings: &Settings<'_>) -> Installed {
    let resource = Resource::builder()
        .with_service_name(settings.service)
        .with_attribute(KeyValue::new("service.version", VERSION))
        .build();
    let exports = otlp::Exports::from_env();
    let tracer = otlp::tracer_provider(&exports, resource.clone());
    let logs = if settings.human_logs {
        tracing_subscriber::fmt::layer().boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .boxed()
    };
    let traces = tracing_opentelemetry::layer()
        .with_tracer(tracer.tracer(settings.service))
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false);
    // One filter for both layers: per-layer filters lose spans after a
    // `tracing::enabled!` check that no event follows (sqlx makes those).
    let _ = tracing_subscriber::registry()
        .with(filter(settings.log_level))
        .with(logs)
        .with(traces)
        .try_init();
    let (meters, prometheus) = metrics(settings, &exports, resource);
    Installed {
        tracer,
        meters,
        prometheus,
    }
}

/// `RUST_LOG`, else the configured level; either way the spans that carry
/// traces (target `sync_common::telemetry`) at `info` at least, as their
/// trace ids are request ids, unless the filter already lets them through.
fn filter(log_level: &str) -> EnvFilter {
    let directives = std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_else(|_| log_level.to_owned());
    let verbose = directives.split(',').any(|d| {
        !d.contains('=')
            && matches!(
                d.trim().to_ascii_lowercase().as_str(),
                "info" | "debug" | "trace"
            )
    });
    let directives = if verbose {
        directives
    } else {
        format!("{TRACED_SPANS}=info,{directives}")
    };
    EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("the log filter {directives:?} is not valid ({e}); logging warnings only");
        EnvFilter::new(format!("{TRACED_SPANS}=info,warn"))
    })
}

/// Where the spans of requests, database operations and outgoing calls are made.
const TRACED_SPANS: &str = "sync_common::telemetry";

/// The meter provider, when the metrics listener or OTLP will read it.
fn metrics(
    settings: &Settings<'_>,
    exports: &otlp::Exports,
    resource: Resource,
) -> (Option<SdkMeterProvider>, Option<prometheus::Registry>) {
    let mut builder = SdkMeterProvider::builder().with_resource(resource);
    let mut registry = None;
    if settings.metrics_listener {
        let prometheus = prometheus::Registry::new();
        match opentelemetry_prometheus::exporter()
            .with_registry(prometheus.clone())
            .scope_info_enabled(false)
            .build()
        {
            Ok(exporter) => {
                builder = builder.with_reader(exporter);
                registry = Some(prometheus);
            }
            Err(e) => tracing::error!("metrics listener disabled: {e}"),
        }
    }
    let otlp = otlp::metric_reader(exports);
    let exported = otlp.is_some();
    if let Some(reader) = otlp {
        builder = builder.with_reader(reader);
    }
    if registry.is_none() && !exported {
        return (None, None);
    }
    let provider = builder.build();
    opentelemetry::global::set_meter_provider(provider.clone());
    process::observe(settings.service);
    (Some(provider), registry)
}

/// The Prometheus registry the metrics listener serves, if metrics are on.
fn prometheus_registry() -> Option<&'static prometheus::Registry> {
    INSTALLED.get()?.prometheus.as_ref()
}

/// Whether metrics are recorded (for work that only feeds metrics).
pub fn metrics_enabled() -> bool {
    INSTALLED.get().is_some_and(|i| i.meters.is_some())
}

/// The meter every instrument of ours comes from.
pub fn meter() -> opentelemetry::metrics::Meter {
    opentelemetry::global::meter("sync")
}

/// A histogram of durations, in seconds, with our bounds.
pub fn seconds_histogram(name: &'static str, description: &'static str) -> Histogram<f64> {
    meter()
        .f64_histogram(name)
        .with_unit("s")
        .with_description(description)
        .with_boundaries(names::SECONDS_BUCKETS.to_vec())
        .build()
}

/// A histogram of sizes, in bytes, with our bounds.
pub fn bytes_histogram(name: &'static str, description: &'static str) -> Histogram<u64> {
    meter()
        .u64_histogram(name)
        .with_unit("By")
        .with_description(description)
        .with_boundaries(names::BYTES_BUCKETS.to_vec())
        .build()
}

/// Exports what is still buffered (before the process exits).
pub fn shutdown() {
    let Some(installed) = INSTALLED.get() else {
        return;
    };
    let flush = || {
        if let Some(meters) = &installed.meters {
            let _ = meters.shutdown();
        }
        let _ = installed.tracer.shutdown();
    };
    // The exporters' threads need our runtime to send: do not block it.
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(flush);
        }
        _ => flush(),
    }
}
