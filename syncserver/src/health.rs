//! `/__heartbeat__` of the all-in-one reports both databases: the storage
//! node's answer plus `tokenserver_database`, and 503 when either fails.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{json, Value};
use sync_common::ops::database_health;
use tokenserver::db::TokenStore;

pub async fn heartbeat(
    State(tokens): State<Arc<dyn TokenStore>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() != "/__heartbeat__" {
        return next.run(request).await;
    }
    // Both checks at once: each is bounded by the heartbeat's wait.
    let ((tokens_status, word), storage) = tokio::join!(
        database_health("tokenserver database", tokens.check()),
        next.run(request)
    );
    let (mut parts, body) = storage.into_parts();
    let bytes = to_bytes(body, 64 * 1024).await.unwrap_or_default();
    // A storage error answers with a bare code (`0`): report on a fresh object.
    let mut report: Value = serde_json::from_slice(&bytes)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    report["tokenserver_database"] = json!(word);
    if !tokens_status.is_success() {
        report["status"] = json!(word);
        parts.status = tokens_status;
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(report.to_string()))
}
