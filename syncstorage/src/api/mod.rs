//! The HTTP surface: the route table (it reads like the spec's endpoint
//! list), the shared state, and the layers every request passes through.

pub mod auth;
pub mod body;
mod bso;
mod collection;
pub mod extract;
pub mod headers;
mod info;
mod migration;
mod ops;
pub mod query;
mod records;
mod reply;
mod revocations;
mod upload_limits;
mod user;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

use axum::{middleware, Router};
use sync_common::hawk::HawkVerifier;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::db::SyncStore;
use crate::error::ApiError;
use crate::revocations::Revocations;
use auth::Origin;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn SyncStore>,
    pub config: Arc<Config>,
    pub hawk: Arc<HawkVerifier>,
    /// The configured public origin, if any (else taken from each request).
    pub public_origin: Option<Origin>,
    /// The tokens the tokenserver revoked.
    pub revocations: Arc<Revocations>,
}

impl AppState {
    /// The per-user quota in bytes, when quotas are on.
    pub fn quota_bytes(&self) -> Option<u64> {
        let storage = &self.config.syncstorage;
        storage.enable_quota.then_some(storage.max_quota_limit)
    }
}

/// The storage node's routes and layers, for mounting (the all-in-one
/// adds `telemetry::observe` around everything it serves).
pub fn routes(state: AppState) -> Router {
    let storage = Router::new()
        .route("/1.5/{uid}", delete(user::delete_all))
        .route("/1.5/{uid}/storage", delete(user::delete_all))
        .route("/1.5/{uid}/info/collections", get(info::collections))
        .route(
            "/1.5/{uid}/info/collection_counts",
            get(info::collection_counts),
        )
        .route(
            "/1.5/{uid}/info/collection_usage",
            get(info::collection_usage),
        )
        .route("/1.5/{uid}/info/quota", get(info::quota))
        .route("/1.5/{uid}/info/configuration", get(info::configuration))
        .route(
            "/1.5/{uid}/storage/{collection}",
            get(collection::get)
                .post(collection::post)
                .delete(collection::delete),
        )
        .route(
            "/1.5/{uid}/storage/{collection}/{id}",
            get(bso::get).put(bso::put).delete(bso::delete),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_hawk,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            headers::decommissioned,
        ));
    let ops = Router::new()
        .route("/__heartbeat__", get(ops::heartbeat))
        .route("/__lbheartbeat__", get(sync_common::ops::lbheartbeat))
        .route("/__version__", get(sync_common::ops::version))
        .route(sync_common::revocation::PATH, post(revocations::record))
        .route(
            &format!("{}/{{uid}}", sync_common::migration::PREFIX),
            get(migration::state)
                .post(migration::fence)
                .put(migration::finish)
                .patch(migration::serve)
                .delete(migration::evict),
        )
        .route(
            &format!("{}/{{uid}}/{{collection}}", sync_common::migration::PREFIX),
            get(migration::export)
                .put(migration::import)
                .delete(migration::drop),
        );
    let timeout = Duration::from_secs(state.config.syncstorage.request_timeout_seconds);
    Router::new()
        .merge(storage)
        .merge(ops)
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::map_response(|response| async {
            sync_common::ops::protocol_405(response, || ApiError::MethodNotAllowed.into_response())
        }))
        // `require_hawk` enforces max_request_bytes itself (413, code 17).
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            headers::weave_headers,
        ))
        .layer(middleware::from_fn_with_state(timeout, deadline))
        .layer(cors(&state.config))
        // A bug must still answer like the protocol (500, body 0), not drop the connection.
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
        .with_state(state)
}

/// The standalone storage node: its routes, observed.
pub fn router(state: AppState) -> Router {
    routes(state).layer(middleware::from_fn(sync_common::telemetry::observe))
}

/// A request that outlives `limit` gets the protocol's 503 (body `0`,
/// `Retry-After`) instead of holding the client forever.
async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError::Unavailable(format!("request took over {limit:?}").into()).into_response()
        }
    }
}

/// CORS for web clients: the configured origins, Sync's methods and headers.
fn cors(config: &Config) -> CorsLayer {
    let origins = &config.syncstorage.cors_allowed_origins;
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::mirror_request()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let sync_headers = [
        headers::X_LAST_MODIFIED,
        headers::X_WEAVE_TIMESTAMP,
        headers::X_WEAVE_RECORDS,
        headers::X_WEAVE_BYTES,
        headers::X_WEAVE_TOTAL_RECORDS,
        headers::X_WEAVE_TOTAL_BYTES,
        headers::X_WEAVE_NEXT_OFFSET,
        headers::X_WEAVE_QUOTA_REMAINING,
        headers::X_WEAVE_BACKOFF,
        headers::X_WEAVE_ALERT,
        headers::X_IF_MODIFIED_SINCE,
        headers::X_IF_UNMODIFIED_SINCE,
    ];
    let mut allowed: Vec<HeaderName> = vec![header::AUTHORIZATION, header::CONTENT_TYPE];
    allowed.extend(sync_headers.iter().cloned());
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers(allowed)
        .expose_headers(sync_headers)
        .max_age(Duration::from_secs(1_728_000))
}
