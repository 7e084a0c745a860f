//! Operational endpoints, no authentication: `__heartbeat__` (checks the
//! database), `__lbheartbeat__` (process alive), `__version__`.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use sync_common::ops::database_health;

use super::AppState;

pub async fn heartbeat(State(state): State<AppState>) -> impl IntoResponse {
    let ((database, word), (replay_cache, replay_word)) = tokio::join!(
        database_health("database", state.store.check()),
        database_health("replay cache", state.hawk.check()),
    );
    let status = if replay_cache.is_success() {
        database
    } else {
        replay_cache
    };
    let quota = &state.config.syncstorage;
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "status": if status.is_success() { "Ok" } else { "Err" },
        "database": word,
        "replay_cache": replay_word,
        "backend": state.store.backend().name(),
        "quota": {"enabled": quota.enable_quota, "size": quota.max_quota_limit},
    });
    (status, Json(body))
}
