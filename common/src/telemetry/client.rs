//! Outgoing HTTP calls (FxA, its keys, other nodes): a client span each,
//! the trace context passed on in `traceparent`, and their durations.

use std::sync::LazyLock;
use std::time::Instant;

use opentelemetry::metrics::Histogram;
use opentelemetry::KeyValue;
use tracing::Instrument;

use super::names;

static DURATION: LazyLock<Histogram<f64>> = LazyLock::new(|| {
    super::seconds_histogram(
        names::HTTP_CLIENT_DURATION,
        "Time of an outgoing call, to its response headers.",
    )
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
    let mut call = Call {
        started: Instant::now(),
        peer,
        method,
        outcome: None,
    };
    let sent = async {
        request
            .headers_mut()
            .extend(super::propagation::outgoing_headers());
        client.execute(request).await
    }
    .instrument(span)
    .await;
    call.outcome = Some(match &sent {
        Ok(response) => KeyValue::new(
            "http.response.status_code",
            i64::from(response.status().as_u16()),
        ),
        Err(e) if e.is_timeout() => KeyValue::new("error.type", "timeout"),
        Err(e) if e.is_connect() => KeyValue::new("error.type", "connect"),
        Err(_) => KeyValue::new("error.type", "other"),
    });
    sent
}

/// One call, recorded when dropped: with its outcome, or as `cancelled`
/// when its caller gave up waiting (a timeout of its own).
struct Call {
    started: Instant,
    peer: &'static str,
    method: String,
    outcome: Option<KeyValue>,
}

impl Drop for Call {
    fn drop(&mut self) {
        let outcome = self
            .outcome
            .take()
            .unwrap_or_else(|| KeyValue::new("error.type", "cancelled"));
        let attributes = [
            KeyValue::new("server.address", self.peer),
            KeyValue::new("http.request.method", std::mem::take(&mut self.method)),
            outcome,
        ];
        DURATION.record(self.started.elapsed().as_secs_f64(), &attributes);
    }
}
