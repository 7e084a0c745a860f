//! The X-Weave-* and X-Last-Modified headers: names, and the middleware that
//! stamps every response with `X-Weave-Timestamp` (plus operator backoff and
//! alert headers).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::AppState;
use crate::model::timestamp::SyncTimestamp;

pub const X_LAST_MODIFIED: HeaderName = HeaderName::from_static("x-last-modified");
pub const X_WEAVE_TIMESTAMP: HeaderName = HeaderName::from_static("x-weave-timestamp");
pub const X_WEAVE_RECORDS: HeaderName = HeaderName::from_static("x-weave-records");
pub const X_WEAVE_BYTES: HeaderName = HeaderName::from_static("x-weave-bytes");
pub const X_WEAVE_TOTAL_RECORDS: HeaderName = HeaderName::from_static("x-weave-total-records");
pub const X_WEAVE_TOTAL_BYTES: HeaderName = HeaderName::from_static("x-weave-total-bytes");
pub const X_WEAVE_NEXT_OFFSET: HeaderName = HeaderName::from_static("x-weave-next-offset");
pub const X_WEAVE_QUOTA_REMAINING: HeaderName = HeaderName::from_static("x-weave-quota-remaining");
pub const X_WEAVE_BACKOFF: HeaderName = HeaderName::from_static("x-weave-backoff");
pub const X_WEAVE_ALERT: HeaderName = HeaderName::from_static("x-weave-alert");
pub const X_IF_MODIFIED_SINCE: HeaderName = HeaderName::from_static("x-if-modified-since");
pub const X_IF_UNMODIFIED_SINCE: HeaderName = HeaderName::from_static("x-if-unmodified-since");

/// Sets a header from anything printable (values we make are always valid).
pub fn set(headers: &mut HeaderMap, name: HeaderName, value: impl ToString) {
    if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
        headers.insert(name, value);
    }
}

/// `X-Weave-Timestamp` on every response: the request's start time, or the
/// resource's last-modified time if that is later (so a client never sees
/// a server time earlier than data it was just given).
pub async fn weave_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = SyncTimestamp::now();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let last_modified = headers
        .get(&X_LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(SyncTimestamp::parse_seconds)
        .unwrap_or(SyncTimestamp::ZERO);
    set(headers, X_WEAVE_TIMESTAMP, started.max(last_modified));
    let storage = &state.config.syncstorage;
    if let Some(seconds) = storage.backoff_seconds {
        set(headers, X_WEAVE_BACKOFF, seconds);
    }
    if let Some(alert) = &storage.alert {
        set(headers, X_WEAVE_ALERT, alert);
    }
    response
}

/// A decommissioned service answers every storage request with 513 and a
/// hard end-of-life alert, so clients stop and tell their user.
pub async fn decommissioned(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let storage = &state.config.syncstorage;
    if !storage.decommissioned {
        return next.run(request).await;
    }
    let alert = storage.alert.clone().unwrap_or_else(|| {
        serde_json::json!({
            "code": "hard-eol",
            "message": "This Sync server has been shut down.",
            "url": "https://support.mozilla.org/kb/how-do-i-set-up-firefox-sync",
        })
        .to_string()
    });
    let mut response = crate::error::ApiError::Decommissioned.into_response();
    set(response.headers_mut(), X_WEAVE_ALERT, alert);
    response
}
