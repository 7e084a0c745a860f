//! Request bodies of writes: a JSON array (or newline-delimited objects)
//! for POST, one JSON object for PUT.

use serde_json::{Map, Value};

use super::extract::BodyFormat;
use crate::error::{ApiError, ApiResult, WeaveCode};

fn unparsable() -> ApiError {
    ApiError::BadRequest(WeaveCode::JsonParse)
}

fn invalid() -> ApiError {
    ApiError::BadRequest(WeaveCode::InvalidBso)
}

/// The items of a POST body: JSON that does not parse is code 6, JSON that
/// is not a list is code 8.
pub fn post_items(format: BodyFormat, body: &[u8]) -> ApiResult<Vec<Value>> {
    match format {
        BodyFormat::Json => match serde_json::from_slice(body).map_err(|_| unparsable())? {
            Value::Array(items) => Ok(items),
            _ => Err(invalid()),
        },
        BodyFormat::Newlines => newline_items(body),
    }
}

/// One JSON value a line, framed as Mozilla's server frames them
/// (`str::lines`): a final newline ends the last line and an empty body has
/// no lines, but every line there is must be JSON (a blank one is not).
fn newline_items(body: &[u8]) -> ApiResult<Vec<Value>> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    body.split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .map(|line| serde_json::from_slice(line).map_err(|_| unparsable()))
        .collect()
}

/// The object of a PUT body.
pub fn put_object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    match serde_json::from_slice(body).map_err(|_| unparsable())? {
        Value::Object(object) => Ok(object),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_parse_as_json_lists_or_lines() {
        assert_eq!(
            post_items(BodyFormat::Json, b"[{\"id\":\"a\"}]")
                .unwrap()
                .len(),
            1
        );
        let lines = b"{\"id\":\"a\"}\r\n{\"id\":\"b\"}\n";
        assert_eq!(post_items(BodyFormat::Newlines, lines).unwrap().len(), 2);
        assert!(post_items(BodyFormat::Newlines, b"").unwrap().is_empty());
        for blank in [&b"\n"[..], b"{\"id\":\"a\"}\n\n{\"id\":\"b\"}"] {
            assert!(post_items(BodyFormat::Newlines, blank).is_err());
        }
        assert!(matches!(
            post_items(BodyFormat::Json, b"[{"),
            Err(ApiError::BadRequest(WeaveCode::JsonParse))
        ));
        assert!(matches!(
            post_items(BodyFormat::Json, b"{}"),
            Err(ApiError::BadRequest(WeaveCode::InvalidBso))
        ));
    }
}
