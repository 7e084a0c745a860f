//! Serving a router on a bound listener: connections bounded in number
//! and in the time they may take, and graceful shutdown.

mod connections;
mod limits;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use connections::{Connection, Connections, Tracked, Watched};
pub use limits::ConnectionLimits;

/// Connections the kernel may hold for us while the server is full: when
/// the queue overflows, clients' connection attempts are dropped and retried
/// only after a second or more. Linux caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `host:port` (port 0: any free port), with a listen queue long
/// enough to ride out bursts.
pub async fn listen(host: &str, port: u16) -> Result<TcpListener, String> {
    let address = format!("{host}:{port}");
    let cannot = |e: std::io::Error| format!("cannot listen on {address}: {e}");
    let mut last_error = None;
    for addr in tokio::net::lookup_host((host, port))
        .await
        .map_err(cannot)?
    {
        match listen_on(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(cannot(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
    })))
}

fn listen_on(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    limits: &ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let open_files = limits::raise_open_files_limit();
    let max = limits.effective_max_connections(open_files);
    tracing::info!(
        max_connections = max,
        open_files,
        header_read_timeout_seconds = limits.header_read_timeout_seconds,
        idle_timeout_seconds = limits.idle_timeout_seconds,
        send_timeout_seconds = limits.send_timeout_seconds,
        "accepting connections"
    );
    let connections = Arc::new(Connections::default());
    let (stopping, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        // Every connection task owns a socket until it ends: count those,
        // not the connections still registered (an evicted one keeps its
        // descriptor until its task has closed it).
        if tasks.len() >= max {
            if tasks.len() == connections.len() {
                // None is on its way out: close the one that waited
                // longest, if any may be closed. Otherwise every connection
                // is answering a request or has only just connected, and
                // new clients wait in the listen queue for a place.
                connections.evict_longest_waiting();
            }
            tokio::select! {
                _ = tasks.join_next() => {}
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = &mut shutdown => break,
            }
            continue;
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = tasks.join_next() => continue,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let registered = connections.add();
                let task = serve_connection(
                    stream,
                    registered.connection.clone(),
                    router.clone(),
                    limits.clone(),
                    stop.clone(),
                );
                tasks.spawn(async move {
                    task.await;
                    drop(registered);
                });
            }
            Err(e) => {
                accept_errors.note(&e);
                // Out of descriptors: free one (its task closes it) rather
                // than wait for one.
                if is_out_of_files(&e) {
                    connections.evict_longest_waiting();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Answers requests on one connection until the client closes it, it
/// overstays its deadline, the server needs its place, or the server stops.
async fn serve_connection(
    stream: TcpStream,
    connection: Arc<Connection>,
    router: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Watched {
        stream,
        connection: connection.clone(),
    });
    let requests = connection.clone();
    let service = hyper::service::service_fn(move |request| {
        let request_in_progress = requests.begin_request();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await;
            response.map(|r| {
                r.map(|body| Tracked {
                    body,
                    _request: request_in_progress,
                })
            })
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our own deadlines replace hyper's, which cannot tell a slow client
    // from an idle kept-alive one.
    builder.header_read_timeout(None);
    let served = builder.serve_connection(io, service);
    tokio::pin!(served);
    let mut stopping = false;
    loop {
        // The deadline moves with what the connection does: look again soon.
        let recheck = Instant::now() + connections::recheck_interval(&limits);
        let wake = connection
            .deadline(&limits)
            .map_or(recheck, |d| d.min(recheck));
        tokio::select! {
            _ = served.as_mut() => return,
            () = connection.evicted(), if !stopping => {
                if !connection.is_busy() {
                    return;
                }
                // A request began as it was chosen: finish it, then close.
                stopping = true;
                served.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(wake) => {
                if connection.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    return;
                }
            }
            _ = stop.changed(), if !stopping => {
                // hyper closes an idle connection at once and lets one that
                // is answering (or still writing its answer) finish.
                stopping = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Whether an accept failed for want of file descriptors.
fn is_out_of_files(e: &std::io::Error) -> bool {
    // EMFILE (this process) and ENFILE (the whole system).
    matches!(e.raw_os_error(), Some(24 | 23))
}

/// Accept errors, logged at most once a second however fast they come.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    fn note(&mut self, e: &std::io::Error) {
        let now = Instant::now();
        if self
            .last_logged
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            self.unlogged += 1;
            return;
        }
        tracing::warn!(
            also_since_last_report = self.unlogged,
            "cannot accept a connection: {e}"
        );
        self.last_logged = Some(now);
        self.unlogged = 0;
    }
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
