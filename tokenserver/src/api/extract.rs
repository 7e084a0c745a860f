//! Reading the token request's inputs into typed values.

use axum::http::{header, HeaderMap};

use crate::error::{ApiResult, TokenserverError};

/// The token of `Authorization: Bearer <token>`. The scheme is matched
/// case-insensitively and the header split at its first space only.
pub fn bearer_token(headers: &HeaderMap) -> ApiResult<&str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(TokenserverError::unauthorized)?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(TokenserverError::unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenserverError::unsupported_scheme());
    }
    Ok(token.trim())
}

/// `?duration=N`: honoured when `0 < N <= max`; a value that is not a number
/// is ignored, as Mozilla does ("an error in the duration query parameter
/// should never cause a request to fail"). Only a query string that does
/// not parse (a repeated `duration`) is refused.
pub fn token_duration(query: Option<&str>, max: u64) -> ApiResult<u64> {
    #[derive(serde::Deserialize)]
    struct Query {
        duration: Option<String>,
    }
    let query: Query = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|_| TokenserverError::invalid_query())?;
    Ok(match query.duration.map(|d| d.parse::<u64>()) {
        // 0 would hand out a token that is already expired: ignored, as
        // any other duration the server will not grant.
        Some(Ok(asked)) if (1..=max).contains(&asked) => asked,
        _ => max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, authorization.parse().unwrap());
        h
    }

    #[test]
    fn bearer_tokens_are_split_at_the_first_space() {
        assert_eq!(bearer_token(&headers("bEaReR a b c")).unwrap(), "a b c");
        assert_eq!(
            bearer_token(&headers("Bearer")).unwrap_err().description,
            "Unauthorized"
        );
        assert_eq!(
            bearer_token(&headers("Basic abc")).unwrap_err().description,
            "Unsupported"
        );
        assert_eq!(bearer_token(&HeaderMap::new()).unwrap_err().status, "error");
    }

    #[test]
    fn durations_are_capped_by_the_configured_one() {
        assert_eq!(token_duration(None, 3600).unwrap(), 3600);
        assert_eq!(token_duration(Some("duration=60"), 3600).unwrap(), 60);
        assert_eq!(token_duration(Some("duration=7200"), 3600).unwrap(), 3600);
        assert_eq!(token_duration(Some("duration=abc"), 3600).unwrap(), 3600);
        assert_eq!(token_duration(Some("duration=-5"), 3600).unwrap(), 3600);
        let repeated = token_duration(Some("duration=1&duration=2"), 3600);
        assert_eq!(repeated.unwrap_err().http.as_u16(), 400);
    }
}
