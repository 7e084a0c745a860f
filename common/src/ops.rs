//! The Dockerflow endpoints both services answer the same way.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

/// `/__lbheartbeat__`: the process is alive.
pub async fn lbheartbeat() -> impl IntoResponse {
    Json(json!({}))
}

/// `/__version__`: what was built, from `SYNC_BUILD_*` at compile time.
pub async fn version() -> impl IntoResponse {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("SYNC_BUILD_COMMIT").unwrap_or("unknown"),
        "source": option_env!("SYNC_BUILD_SOURCE").unwrap_or("local build"),
        "build": option_env!("SYNC_BUILD_ID").unwrap_or("dev"),
    }))
}

/// A database check as `/__heartbeat__` reports it: the status to answer
/// with and the word for the body (`"Ok"`/`"Err"`); failures are logged.
pub fn database_health<E: std::fmt::Display>(
    what: &str,
    check: Result<(), E>,
) -> (StatusCode, &'static str) {
    match check {
        Ok(()) => (StatusCode::OK, "Ok"),
        Err(e) => {
            tracing::warn!(error = %e, "heartbeat: {what} check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "Err")
        }
    }
}
