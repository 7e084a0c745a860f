//! Outgoing HTTP calls (FxA, its keys, other nodes): a client span each,
//! the trace context passed on in `traceparent`, and their durations.

use std::sync::LazyLock;
use std::time::Instant;

use opentelemetry::metrics::Histogram;
use opentelemetry::KeyValue;
use tracing::Instrument;

use super::names;

static DURATION: LazyLock<Histogram<f64>> = LazyLock::new(|| {
    super::meter()
        .f64_histogram(names::HTTP_CLIENT_DURATION)
        .with_unit("s")
        .with_description("Time of an outgoing call, to its response headers.")
        .with_boundaries(names::SECONDS_BUCKETS.to_vec())
        .build()
});

/// Sends `request` on `client` as a call to `peer` (a fixed name such as
/// `fxa`, never a URL with a token in it).
pub async fn send(
    peer: &'static str,
    client: &reqwest::Client,
    request: reqwest::RequestBuilder,
) -> reqwest::Result<reqwest::Response> {
    let mut request = request.build()?;
    let method = request.method().as_str().to_owned();
    let span = tracing::info_span!(
        "call",
        otel.name = %format_args!("{method} {peer}"),
        otel.kind = "client",
        http.request.method = %method,
        server.address = peer,
    );
    let started = Instant::now();
    let sent = async {
        request
            .headers_mut()
            .extend(super::propagation::outgoing_headers());
        client.execute(request).await
    }
    .instrument(span)
    .await;
    let outcome = match &sent {
        Ok(response) => KeyValue::new(
            "http.response.status_code",
            i64::from(response.status().as_u16()),
        ),
        Err(e) if e.is_timeout() => KeyValue::new("error.type", "timeout"),
        Err(e) if e.is_connect() => KeyValue::new("error.type", "connect"),
        Err(_) => KeyValue::new("error.type", "other"),
    };
    let attributes = [
        KeyValue::new("server.address", peer),
        KeyValue::new("http.request.method", method),
        outcome,
    ];
    DURATION.record(started.elapsed().as_secs_f64(), &attributes);
    sent
}
