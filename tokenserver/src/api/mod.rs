//! The HTTP surface: the route table, the shared state and the layers.

mod events;
mod extract;
mod ops;
mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sync_common::secret::Secret;
use sync_common::token::TokenSecrets;
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth::events::EventVerifier;
use crate::auth::oauth::OAuthVerifier;
use crate::config::TokenserverConfig;
use crate::db::TokenStore;
use crate::error::TokenserverError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn TokenStore>,
    pub config: Arc<TokenserverConfig>,
    /// Signs tokens (the storage nodes' master secrets).
    pub secrets: Arc<TokenSecrets>,
    /// Key of the `hashed_fxa_uid` metrics hash.
    pub metrics_key: Secret,
    pub oauth: Arc<OAuthVerifier>,
    /// Present when the FxA webhook is enabled.
    pub events: Option<Arc<EventVerifier>>,
    /// Who may sync.
    pub access: Arc<crate::access::Access>,
}

/// The token service's own routes (token and webhook), with their layers,
/// for mounting next to a storage node.
pub fn routes(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout_seconds);
    let mut router = Router::new()
        .route("/1.0/{application}/{version}", get(token::get_token))
        // Where Mozilla's Python all-in-one served tokens: the Firefoxes of
        // a deployment moved here keep their setting (docs/migrating.md).
        .route("/token/1.0/{application}/{version}", get(token::get_token));
    if state.events.is_some() {
        router = router.route("/1.0/webhooks/fxa/events", post(events::fxa_events));
    }
    router
        .layer(middleware::map_response(|response| async {
            sync_common::ops::protocol_405(response, || {
                TokenserverError::method_not_allowed().into_response()
            })
        }))
        .layer(middleware::from_fn_with_state(timeout, deadline))
        .layer(CatchPanicLayer::custom(|_| {
            TokenserverError::internal("a handler panicked").into_response()
        }))
        .with_state(state)
}

/// The standalone tokenserver: its routes plus the operational endpoints.
pub fn router(state: AppState) -> Router {
    let ops = Router::new()
        .route("/", get(ops::home))
        .route("/__heartbeat__", get(ops::heartbeat))
        .route("/__lbheartbeat__", get(sync_common::ops::lbheartbeat))
        .route("/__version__", get(sync_common::ops::version))
        .fallback(|| async { TokenserverError::not_found() })
        .with_state(state.clone());
    routes(state)
        .merge(ops)
        .layer(middleware::from_fn(sync_common::telemetry::observe))
}

/// A request that outlives `limit` gets a 503 instead of holding the client.
async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            TokenserverError::unavailable(format!("request took over {limit:?}")).into_response()
        }
    }
}
