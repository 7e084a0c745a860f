//! The one place where failures become SyncStorage wire responses: every
//! status, body and header of an error is written in `into_response`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::headers::X_LAST_MODIFIED;
use crate::db::DbError;
use crate::metrics;
use crate::model::timestamp::SyncTimestamp;

/// Seconds a client should wait after a 409 or 503.
pub const RETRY_AFTER_SECONDS: u64 = 10;

/// Sync response codes, sent as the bare JSON integer body of a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeaveCode {
    Unknown = 0,
    IllegalMethod = 1,
    JsonParse = 6,
    InvalidBso = 8,
    InvalidCollection = 13,
    OverQuota = 14,
    SizeLimitExceeded = 17,
}

/// Every way a storage request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400, body: the Sync response code.
    #[error("bad request ({0:?})")]
    BadRequest(WeaveCode),
    /// 401, body `0`. A stale HAWK timestamp adds `WWW-Authenticate` with the
    /// server time (`now`) and its MAC (`tsm`) so the client can correct.
    #[error("unauthorized")]
    Unauthorized { stale: Option<(u64, String)> },
    /// 404, body `0`.
    #[error("not found")]
    NotFound,
    /// 405, body `0`: a method the resource does not take (`Allow` is added
    /// by the router).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 406, body `0`: an `Accept` we cannot produce.
    #[error("not acceptable")]
    NotAcceptable,
    /// 409 with `Retry-After`, body `0`: a concurrent write won.
    #[error("conflict")]
    Conflict,
    /// 412 with `X-Last-Modified`, empty body.
    #[error("precondition failed")]
    PreconditionFailed(SyncTimestamp),
    /// 304 with `X-Last-Modified`, empty body.
    #[error("not modified")]
    NotModified(SyncTimestamp),
    /// 413, body `17`: the request body is over `max_request_bytes`.
    #[error("request too large")]
    TooLarge,
    /// 415, body `0`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 503 with `Retry-After`, body `0`: the database is down or saturated.
    #[error("service unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 513, body `0`: the service is decommissioned (with `X-Weave-Alert`).
    #[error("service decommissioned")]
    Decommissioned,
    /// 500, body `0`; details go to the log only.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::NotFound => ApiError::NotFound,
            DbError::NotModified(t) => ApiError::NotModified(t),
            DbError::PreconditionFailed(t) => ApiError::PreconditionFailed(t),
            DbError::Conflict => ApiError::Conflict,
            DbError::QuotaExceeded => ApiError::BadRequest(WeaveCode::OverQuota),
            DbError::BatchNotFound => ApiError::BadRequest(WeaveCode::Unknown),
            DbError::BatchTooLarge => ApiError::BadRequest(WeaveCode::SizeLimitExceeded),
            DbError::Fenced => ApiError::Unavailable("the user is moving to another node".into()),
            DbError::Unavailable(source) => ApiError::Unavailable(source),
            DbError::Other(source) => ApiError::Internal(source),
        }
    }
}

fn code_body(status: StatusCode, code: WeaveCode) -> Response {
    let mut response = (status, (code as u8).to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn with_last_modified(status: StatusCode, ts: SyncTimestamp) -> Response {
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(&ts.to_string()) {
        response.headers_mut().insert(X_LAST_MODIFIED, value);
    }
    response
}

fn retry_later(status: StatusCode) -> Response {
    let mut response = code_body(status, WeaveCode::Unknown);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest(code) => {
                if code == WeaveCode::OverQuota {
                    metrics::quota_rejection();
                }
                code_body(StatusCode::BAD_REQUEST, code)
            }
            ApiError::Unauthorized { stale } => {
                let mut response = code_body(StatusCode::UNAUTHORIZED, WeaveCode::Unknown);
                if let Some((now, tsm)) = stale {
                    let value =
                        format!("Hawk ts=\"{now}\", tsm=\"{tsm}\", error=\"Stale timestamp\"");
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        response
                            .headers_mut()
                            .insert(header::WWW_AUTHENTICATE, value);
                    }
                }
                response
            }
            ApiError::NotFound => code_body(StatusCode::NOT_FOUND, WeaveCode::Unknown),
            ApiError::MethodNotAllowed => {
                code_body(StatusCode::METHOD_NOT_ALLOWED, WeaveCode::Unknown)
            }
            ApiError::NotAcceptable => code_body(StatusCode::NOT_ACCEPTABLE, WeaveCode::Unknown),
            ApiError::Conflict => {
                metrics::conflict();
                retry_later(StatusCode::CONFLICT)
            }
            ApiError::PreconditionFailed(ts) => {
                metrics::precondition(412);
                with_last_modified(StatusCode::PRECONDITION_FAILED, ts)
            }
            ApiError::NotModified(ts) => {
                metrics::precondition(304);
                with_last_modified(StatusCode::NOT_MODIFIED, ts)
            }
            ApiError::TooLarge => {
                code_body(StatusCode::PAYLOAD_TOO_LARGE, WeaveCode::SizeLimitExceeded)
            }
            ApiError::UnsupportedMediaType => {
                code_body(StatusCode::UNSUPPORTED_MEDIA_TYPE, WeaveCode::Unknown)
            }
            ApiError::Unavailable(source) => {
                tracing::warn!(error = %source, "service unavailable");
                retry_later(StatusCode::SERVICE_UNAVAILABLE)
            }
            ApiError::Decommissioned => match StatusCode::from_u16(513) {
                Ok(status) => code_body(status, WeaveCode::Unknown),
                Err(_) => code_body(StatusCode::SERVICE_UNAVAILABLE, WeaveCode::Unknown),
            },
            ApiError::Internal(source) => {
                tracing::error!(error = %source, "internal error");
                code_body(StatusCode::INTERNAL_SERVER_ERROR, WeaveCode::Unknown)
            }
        }
    }
}
