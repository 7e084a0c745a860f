//! Operational endpoints, no authentication: `/` (to the API docs, as
//! Mozilla's does) and `__heartbeat__` (checks the database); the others are
//! in `sync_common::ops`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::Json;
use serde_json::json;

use super::AppState;

pub async fn heartbeat(State(state): State<AppState>) -> impl IntoResponse {
    let database = state.store.check().await;
    if let Err(e) = &database {
        tracing::warn!(error = %e, "heartbeat: database check failed");
    }
    let ok = database.is_ok();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if ok { "Ok" } else { "Err" };
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "status": word,
        "database": word,
        "backend": state.store.backend().name(),
    });
    (status, Json(body))
}

/// `/`: Mozilla's tokenserver sends visitors to its API documentation.
pub async fn home() -> Redirect {
    Redirect::to("https://mozilla-services.readthedocs.io/en/latest/token/apis.html")
}
