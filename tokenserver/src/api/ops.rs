//! Operational endpoints, no authentication: `/` (to the API docs, as
//! Mozilla's does) and `__heartbeat__` (checks the database); the others are
//! in `sync_common::ops`.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::Json;
use serde_json::json;
use sync_common::ops::database_health;

use super::AppState;

pub async fn heartbeat(State(state): State<AppState>) -> impl IntoResponse {
    let (status, word) = database_health("database", state.store.check()).await;
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
