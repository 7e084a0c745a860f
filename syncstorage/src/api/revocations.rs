//! `POST /__revocations__`: a tokenserver's notice of tokens this node must
//! refuse from now on (ADR 0012), signed with a token for the tokenserver's
//! own uid on this node.

use axum::extract::{Request, State};
use axum::Json;
use sync_common::revocation::{Notice, Recorded, MAX_UIDS};

use super::auth::from_tokenserver;
use super::AppState;
use crate::error::{ApiError, ApiResult, WeaveCode};

pub async fn record(State(state): State<AppState>, request: Request) -> ApiResult<Json<Recorded>> {
    let (token, body) = from_tokenserver(&state, request).await?;
    let notice: Notice =
        serde_json::from_slice(&body).map_err(|_| ApiError::BadRequest(WeaveCode::JsonParse))?;
    // The signer vouches for its token's node only.
    if notice.node != token.node || notice.uids.len() > MAX_UIDS {
        return Err(ApiError::BadRequest(WeaveCode::Unknown));
    }
    state.revocations.record(&notice).await?;
    tracing::info!(
        uids = notice.uids.len(),
        epoch = notice.epoch,
        "recorded the tokenserver's revocations"
    );
    Ok(Json(Recorded {
        uids: u64::try_from(notice.uids.len()).unwrap_or(u64::MAX),
    }))
}
