//! Building success responses: JSON (or newline-delimited JSON) bodies with
//! `X-Last-Modified` and, for pages, `X-Weave-Records`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::extract::ReplyFormat;
use super::headers::{set, X_LAST_MODIFIED, X_WEAVE_NEXT_OFFSET, X_WEAVE_RECORDS};
use super::records;
use crate::db::Page;
use crate::error::{ApiError, ApiResult};
use crate::metrics;
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

/// A page of records (or ids) as JSON or newlines, with `X-Weave-Records`
/// and, when more follow, `X-Weave-Next-Offset`.
pub async fn page(
    format: ReplyFormat,
    full: bool,
    page: Page,
    last_modified: SyncTimestamp,
    read: metrics::Read,
) -> ApiResult<Response> {
    let Page { head, rows } = page;
    let mut response = records::body(format, full, head.records, rows, read)
        .await?
        .into_response();
    let headers = response.headers_mut();
    let content_type = match format {
        ReplyFormat::Json => "application/json",
        ReplyFormat::Newlines => "application/newlines",
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    set(headers, X_LAST_MODIFIED, last_modified);
    set(headers, X_WEAVE_RECORDS, head.records);
    if let Some(next) = head.next_offset {
        set(headers, X_WEAVE_NEXT_OFFSET, next);
    }
    Ok(response)
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
