//! `POST /1.0/webhooks/fxa/events`: FxA tells us an account was deleted
//! (retire the user) or its password changed (raise the generation, so
//! older sessions are refused). Always 200 with an empty body once the
//! event token is genuine.

use crate::metrics;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::extract::bearer_token;
use super::AppState;
use crate::auth::events::AccountEvent;
use crate::error::{ApiResult, TokenserverError};

pub async fn fxa_events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let verifier = state
        .events
        .as_ref()
        .ok_or_else(TokenserverError::unauthorized)?;
    let token = bearer_token(&headers)?;
    let set = verifier.verify(token).await.map_err(|reason| {
        tracing::debug!(%reason, "FxA event token refused");
        TokenserverError::invalid_credentials()
    })?;
    let email = state.config.email(&set.fxa_uid);
    for uri in &set.ignored {
        tracing::info!(event = %uri, "ignoring FxA event");
    }
    for event in set.events {
        let changed = match event {
            AccountEvent::Deleted => state.store.retire_user(&email).await?,
            AccountEvent::PasswordChanged { change_time } => {
                state
                    .store
                    .raise_generation(&email, change_time.saturating_sub(1))
                    .await?
            }
        };
        metrics::webhook_event(event.name());
        tracing::info!(?event, records = changed, "applied FxA event");
    }
    Ok(StatusCode::OK)
}
