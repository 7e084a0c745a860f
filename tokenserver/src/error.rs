//! The one place where tokenserver failures become wire responses: the
//! status, the `status` string and the `errors` entry of every case in the
//! spec's error table (`shared/spec/tokenserver.md`, "Error responses").

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::DbError;

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECONDS: u64 = 10;

/// Where the offending input was, as the error body names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Body,
    Header,
    Url,
    Internal,
}

impl Location {
    fn as_str(self) -> &'static str {
        match self {
            Location::Body => "body",
            Location::Header => "header",
            Location::Url => "url",
            Location::Internal => "internal",
        }
    }
}

/// A failed token request: everything the error body says, plus (for
/// server-side failures) a source that is logged and never sent.
#[derive(Debug, thiserror::Error)]
#[error("{http} {status}: {description}")]
pub struct TokenserverError {
    pub http: StatusCode,
    pub status: &'static str,
    pub location: Location,
    pub name: String,
    pub description: String,
    /// Ask the client to come back later (`Retry-After`).
    pub retry_after: bool,
    /// What went wrong inside; logged, never sent.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub type ApiResult<T> = Result<T, TokenserverError>;

fn error(
    http: StatusCode,
    status: &'static str,
    location: Location,
    description: &str,
) -> TokenserverError {
    TokenserverError {
        http,
        status,
        location,
        name: String::new(),
        description: description.to_owned(),
        retry_after: false,
        source: None,
    }
}

impl TokenserverError {
    fn named(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// 401 `error`: no Authorization header, or one without a scheme.
    pub fn unauthorized() -> Self {
        error(
            StatusCode::UNAUTHORIZED,
            "error",
            Location::Body,
            "Unauthorized",
        )
    }

    /// 401 `error`: an Authorization scheme other than Bearer.
    pub fn unsupported_scheme() -> Self {
        error(
            StatusCode::UNAUTHORIZED,
            "error",
            Location::Body,
            "Unsupported",
        )
    }

    /// 401 `invalid-credentials`: the OAuth token failed verification or
    /// lacks the scope, or X-KeyID is malformed.
    pub fn invalid_credentials() -> Self {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid-credentials",
            Location::Body,
            "Unauthorized",
        )
    }

    /// 401 `invalid-key-id`: X-KeyID is absent.
    pub fn missing_key_id() -> Self {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid-key-id",
            Location::Header,
            "Missing X-KeyID header",
        )
    }

    /// 401 `invalid-key-id`: X-KeyID is not readable text.
    pub fn unreadable_key_id() -> Self {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid-key-id",
            Location::Header,
            "Invalid X-KeyID header",
        )
    }

    /// 400 `error`: X-Client-State is not a valid value.
    pub fn malformed_client_state() -> Self {
        error(
            StatusCode::BAD_REQUEST,
            "error",
            Location::Header,
            "Invalid client state value",
        )
        .named("X-Client-State")
    }

    /// 401 `invalid-client-state`: X-Client-State disagrees with X-KeyID.
    pub fn client_state_mismatch() -> Self {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid-client-state",
            Location::Body,
            "Unauthorized",
        )
    }

    /// 401 `invalid-client-state`: a client state the user-record rules refuse.
    pub fn invalid_client_state(reason: &str) -> Self {
        let description = format!("Unacceptable client-state value {reason}");
        error(
            StatusCode::UNAUTHORIZED,
            "invalid-client-state",
            Location::Header,
            &description,
        )
        .named("X-Client-State")
    }

    /// 401 `invalid-generation`: the generation went backwards.
    pub fn invalid_generation() -> Self {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid-generation",
            Location::Body,
            "Unauthorized",
        )
    }

    /// 401 `invalid-keysChangedAt`: keys_changed_at went backwards, is ahead
    /// of the generation, or is missing after one was seen.
    pub fn invalid_keys_changed_at() -> Self {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid-keysChangedAt",
            Location::Body,
            "Unauthorized",
        )
    }

    /// 403 `new-users-disabled`: an unknown account while sign-ups are off.
    pub fn new_users_disabled() -> Self {
        error(
            StatusCode::FORBIDDEN,
            "new-users-disabled",
            Location::Body,
            "New users are not allowed",
        )
    }

    /// 403 `new-users-disabled`: the server already holds its cap of
    /// accounts (ADR 0014); existing users are never refused for it.
    pub fn user_cap_reached(max_users: u64) -> Self {
        error(
            StatusCode::FORBIDDEN,
            "new-users-disabled",
            Location::Body,
            &format!(
                "This Sync server is full: it takes at most {max_users} users; \
                 ask its operator for a place"
            ),
        )
    }

    /// 403 `access-denied`: the account is not on the server's allowlist
    /// (ADR 0014). The description names the FxA uid, which is what the
    /// operator allows.
    pub fn account_not_allowed(fxa_uid: &str) -> Self {
        error(
            StatusCode::FORBIDDEN,
            "access-denied",
            Location::Body,
            &format!(
                "This Sync server admits only the accounts its operator allows; \
                 ask them to allow account {fxa_uid}"
            ),
        )
    }

    /// 404 `error`: no endpoint at this path.
    pub fn not_found() -> Self {
        error(StatusCode::NOT_FOUND, "error", Location::Url, "Not Found")
    }

    /// 405 `error`: the endpoint does not take this method.
    pub fn method_not_allowed() -> Self {
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            "error",
            Location::Url,
            "Method Not Allowed",
        )
    }

    /// 404 `error`: an application other than `sync`.
    pub fn unsupported_application() -> Self {
        error(
            StatusCode::NOT_FOUND,
            "error",
            Location::Url,
            "Unsupported application",
        )
        .named("application")
    }

    /// 404 `error`: a `sync` version other than `1.5`.
    pub fn unsupported_version(version: &str) -> Self {
        error(
            StatusCode::NOT_FOUND,
            "error",
            Location::Url,
            "Unsupported application version",
        )
        .named(version)
    }

    /// 400 `error`: the query string does not parse.
    pub fn invalid_query() -> Self {
        error(
            StatusCode::BAD_REQUEST,
            "error",
            Location::Url,
            "invalid query params",
        )
    }

    /// 503 `error` with `Retry-After`: FxA or the database is unreachable.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut e = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "error",
            Location::Body,
            "Resource is not available",
        );
        e.retry_after = true;
        e.source = Some(source.into());
        e
    }

    /// 503 `internal-error` with `Retry-After`: no storage node can take the user.
    pub fn no_node_available() -> Self {
        let mut e = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal-error",
            Location::Internal,
            "Server error",
        );
        e.retry_after = true;
        e.source = Some("no storage node has capacity".into());
        e
    }

    /// 500 `internal-error`; the details stay in the log.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut e = error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            Location::Internal,
            "Server error",
        );
        e.source = Some(source.into());
        e
    }
}

impl From<DbError> for TokenserverError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::NoNode => TokenserverError::no_node_available(),
            DbError::Full(max_users) => TokenserverError::user_cap_reached(max_users),
            DbError::Unavailable(_) => TokenserverError::unavailable(err),
            DbError::NotFound(_) | DbError::Invalid(_) | DbError::Other(_) => {
                TokenserverError::internal(err)
            }
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: &'a str,
    errors: [ErrorEntry<'a>; 1],
}

#[derive(Serialize)]
struct ErrorEntry<'a> {
    location: &'a str,
    name: &'a str,
    description: &'a str,
}

impl IntoResponse for TokenserverError {
    fn into_response(self) -> Response {
        if let Some(source) = &self.source {
            if self.http.is_server_error() {
                tracing::warn!(status = self.status, error = %source, "token request failed");
            }
        } else {
            tracing::debug!(status = self.status, "token request refused");
        }
        // Field order as Mozilla sends it.
        let body = ErrorBody {
            status: self.status,
            errors: [ErrorEntry {
                location: self.location.as_str(),
                name: &self.name,
                description: &self.description,
            }],
        };
        let mut response = (self.http, axum::Json(body)).into_response();
        if self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}
