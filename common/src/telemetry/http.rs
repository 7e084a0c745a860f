//! What every request passes through first: its span (with the caller's
//! `traceparent` as parent), its `X-Request-Id`, and its metrics, recorded
//! when the response body has been sent (or dropped), so streamed bodies
//! count in full.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::metrics::{Histogram, UpDownCounter};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::KeyValue;
use tracing::field::Empty;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::names;
use super::user_agent;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A client's own request id is kept if it is this short and plain.
const MAX_REQUEST_ID: usize = 128;

/// The route of a request no route matched: never the raw path, which
/// would put uids and ids into labels.
const UNMATCHED: &str = "unmatched";

struct Instruments {
    duration: Histogram<f64>,
    request_size: Histogram<u64>,
    response_size: Histogram<u64>,
    active: UpDownCounter<i64>,
}

static INSTRUMENTS: LazyLock<Instruments> = LazyLock::new(|| {
    let meter = super::meter();
    Instruments {
        duration: meter
            .f64_histogram(names::HTTP_SERVER_DURATION)
            .with_unit("s")
            .with_description("Time to answer a request, to the end of its body.")
            .with_boundaries(names::SECONDS_BUCKETS.to_vec())
            .build(),
        request_size: meter
            .u64_histogram(names::HTTP_SERVER_REQUEST_SIZE)
            .with_unit("By")
            .with_description("Request body bytes read.")
            .with_boundaries(names::BYTES_BUCKETS.to_vec())
            .build(),
        response_size: meter
            .u64_histogram(names::HTTP_SERVER_RESPONSE_SIZE)
            .with_unit("By")
            .with_description("Response body bytes sent.")
            .with_boundaries(names::BYTES_BUCKETS.to_vec())
            .build(),
        active: meter
            .i64_up_down_counter(names::HTTP_SERVER_ACTIVE)
            .with_unit("{request}")
            .with_description("Requests being answered.")
            .build(),
    }
});

/// The outermost layer of both services' routers
/// (`.layer(axum::middleware::from_fn(observe))`).
pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route: Arc<str> = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED.into(), |p| p.as_str().into());
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = %route,
        http.response.status_code = Empty,
        user_agent.family = user_agent::family(request.headers()),
        trace_id = Empty,
        request_id = Empty,
    );
    let parent = super::propagation::extract(request.headers());
    let _ = span.set_parent(parent);
    let trace_id = span.context().span().span_context().trace_id();
    let request_id = request_id(request.headers(), trace_id);
    if trace_id != opentelemetry::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
    span.record("request_id", request_id.to_str().unwrap_or_default());
    let request_bytes = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: std::mem::take(request.body_mut()),
        bytes: request_bytes.clone(),
    };
    *request.body_mut() = Body::new(counted);
    let instruments = &*INSTRUMENTS;
    let active = [KeyValue::new("http.request.method", method)];
    instruments.active.add(1, &active);
    let response = next.run(request).instrument(span.clone()).await;
    let (mut parts, body) = response.into_parts();
    span.record("http.response.status_code", parts.status.as_u16());
    parts.headers.insert(X_REQUEST_ID.clone(), request_id);
    let finish = Finish {
        started,
        attributes: [
            KeyValue::new("http.request.method", method),
            KeyValue::new("http.route", route),
            KeyValue::new(
                "http.response.status_code",
                i64::from(parts.status.as_u16()),
            ),
        ],
        request_bytes,
        response_bytes: 0,
        span,
    };
    Response::from_parts(parts, Body::new(Observed { body, finish }))
}

/// Semantic conventions: known methods by name, anything else as `_OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// The client's `X-Request-Id` when it is a plain token, else the trace id
/// (which is what the logs carry).
fn request_id(headers: &HeaderMap, trace_id: opentelemetry::TraceId) -> HeaderValue {
    let given = headers.get(&X_REQUEST_ID).filter(|v| {
        let bytes = v.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
    });
    if let Some(given) = given {
        return given.clone();
    }
    let id = if trace_id == opentelemetry::TraceId::INVALID {
        opentelemetry::TraceId::from_bytes(rand::random())
    } else {
        trace_id
    };
    HeaderValue::from_str(&id.to_string()).unwrap_or(HeaderValue::from_static("0"))
}

/// Recorded when the response body is done with.
struct Finish {
    started: Instant,
    attributes: [KeyValue; 3],
    request_bytes: Arc<AtomicU64>,
    response_bytes: u64,
    /// The request's span ends with its body.
    span: tracing::Span,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let instruments = &*INSTRUMENTS;
        let attributes = &self.attributes;
        let seconds = self.started.elapsed().as_secs_f64();
        let read = self.request_bytes.load(Ordering::Relaxed);
        instruments.duration.record(seconds, attributes);
        instruments.request_size.record(read, attributes);
        instruments
            .response_size
            .record(self.response_bytes, attributes);
        instruments.active.add(-1, &attributes[..1]);
        let _in_request = self.span.enter();
        tracing::debug!(
            seconds,
            request_bytes = read,
            response_bytes = self.response_bytes,
            "request finished"
        );
    }
}

/// A response body that counts what it sends.
struct Observed {
    body: Body,
    finish: Finish,
}

impl http_body::Body for Observed {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.finish.response_bytes += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A request body that counts what the handler reads.
struct Counted {
    inner: Body,
    bytes: Arc<AtomicU64>,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
