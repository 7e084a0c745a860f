//! Operational endpoints, no authentication: `__heartbeat__` (checks the
//! database), `__lbheartbeat__` (process alive), `__version__`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
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
