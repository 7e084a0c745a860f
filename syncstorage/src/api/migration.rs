//! `/__migration__/{uid}…`: the tokenserver moving a user's data between
//! nodes (ADR 0013), signed as the tokenserver's own uid on this node.
//!
//! - `GET {uid}`: the user's timestamps; `POST {uid}`: fence the user's
//!   writes; `PUT {uid}`: finish an import; `PATCH {uid}`: serve the user
//!   here (lift any fence or revocation of the uid; after the switch);
//!   `DELETE {uid}`: evict the user's data (the fence stays).
//! - `GET {uid}/{collection}?after=&limit=`: a page of live records in id
//!   order; `PUT`: import records; `DELETE`: drop the collection.

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sync_common::migration::{Fence, Finish, Import, Records, UserState, MAX_RECORDS};

use super::auth::from_tokenserver;
use super::AppState;
use crate::db::Uid;
use crate::error::{ApiError, ApiResult, WeaveCode};
use crate::model::bso::CollectionName;

#[derive(Deserialize)]
pub struct Page {
    #[serde(default)]
    after: String,
    limit: Option<u64>,
}

pub async fn state(
    State(state): State<AppState>,
    Path(uid): Path<u64>,
    request: Request,
) -> ApiResult<Json<UserState>> {
    from_tokenserver(&state, request).await?;
    Ok(Json(state.store.user_state(uid_of(uid)?).await?))
}

pub async fn fence(
    State(state): State<AppState>,
    Path(uid): Path<u64>,
    request: Request,
) -> ApiResult<StatusCode> {
    let fence: Fence = body(&state, request).await?;
    let until = crate::model::timestamp::SyncTimestamp::now()
        .as_seconds()
        .saturating_add(fence.seconds);
    state.store.fence_user(uid_of(uid)?, until).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn finish(
    State(state): State<AppState>,
    Path(uid): Path<u64>,
    request: Request,
) -> ApiResult<StatusCode> {
    let finish: Finish = body(&state, request).await?;
    state
        .store
        .finish_import(uid_of(uid)?, finish.modified)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn serve(
    State(state): State<AppState>,
    Path(uid): Path<u64>,
    request: Request,
) -> ApiResult<StatusCode> {
    from_tokenserver(&state, request).await?;
    state.store.serve_user(uid_of(uid)?).await?;
    // A revocation of the uid here was lifted: serve it now.
    state.revocations.refresh().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn evict(
    State(state): State<AppState>,
    Path(uid): Path<u64>,
    request: Request,
) -> ApiResult<StatusCode> {
    from_tokenserver(&state, request).await?;
    state.store.evict_user(uid_of(uid)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn export(
    State(state): State<AppState>,
    Path((uid, coll)): Path<(u64, String)>,
    Query(page): Query<Page>,
    request: Request,
) -> ApiResult<Json<Records>> {
    from_tokenserver(&state, request).await?;
    let limit = page
        .limit
        .unwrap_or(MAX_RECORDS as u64)
        .min(MAX_RECORDS as u64);
    let records = state
        .store
        .export_records(uid_of(uid)?, &collection(&coll)?, &page.after, limit)
        .await?;
    Ok(Json(Records { records }))
}

pub async fn import(
    State(state): State<AppState>,
    Path((uid, coll)): Path<(u64, String)>,
    request: Request,
) -> ApiResult<StatusCode> {
    let import: Import = body(&state, request).await?;
    if import.records.len() > MAX_RECORDS {
        return Err(ApiError::BadRequest(WeaveCode::Unknown));
    }
    state
        .store
        .import_records(uid_of(uid)?, &collection(&coll)?, import)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn drop(
    State(state): State<AppState>,
    Path((uid, coll)): Path<(u64, String)>,
    request: Request,
) -> ApiResult<StatusCode> {
    from_tokenserver(&state, request).await?;
    state
        .store
        .drop_collection(uid_of(uid)?, &collection(&coll)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed JSON body.
async fn body<T: DeserializeOwned>(state: &AppState, request: Request) -> ApiResult<T> {
    let (_, body) = from_tokenserver(state, request).await?;
    serde_json::from_slice(&body).map_err(|_| ApiError::BadRequest(WeaveCode::JsonParse))
}

fn uid_of(uid: u64) -> ApiResult<Uid> {
    Uid::new(uid).ok_or(ApiError::NotFound)
}

fn collection(name: &str) -> ApiResult<CollectionName> {
    CollectionName::parse(name).ok_or(ApiError::BadRequest(WeaveCode::InvalidCollection))
}
