//! `/1.5/{uid}/storage/{collection}`: GET (with paging), POST (with
//! batches), DELETE (whole collection or `ids`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;

use super::body::post_items;
use super::extract::{BodyFormat, CollectionPath, Preconditions, QueryPairs, ReplyFormat};
use super::headers::{set, X_WEAVE_QUOTA_REMAINING};
use super::query::{self, BatchMode};
use super::{reply, upload_limits, AppState};
use crate::db::{BatchId, Written};
use crate::error::{ApiError, ApiResult, WeaveCode};
use crate::metrics;
use crate::model::post::plan_post;
use crate::model::timestamp::SyncTimestamp;

pub async fn get(
    State(state): State<AppState>,
    path: CollectionPath,
    Preconditions(pre): Preconditions,
    format: ReplyFormat,
    params: QueryPairs,
) -> ApiResult<Response> {
    let query = query::bso_query(&params, &state.config.syncstorage.limits)?;
    let timed = state
        .store
        .get_bsos(path.uid, &path.collection, &query, pre)
        .await?;
    let read = metrics::Read::of(&path.collection);
    reply::page(format, query.full, timed.value, timed.last_modified, read).await
}

/// The body of a POST's answer: `modified` for stored writes, `batch` for
/// staged ones.
#[derive(Serialize)]
struct PostReply<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    modified: Option<SyncTimestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<&'a str>,
    success: Vec<String>,
    failed: &'a std::collections::BTreeMap<String, String>,
}

pub async fn post(
    State(state): State<AppState>,
    path: CollectionPath,
    Preconditions(pre): Preconditions,
    params: QueryPairs,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let format = BodyFormat::from_headers(&headers)?;
    let mode = query::batch_mode(&params)?;
    upload_limits::check_declared(&headers, &state.config.syncstorage.limits, &mode)?;
    let items = post_items(format, &body)?;
    let invalid = || ApiError::BadRequest(WeaveCode::InvalidBso);
    let plan = plan_post(items, &state.config.syncstorage.limits).map_err(|_| invalid())?;
    if plan.writes.iter().any(|w| w.refused_in(&path.collection)) {
        return Err(invalid());
    }
    let success: Vec<String> = plan
        .writes
        .iter()
        .map(|w| w.id.as_str().to_owned())
        .collect();
    let (uid, coll, pre) = (path.uid, &path.collection, pre.for_write());
    let store = &state.store;
    let outcome = match mode {
        BatchMode::None => Outcome::Written(store.post_bsos(uid, coll, plan.writes, pre).await?),
        BatchMode::Create => {
            let timed = store.create_batch(uid, coll, plan.writes, pre).await?;
            Outcome::Staged(timed.value, timed.last_modified)
        }
        BatchMode::Append(id) => {
            let batch = BatchId(id);
            let ts = store
                .append_batch(uid, coll, &batch, plan.writes, pre)
                .await?;
            Outcome::Staged(batch, ts)
        }
        BatchMode::Commit(id) => {
            let batch = BatchId(id);
            Outcome::Written(
                store
                    .commit_batch(uid, coll, &batch, plan.writes, pre)
                    .await?,
            )
        }
    };
    Ok(match outcome {
        Outcome::Written(written) => {
            let body = PostReply {
                modified: Some(written.modified),
                batch: None,
                success,
                failed: &plan.failed,
            };
            write_reply(&state, &body, written)
        }
        Outcome::Staged(batch, collection_modified) => {
            let body = PostReply {
                modified: None,
                batch: Some(&batch.0),
                success,
                failed: &plan.failed,
            };
            reply::json(StatusCode::ACCEPTED, &body, collection_modified)
        }
    })
}

/// What a POST did: stored its writes, or staged them in a batch.
enum Outcome {
    Written(Written),
    Staged(BatchId, SyncTimestamp),
}

/// 200 with `X-Last-Modified` and, with quotas on, `X-Weave-Quota-Remaining`.
pub fn write_reply<T: Serialize>(state: &AppState, body: &T, written: Written) -> Response {
    let mut response = reply::json(StatusCode::OK, body, written.modified);
    if let (Some(quota), Some(used)) = (state.quota_bytes(), written.usage) {
        set(
            response.headers_mut(),
            X_WEAVE_QUOTA_REMAINING,
            quota.saturating_sub(used) / 1024,
        );
    }
    response
}

pub async fn delete(
    State(state): State<AppState>,
    path: CollectionPath,
    Preconditions(pre): Preconditions,
    params: QueryPairs,
) -> ApiResult<Response> {
    let pre = pre.for_write();
    let written = match query::ids(&params, &state.config.syncstorage.limits)? {
        Some(ids) => {
            state
                .store
                .delete_bsos(path.uid, &path.collection, &ids, pre)
                .await?
        }
        None => {
            state
                .store
                .delete_collection(path.uid, &path.collection, pre)
                .await?
        }
    };
    Ok(write_reply(&state, &written.modified, written))
}
