//! `DELETE /1.5/{uid}` and `DELETE /1.5/{uid}/storage`: remove everything.

use axum::extract::State;
use axum::response::Response;

use super::auth::HawkUser;
use super::collection::write_reply;
use super::extract::Preconditions;
use super::AppState;
use crate::error::ApiResult;

/// Answers `null`, as Mozilla's server does.
pub async fn delete_all(
    State(state): State<AppState>,
    user: HawkUser,
    Preconditions(pre): Preconditions,
) -> ApiResult<Response> {
    let written = state
        .store
        .delete_storage(user.uid, pre.for_write())
        .await?;
    Ok(write_reply(&state, &(), written))
}
