//! The metrics listener: `GET /metrics` in Prometheus's text format, on an
//! address of its own so that it is never exposed with the public port.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, TextEncoder};
use tokio::task::JoinHandle;

use crate::server::{self, ConnectionLimits};

/// Connections the metrics listener serves at once.
const METRICS_CONNECTIONS: usize = 16;

/// Serves `/metrics` until dropped.
pub struct MetricsListener {
    task: JoinHandle<()>,
    /// Where it listens (the real port when 0 was asked for).
    pub address: std::net::SocketAddr,
}

impl MetricsListener {
    /// Listens on `address` (`host:port`), if one is configured.
    pub async fn start(address: Option<&str>) -> Result<Option<Self>, String> {
        let Some(address) = address else {
            return Ok(None);
        };
        let (host, port) = parse_address(address)?;
        let listener = server::listen(&host, port).await?;
        let address = listener
            .local_addr()
            .map_err(|e| format!("metrics listener: {e}"))?;
        let router = Router::new().route("/metrics", get(scrape));
        // A scraper or two, not the public: a few connections at most.
        let limits = ConnectionLimits {
            max_connections: METRICS_CONNECTIONS,
            ..ConnectionLimits::default()
        };
        let task = tokio::spawn(async move {
            let _ = server::serve(router, listener, &limits, std::future::pending()).await;
        });
        tracing::info!(%address, "metrics listening on http://{address}/metrics");
        Ok(Some(Self { task, address }))
    }
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `host:port` (`[::1]:9464` for IPv6), as `metrics_address` takes it.
pub fn parse_address(address: &str) -> Result<(String, u16), String> {
    let invalid = || format!("metrics_address {address:?} is not host:port, e.g. 127.0.0.1:9464");
    let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
    let port = port.parse().map_err(|_| invalid())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid());
    }
    Ok((host.to_owned(), port))
}

async fn scrape() -> Response {
    let Some(registry) = super::prometheus_registry() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let encoder = TextEncoder::new();
    let mut text = Vec::new();
    if let Err(e) = encoder.encode(&registry.gather(), &mut text) {
        tracing::error!("cannot encode metrics: {e}");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::parse_address;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("127.0.0.1:9464"),
            Ok(("127.0.0.1".into(), 9464))
        );
        assert_eq!(parse_address("[::1]:0"), Ok(("::1".into(), 0)));
        assert!(parse_address("9464").is_err());
        assert!(parse_address(":9464").is_err());
        assert!(parse_address("localhost:http").is_err());
    }
}
