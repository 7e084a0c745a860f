//! Sizes a client announces before uploading (`X-Weave-Records`,
//! `X-Weave-Bytes`, and for batches `X-Weave-Total-Records`,
//! `X-Weave-Total-Bytes`): over a limit is 400 with code 17, so the client
//! can split its upload before sending it.

use axum::http::{HeaderMap, HeaderName};

use super::headers::{X_WEAVE_BYTES, X_WEAVE_RECORDS, X_WEAVE_TOTAL_BYTES, X_WEAVE_TOTAL_RECORDS};
use super::query::BatchMode;
use crate::error::{ApiError, ApiResult, WeaveCode};
use crate::model::limits::Limits;

fn declared(headers: &HeaderMap, name: &HeaderName, code: WeaveCode) -> ApiResult<Option<u64>> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(ApiError::BadRequest(code))
        })
        .transpose()
}

fn within(value: Option<u64>, limit: u64) -> ApiResult<()> {
    match value {
        Some(v) if v > limit => Err(ApiError::BadRequest(WeaveCode::SizeLimitExceeded)),
        _ => Ok(()),
    }
}

/// Checks the announced sizes of a POST against `limits`.
pub fn check_declared(headers: &HeaderMap, limits: &Limits, mode: &BatchMode) -> ApiResult<()> {
    within(
        declared(headers, &X_WEAVE_RECORDS, WeaveCode::Unknown)?,
        limits.max_post_records,
    )?;
    within(
        declared(headers, &X_WEAVE_BYTES, WeaveCode::Unknown)?,
        limits.max_post_bytes,
    )?;
    // Totals describe a whole batch; a plain POST ignores them.
    if *mode != BatchMode::None {
        within(
            declared(headers, &X_WEAVE_TOTAL_RECORDS, WeaveCode::IllegalMethod)?,
            limits.max_total_records,
        )?;
        within(
            declared(headers, &X_WEAVE_TOTAL_BYTES, WeaveCode::IllegalMethod)?,
            limits.max_total_bytes,
        )?;
    }
    Ok(())
}
