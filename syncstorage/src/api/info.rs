//! `/1.5/{uid}/info/*`: collections, counts, usage, quota, configuration.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::HawkUser;
use super::extract::Preconditions;
use super::headers::{set, X_WEAVE_RECORDS};
use super::reply::{self, PerCollection};
use super::AppState;
use crate::error::ApiResult;
use crate::model::timestamp::SyncTimestamp;

/// Bytes → KB, as the info endpoints report sizes.
fn kilobytes(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

fn per_collection<T: serde::Serialize>(list: &[(String, T)], ts: SyncTimestamp) -> Response {
    let mut response = reply::json(StatusCode::OK, &PerCollection(list), ts);
    set(response.headers_mut(), X_WEAVE_RECORDS, list.len());
    response
}

pub async fn collections(
    State(state): State<AppState>,
    user: HawkUser,
    Preconditions(pre): Preconditions,
) -> ApiResult<Response> {
    let timed = state.store.collection_timestamps(user.uid, pre).await?;
    Ok(per_collection(&timed.value, timed.last_modified))
}

pub async fn collection_counts(
    State(state): State<AppState>,
    user: HawkUser,
    Preconditions(pre): Preconditions,
) -> ApiResult<Response> {
    let timed = state.store.collection_counts(user.uid, pre).await?;
    Ok(per_collection(&timed.value, timed.last_modified))
}

pub async fn collection_usage(
    State(state): State<AppState>,
    user: HawkUser,
    Preconditions(pre): Preconditions,
) -> ApiResult<Response> {
    let timed = state.store.collection_usage(user.uid, pre).await?;
    let usage: Vec<(String, f64)> = timed
        .value
        .into_iter()
        .map(|(name, bytes)| (name, kilobytes(bytes)))
        .collect();
    Ok(per_collection(&usage, timed.last_modified))
}

/// `[used_kb, quota_kb]`, the quota `null` when quotas are off.
pub async fn quota(
    State(state): State<AppState>,
    user: HawkUser,
    Preconditions(pre): Preconditions,
) -> ApiResult<Response> {
    let timed = state.store.storage_usage(user.uid, pre).await?;
    let quota = state.quota_bytes().map(kilobytes);
    Ok(reply::json(
        StatusCode::OK,
        &(kilobytes(timed.value), quota),
        timed.last_modified,
    ))
}

/// The limits this server enforces.
pub async fn configuration(State(state): State<AppState>, _user: HawkUser) -> impl IntoResponse {
    let limits = state.config.syncstorage.limits.server_configuration();
    reply::json(StatusCode::OK, &limits, SyncTimestamp::ZERO)
}
