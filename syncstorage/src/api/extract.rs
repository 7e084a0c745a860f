//! Extractors: one per kind of input, each turning raw HTTP into a typed,
//! validated value or the protocol's error.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::auth::HawkUser;
use super::headers::{X_IF_MODIFIED_SINCE, X_IF_UNMODIFIED_SINCE};
use crate::db::Uid;
use crate::error::{ApiError, WeaveCode};
use crate::model::bso::{BsoId, CollectionName};
use crate::model::precondition::Precondition;
use crate::model::timestamp::SyncTimestamp;

impl<S: Send + Sync> FromRequestParts<S> for HawkUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // Set by `auth::require_hawk`; absent only if a route missed the layer.
        parts
            .extensions
            .get::<HawkUser>()
            .copied()
            .ok_or(ApiError::Unauthorized { stale: None })
    }
}

/// `/1.5/{uid}/storage/{collection}` for the authenticated user.
#[derive(Debug)]
pub struct CollectionPath {
    pub uid: Uid,
    pub collection: CollectionName,
}

impl<S: Send + Sync> FromRequestParts<S> for CollectionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let user = HawkUser::from_request_parts(parts, state).await?;
        let Path((_, collection)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        Ok(Self {
            uid: user.uid,
            collection: collection_name(&collection)?,
        })
    }
}

/// `/1.5/{uid}/storage/{collection}/{id}` for the authenticated user.
#[derive(Debug)]
pub struct BsoPath {
    pub uid: Uid,
    pub collection: CollectionName,
    pub id: BsoId,
}

impl<S: Send + Sync> FromRequestParts<S> for BsoPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let user = HawkUser::from_request_parts(parts, state).await?;
        let Path((_, collection, id)) =
            Path::<(String, String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::BadRequest(WeaveCode::InvalidBso))?;
        Ok(Self {
            uid: user.uid,
            collection: collection_name(&collection)?,
            id: BsoId::parse(&id).ok_or(ApiError::BadRequest(WeaveCode::InvalidBso))?,
        })
    }
}

fn collection_name(name: &str) -> Result<CollectionName, ApiError> {
    CollectionName::parse(name).ok_or(ApiError::BadRequest(WeaveCode::InvalidCollection))
}

/// `X-If-Modified-Since` / `X-If-Unmodified-Since`. Both at once, or a
/// value that is not a non-negative decimal, is a 400.
#[derive(Debug, Clone, Copy)]
pub struct Preconditions(pub Precondition);

impl<S: Send + Sync> FromRequestParts<S> for Preconditions {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let read = |name| -> Result<Option<SyncTimestamp>, ApiError> {
            parts
                .headers
                .get(name)
                .map(|v| {
                    v.to_str()
                        .ok()
                        .and_then(SyncTimestamp::parse_seconds)
                        .ok_or(ApiError::BadRequest(WeaveCode::Unknown))
                })
                .transpose()
        };
        let precondition = match (read(X_IF_MODIFIED_SINCE)?, read(X_IF_UNMODIFIED_SINCE)?) {
            (Some(_), Some(_)) => return Err(ApiError::BadRequest(WeaveCode::Unknown)),
            (Some(t), None) => Precondition::IfModifiedSince(t),
            (None, Some(t)) => Precondition::IfUnmodifiedSince(t),
            (None, None) => Precondition::None,
        };
        Ok(Self(precondition))
    }
}

/// The response format a multi-record GET asked for with `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyFormat {
    Json,
    Newlines,
}

impl<S: Send + Sync> FromRequestParts<S> for ReplyFormat {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(accept) = parts.headers.get(header::ACCEPT) else {
            return Ok(ReplyFormat::Json);
        };
        let accept = accept.to_str().map_err(|_| ApiError::NotAcceptable)?;
        let types: Vec<String> = accept
            .split(',')
            .map(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .collect();
        // JSON is preferred whenever it is acceptable (spec order).
        if types.iter().any(|t| {
            matches!(
                t.as_str(),
                "application/json" | "application/*" | "*/*" | ""
            )
        }) {
            Ok(ReplyFormat::Json)
        } else if types.iter().any(|t| t == "application/newlines") {
            Ok(ReplyFormat::Newlines)
        } else {
            Err(ApiError::NotAcceptable)
        }
    }
}

/// The format of a write's body, from `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`, or `text/plain` (old clients send JSON with it).
    Json,
    /// `application/newlines`: one JSON object per line.
    Newlines,
}

impl BodyFormat {
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        let media_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        match media_type.as_deref() {
            Some("application/json" | "text/plain") => Ok(BodyFormat::Json),
            Some("application/newlines") => Ok(BodyFormat::Newlines),
            _ => Err(ApiError::UnsupportedMediaType),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BodyFormat {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        BodyFormat::from_headers(&parts.headers)
    }
}

/// The query string as name/value pairs (later duplicates win on lookup).
#[derive(Debug, Default)]
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// A request's query string (without the `?`); 400 if it is not one.
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        serde_urlencoded::from_str(query)
            .map(QueryPairs)
            .map_err(|_| ApiError::BadRequest(WeaveCode::Unknown))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        QueryPairs::parse(parts.uri.query().unwrap_or(""))
    }
}
