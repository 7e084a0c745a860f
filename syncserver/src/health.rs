//! `/__heartbeat__` of the all-in-one reports both databases: the storage
//! node's answer plus `tokenserver_database`, and 503 when either fails.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{json, Value};
use tokenserver::db::TokenStore;

pub async fn heartbeat(
    State(tokens): State<Arc<dyn TokenStore>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() != "/__heartbeat__" {
        return next.run(request).await;
    }
    let tokens_ok = match tokens.check().await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "heartbeat: tokenserver database check failed");
            false
        }
    };
    let (mut parts, body) = next.run(request).await.into_parts();
    let bytes = to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let mut report: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}));
    report["tokenserver_database"] = json!(if tokens_ok { "Ok" } else { "Err" });
    if !tokens_ok {
        report["status"] = json!("Err");
        parts.status = StatusCode::SERVICE_UNAVAILABLE;
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(report.to_string()))
}
