//! HAWK authentication for `/1.5/{uid}/…`: buffers the body (bounded by
//! `max_request_bytes`), verifies the signature against the host and port
//! the client used, and checks that the token is for this node and for the
//! uid in the path, and was not revoked. Handlers receive the result as
//! [`HawkUser`].

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use sync_common::hawk::{HawkError, HawkRequest};
use sync_common::revocation::TOKENSERVER_UID;
use sync_common::token::TokenPayload;

use crate::api::AppState;
use crate::db::Uid;
use crate::error::{ApiError, ApiResult, WeaveCode};
use crate::model::timestamp::SyncTimestamp;

/// The authenticated user of a request.
#[derive(Debug, Clone, Copy)]
pub struct HawkUser {
    pub uid: Uid,
}

/// A scheme, host and port: what HAWK signs and what a token's `node` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port][/]`.
    pub fn parse(url: &str) -> Result<Self, &'static str> {
        let uri: http::Uri = url.trim_end_matches('/').parse().map_err(|_| "not a URL")?;
        let scheme = uri.scheme_str().ok_or("no http:// or https:// scheme")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err("the scheme must be http or https");
        }
        if uri.path().len() > 1 {
            return Err("a path prefix is not supported: give scheme, host and port only");
        }
        let host = uri.host().ok_or("no host")?.to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(default_port(&scheme));
        Ok(Self { scheme, host, port })
    }

    /// The origin the client addressed, from the request's headers.
    fn from_request(headers: &HeaderMap, trust_forwarded: bool) -> Option<Self> {
        let forwarded = |name: &str| {
            trust_forwarded
                .then(|| headers.get(name)?.to_str().ok())
                .flatten()
                .map(|v| v.split(',').next().unwrap_or("").trim().to_owned())
        };
        let scheme = forwarded("x-forwarded-proto")
            .unwrap_or_else(|| "http".into())
            .to_ascii_lowercase();
        let host_header = forwarded("x-forwarded-host")
            .or_else(|| Some(headers.get(header::HOST)?.to_str().ok()?.to_owned()))?;
        let authority: http::uri::Authority = host_header.parse().ok()?;
        let port = forwarded("x-forwarded-port")
            .and_then(|p| p.parse().ok())
            .or(authority.port_u16())
            .unwrap_or(default_port(&scheme));
        Some(Self {
            host: authority.host().to_ascii_lowercase(),
            scheme,
            port,
        })
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

/// The middleware guarding every `/1.5/{uid}` route.
pub async fn require_hawk(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let path_uid = path_uid(parts.uri.path());
    // Clients may check for changes with an expired token (spec: info/collections).
    let allow_expired = parts.method == http::Method::GET
        && path_uid.is_some_and(|uid| parts.uri.path() == format!("/1.5/{uid}/info/collections"));
    let (token, body) = authenticate(&state, &parts, body, allow_expired).await?;
    let path_uid = path_uid.ok_or(ApiError::NotFound)?;
    if token.uid == TOKENSERVER_UID || token.uid != path_uid {
        tracing::debug!("token is for another user");
        return Err(ApiError::Unauthorized { stale: None });
    }
    if state.revocations.refuses(&token) {
        tracing::debug!("token was revoked: the user moved");
        return Err(ApiError::Unauthorized { stale: None });
    }
    let uid = Uid::new(token.uid).ok_or(ApiError::Unauthorized { stale: None })?;
    parts.extensions.insert(HawkUser { uid });
    Ok(next.run(Request::from_parts(parts, Body::from(body))).await)
}

/// A request from the tokenserver itself (revocations, migrations): signed
/// with a token for its own uid on this node. Its token and body.
pub async fn from_tokenserver(
    state: &AppState,
    request: Request,
) -> ApiResult<(TokenPayload, bytes::Bytes)> {
    let (parts, body) = request.into_parts();
    let (token, body) = authenticate(state, &parts, body, false).await?;
    if token.uid != TOKENSERVER_UID {
        tracing::debug!("a user's token cannot act for the tokenserver");
        return Err(ApiError::Unauthorized { stale: None });
    }
    // Its bodies must be signed too (HAWK signs a body only through its hash).
    let hashed = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("hash="));
    if !body.is_empty() && !hashed {
        tracing::debug!("an unhashed body from the tokenserver's token");
        return Err(ApiError::Unauthorized { stale: None });
    }
    Ok((token, body))
}

/// Verifies a HAWK-signed request: the signature against the host and port
/// the client used, the token's expiry (unless `allow_expired`), and that
/// the token is for this node. Returns the token and the body (no body is
/// read for a request without a genuine token).
pub async fn authenticate(
    state: &AppState,
    parts: &Parts,
    body: Body,
    allow_expired: bool,
) -> ApiResult<(TokenPayload, bytes::Bytes)> {
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let signed = state.hawk.precheck(authorization).map_err(unauthorized)?;
    let limit = state.config.syncstorage.limits.max_request_bytes();
    let body = read_body(&parts.headers, body, limit).await?;
    let origin = match &state.public_origin {
        Some(origin) => origin.clone(),
        None => Origin::from_request(&parts.headers, state.config.trust_forwarded_headers)
            .ok_or(ApiError::Unauthorized { stale: None })?,
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |pq| pq.as_str());
    let hawk_request = HawkRequest {
        method: parts.method.as_str(),
        host: &origin.host,
        port: origin.port,
        path_and_query,
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        body: &body,
    };
    let now = SyncTimestamp::now().as_seconds();
    let token = state
        .hawk
        .verify_signed(signed, &hawk_request, now, allow_expired)
        .await
        .map_err(unauthorized)?;
    if !Origin::parse(&token.node).is_ok_and(|node| node == origin) {
        tracing::debug!("token is for another node");
        return Err(ApiError::Unauthorized { stale: None });
    }
    Ok((token, body))
}

fn unauthorized(err: HawkError) -> ApiError {
    if let HawkError::ReplayCacheUnavailable(_) = err {
        return ApiError::Unavailable(Box::new(err));
    }
    tracing::debug!(error = %err, "HAWK authentication failed");
    match err {
        HawkError::StaleTimestamp { now, tsm } => ApiError::Unauthorized {
            stale: Some((now, tsm)),
        },
        _ => ApiError::Unauthorized { stale: None },
    }
}

/// The body; 413 if it is (or claims to be) over `limit` bytes, 400 if it
/// breaks off or its chunked framing is malformed.
async fn read_body(headers: &HeaderMap, body: Body, limit: u64) -> ApiResult<bytes::Bytes> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::TooLarge);
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    to_bytes(body, limit).await.map_err(|e| {
        let over_limit = e
            .into_inner()
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some();
        if over_limit {
            ApiError::TooLarge
        } else {
            ApiError::BadRequest(WeaveCode::Unknown)
        }
    })
}

/// The `{uid}` of `/1.5/{uid}/…`, if it is a decimal number.
fn path_uid(path: &str) -> Option<u64> {
    let uid = path.strip_prefix("/1.5/")?.split('/').next()?;
    if uid.is_empty() || uid.len() > 20 || !uid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    uid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_normalise_default_ports_and_case() {
        let a = Origin::parse("https://Sync.Example.com/").unwrap();
        let b = Origin::parse("https://sync.example.com:443").unwrap();
        assert_eq!(a, b);
        assert_eq!(Origin::parse("http://localhost:8000").unwrap().port, 8000);
        assert!(Origin::parse("ftp://x").is_err());
        assert!(Origin::parse("https://x/sync").is_err());
        assert!(Origin::parse("localhost").is_err());
    }

    #[test]
    fn forwarded_headers_count_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "internal:8000".parse().unwrap());
        headers.insert("x-forwarded-host", "sync.example.com".parse().unwrap());
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        let direct = Origin::from_request(&headers, false).unwrap();
        assert_eq!((direct.host.as_str(), direct.port), ("internal", 8000));
        let proxied = Origin::from_request(&headers, true).unwrap();
        assert_eq!(proxied, Origin::parse("https://sync.example.com").unwrap());
    }

    #[test]
    fn path_uids_must_be_decimal() {
        assert_eq!(path_uid("/1.5/42/info/collections"), Some(42));
        assert_eq!(path_uid("/1.5/42"), Some(42));
        assert_eq!(path_uid("/1.5/abc/storage"), None);
        assert_eq!(path_uid("/1.5/-1"), None);
    }
}
