//! Serving a router on a bound listener with graceful shutdown.

use std::future::Future;

use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// For Docker's HEALTHCHECK: succeeds when the server listening on `host`
/// (`0.0.0.0` means this machine) and `port` answers `/__heartbeat__` with 200.
pub async fn healthcheck(host: &str, port: u16) -> Result<(), String> {
    let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
    let unreachable = |e: std::io::Error| format!("cannot reach {host}:{port}: {e}");
    let mut stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(unreachable)?;
    let request = format!("GET /__heartbeat__ HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(unreachable)?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(unreachable)?;
    let status_line = response.lines().next().unwrap_or_default().to_owned();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("unhealthy: {status_line}"))
    }
}
