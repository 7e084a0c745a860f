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
        duration: super::seconds_histogram(
            names::HTTP_SERVER_DURATION,
            "Time to answer a request, to the end of its body.",
        ),
        request_size: super::bytes_histogram(
            names::HTTP_SERVER_REQUEST_SIZE,
            "Request body bytes read.",
        ),
        response_size: super::bytes_histogram(
            names::HTTP_SERVER_RESPONSE_SIZE,
            "Response body bytes sent.",
        ),
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
    let method = method_label(request.method());
    let route: Arc<str> = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED.into(), |p| p.as_str().into());
    let span = request_span(&request, method, &route);
    let trace_id = span.context().span().span_context().trace_id();
    let request_id = request_id(request.headers(), trace_id);
    if trace_id != opentelemetry::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
    span.record("request_id", request_id.to_str().unwrap_or_default());
    // Recorded when dropped: at the end of the body, or here if the
    // request is dropped first (its client left, or its connection's
    // deadline passed).
    let mut finish = Finish::start(method, route, span.clone());
    let counted = Counted {
        inner: std::mem::take(request.body_mut()),
        bytes: finish.request_bytes.clone(),
        _finish: None,
    };
    *request.body_mut() = Body::new(counted);
    let response = next.run(request).instrument(span).await;
    let (mut parts, body) = response.into_parts();
    finish.answered(parts.status.as_u16());
    parts.headers.insert(X_REQUEST_ID.clone(), request_id);
    let counted = Counted {
        inner: body,
        bytes: finish.response_bytes.clone(),
        _finish: Some(finish),
    };
    Response::from_parts(parts, Body::new(counted))
}

/// The request's span, its parent the caller's `traceparent` if any.
fn request_span(request: &Request, method: &'static str, route: &str) -> tracing::Span {
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
    let _ = span.set_parent(super::propagation::extract(request.headers()));
    span
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

/// One request's measurements, recorded when dropped.
struct Finish {
    started: Instant,
    method: &'static str,
    route: Arc<str>,
    /// `None` until a response exists: a request dropped before it is
    /// recorded with `error.type = cancelled`.
    status: Option<u16>,
    request_bytes: Arc<AtomicU64>,
    response_bytes: Arc<AtomicU64>,
    /// The request's span ends with its body.
    span: tracing::Span,
}

impl Finish {
    fn start(method: &'static str, route: Arc<str>, span: tracing::Span) -> Self {
        INSTRUMENTS
            .active
            .add(1, &[KeyValue::new("http.request.method", method)]);
        Self {
            started: Instant::now(),
            method,
            route,
            status: None,
            request_bytes: Arc::default(),
            response_bytes: Arc::default(),
            span,
        }
    }

    fn answered(&mut self, status: u16) {
        self.status = Some(status);
        self.span.record("http.response.status_code", status);
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        let instruments = &*INSTRUMENTS;
        let method = KeyValue::new("http.request.method", self.method);
        instruments.active.add(-1, std::slice::from_ref(&method));
        let outcome = match self.status {
            Some(status) => KeyValue::new("http.response.status_code", i64::from(status)),
            None => KeyValue::new("error.type", "cancelled"),
        };
        let attributes = [
            method,
            KeyValue::new("http.route", self.route.clone()),
            outcome,
        ];
        let seconds = self.started.elapsed().as_secs_f64();
        let read = self.request_bytes.load(Ordering::Relaxed);
        let sent = self.response_bytes.load(Ordering::Relaxed);
        instruments.duration.record(seconds, &attributes);
        instruments.request_size.record(read, &attributes);
        instruments.response_size.record(sent, &attributes);
        let _in_request = self.span.enter();
        tracing::debug!(
            seconds,
            request_bytes = read,
            response_bytes = sent,
            cancelled = self.status.is_none(),
            "request finished"
        );
    }
}

/// A body that counts the bytes that pass through it into `bytes`: a
/// request's as the handler reads them, or a response's as they are sent
/// (its `finish` then recorded when the body is dropped).
struct Counted {
    inner: Body,
    bytes: Arc<AtomicU64>,
    _finish: Option<Finish>,
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
