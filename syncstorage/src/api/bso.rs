//! `/1.5/{uid}/storage/{collection}/{id}`: GET, PUT, DELETE of one BSO.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;

use super::body::put_object;
use super::collection::write_reply;
use super::extract::{BodyFormat, BsoPath, Preconditions};
use super::{reply, AppState};
use crate::error::{ApiError, ApiResult, WeaveCode};
use crate::metrics;
use crate::model::bso::parse_bso;
use crate::model::timestamp::SyncTimestamp;

/// `{"modified": ts}` (a struct, so the timestamp keeps its two decimals).
#[derive(Serialize)]
struct Modified {
    modified: SyncTimestamp,
}

pub async fn get(
    State(state): State<AppState>,
    path: BsoPath,
    Preconditions(pre): Preconditions,
) -> ApiResult<Response> {
    let bso = state
        .store
        .get_bso(path.uid, &path.collection, &path.id, pre)
        .await?;
    metrics::Read::of(&path.collection).add(&bso);
    Ok(reply::json(StatusCode::OK, &bso, bso.modified))
}

pub async fn put(
    State(state): State<AppState>,
    path: BsoPath,
    Preconditions(pre): Preconditions,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    BodyFormat::from_headers(&headers)?;
    let object = put_object(&body)?;
    let invalid = || ApiError::BadRequest(WeaveCode::InvalidBso);
    // An id in the body must name the same BSO as the URL.
    if object
        .get("id")
        .is_some_and(|id| id.as_str() != Some(path.id.as_str()))
    {
        return Err(invalid());
    }
    let write = parse_bso(&object, path.id).map_err(|_| invalid())?;
    if write.payload_len() as u64 > state.config.syncstorage.limits.max_record_payload_bytes
        || write.refused_in(&path.collection)
    {
        return Err(invalid());
    }
    let written = state
        .store
        .put_bso(path.uid, &path.collection, write, pre.for_write())
        .await?;
    Ok(write_reply(&state, &written.modified, written))
}

pub async fn delete(
    State(state): State<AppState>,
    path: BsoPath,
    Preconditions(pre): Preconditions,
) -> ApiResult<Response> {
    let written = state
        .store
        .delete_bso(path.uid, &path.collection, &path.id, pre.for_write())
        .await?;
    Ok(write_reply(
        &state,
        &Modified {
            modified: written.modified,
        },
        written,
    ))
}
