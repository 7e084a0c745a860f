//! `GET /1.0/sync/1.5`: an FxA identity in, HAWK credentials for one
//! storage node out (`shared/spec/tokenserver.md`). Errors surface in
//! Mozilla's order: Authorization, OAuth, key headers, application,
//! access (ADR 0014), user record, query, user rules.

use crate::metrics;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use sync_common::token::{hmac_sha256, TokenPayload};

use super::extract::{bearer_token, token_duration};
use super::AppState;
use crate::auth::oauth::VerifyError;
use crate::db::UserRecord;
use crate::error::{ApiResult, TokenserverError};
use crate::model::keys::KeyId;
use crate::model::user::{self, Presented};
use crate::users::{self, Allocation};

const X_TIMESTAMP: HeaderName = HeaderName::from_static("x-timestamp");

/// The success body, field for field as Mozilla's tokenserver sends it.
#[derive(Serialize)]
struct TokenResponse {
    id: String,
    key: String,
    uid: i64,
    api_endpoint: String,
    duration: u64,
    hashed_fxa_uid: String,
    hashalg: &'static str,
    node_type: String,
}

pub async fn get_token(
    state: State<AppState>,
    path: Path<(String, String)>,
    query: RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let mut counted = metrics::token_request();
    let answer = token(state, path, query, headers).await;
    counted.ended(answer.as_ref().map_or_else(|e| e.status, |_| "ok"));
    answer
}

async fn token(
    State(state): State<AppState>,
    Path((application, version)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let bearer = bearer_token(&headers)?;
    let identity = state.oauth.verify(bearer).await.map_err(refused)?;
    let key_id = KeyId::parse(
        headers.get("x-keyid").map(HeaderValue::as_bytes),
        headers.get("x-client-state").and_then(|v| v.to_str().ok()),
    )?;
    check_application(&application, &version)?;
    state.access.check(&identity.fxa_uid, bearer).await?;
    let presented = Presented {
        generation: identity.generation,
        keys_changed_at: key_id.keys_changed_at,
        client_state: key_id.client_state,
    };
    let email = state.config.email(&identity.fxa_uid);
    let allocation = Allocation {
        allow_new_users: state.config.allow_new_users,
        release_rate: state.config.node_capacity_release_rate,
        cap: state.access.cap(),
    };
    let history =
        users::current_record(state.store.as_ref(), &email, &presented, allocation).await?;
    let duration = token_duration(query.as_deref(), state.config.token_duration)?;
    user::check(
        &presented,
        &history.current.keys,
        &history.old_client_states,
    )?;
    let change = user::next(&presented, &history.current.keys);
    let record = users::apply(state.store.as_ref(), history.current, change).await?;
    respond(&state, &identity.fxa_uid, &record, duration)
}

fn refused(err: VerifyError) -> TokenserverError {
    match err {
        VerifyError::Invalid(reason) => {
            tracing::debug!(%reason, "OAuth token refused");
            TokenserverError::invalid_credentials()
        }
        VerifyError::Unavailable(reason) => TokenserverError::unavailable(reason),
    }
}

fn check_application(application: &str, version: &str) -> ApiResult<()> {
    if application != "sync" {
        return Err(TokenserverError::unsupported_application());
    }
    if version != "1.5" {
        return Err(TokenserverError::unsupported_version(version));
    }
    Ok(())
}

/// Mints the token for `record` and shapes the 200.
fn respond(
    state: &AppState,
    fxa_uid: &str,
    record: &UserRecord,
    duration: u64,
) -> ApiResult<Response> {
    let node = record
        .node
        .clone()
        .ok_or_else(|| TokenserverError::internal("the user's node vanished"))?;
    let hashed_fxa_uid = metrics_hash(state.metrics_key.expose(), fxa_uid);
    let keys = &record.keys;
    let now = unix_now();
    let payload = TokenPayload {
        node: node.clone(),
        fxa_kid: format!(
            "{:013}-{}",
            keys.keys_changed_at.unwrap_or(keys.generation),
            keys.client_state.to_b64()
        ),
        fxa_uid: fxa_uid.to_owned(),
        hashed_device_id: metrics_hash(
            state.metrics_key.expose(),
            &format!("{hashed_fxa_uid}none"),
        ),
        hashed_fxa_uid: hashed_fxa_uid.clone(),
        expires: now + duration,
        uid: u64::try_from(record.uid).map_err(|_| TokenserverError::internal("negative uid"))?,
        tokenserver_origin: "rust".into(),
        salt: TokenPayload::random_salt(),
        node_epoch: u64::try_from(record.node_epoch).unwrap_or(0),
    };
    let minted = state
        .secrets
        .make_token(&payload)
        .map_err(TokenserverError::internal)?;
    let body = TokenResponse {
        id: minted.token,
        key: minted.derived_secret,
        uid: record.uid,
        api_endpoint: format!("{node}/1.5/{}", record.uid),
        duration,
        hashed_fxa_uid,
        hashalg: "sha256",
        node_type: state.config.node_type.clone(),
    };
    let headers = [
        (X_TIMESTAMP, HeaderValue::from(now)),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    Ok((headers, Json(body)).into_response())
}

/// The first 32 hex characters of HMAC-SHA256(key, message).
fn metrics_hash(key: &str, message: &str) -> String {
    let mut hex = hex::encode(hmac_sha256(key.as_bytes(), message.as_bytes()));
    hex.truncate(32);
    hex
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
