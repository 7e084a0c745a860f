//! Building success responses: JSON (or newline-delimited JSON) bodies with
//! `X-Last-Modified` and, for lists, `X-Weave-Records`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::extract::ReplyFormat;
use super::headers::{set, X_LAST_MODIFIED, X_WEAVE_RECORDS};
use crate::error::ApiError;
use crate::model::timestamp::SyncTimestamp;

/// A JSON response with `X-Last-Modified`.
pub fn json<T: Serialize>(status: StatusCode, body: &T, last_modified: SyncTimestamp) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            set(headers, X_LAST_MODIFIED, last_modified);
            response
        }
        Err(e) => ApiError::Internal(Box::new(e)).into_response(),
    }
}

/// A list of records as JSON or newlines, with `X-Weave-Records`.
pub fn records<T: Serialize>(
    format: ReplyFormat,
    items: &[T],
    last_modified: SyncTimestamp,
) -> Response {
    let mut response = match format {
        ReplyFormat::Json => json(StatusCode::OK, &items, last_modified),
        ReplyFormat::Newlines => newlines(items, last_modified),
    };
    set(response.headers_mut(), X_WEAVE_RECORDS, items.len());
    response
}

fn newlines<T: Serialize>(items: &[T], last_modified: SyncTimestamp) -> Response {
    let mut body = Vec::new();
    for item in items {
        // serde_json escapes newlines inside strings, so each record is one line.
        if let Err(e) = serde_json::to_writer(&mut body, item) {
            return ApiError::Internal(Box::new(e)).into_response();
        }
        body.push(b'\n');
    }
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/newlines"),
    );
    set(headers, X_LAST_MODIFIED, last_modified);
    response
}

/// Serialises `[(name, value)]` as a JSON object, keeping value types
/// (timestamps stay two-decimal numbers).
pub struct PerCollection<'a, T>(pub &'a [(String, T)]);

impl<T: Serialize> Serialize for PerCollection<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}
