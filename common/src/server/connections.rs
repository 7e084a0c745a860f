//! Every open client connection and what it is doing, so that the server
//! can close the ones that take too long and, when it is full, make room
//! for a new client by closing the one that has waited longest without a
//! request in progress. A slow client (slowloris) is always that one: a
//! real client's headers arrive in one packet, a slow one's never do.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::limits::ConnectionLimits;

/// What a connection is doing.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No request in progress since `since`. `reading` once a request's
    /// first bytes have arrived (or from the connect): its headers are due.
    Waiting { since: Instant, reading: bool },
    /// Requests being answered (their responses not yet fully sent);
    /// `blocked_since` while the client takes none of the response.
    Busy {
        requests: u32,
        blocked_since: Option<Instant>,
    },
}

/// One client connection, shared by its task, its I/O and its requests.
#[derive(Debug)]
pub(super) struct Connection {
    id: u64,
    phase: Mutex<Phase>,
    /// Notified when the server closes this connection to make room.
    evicted: Notify,
}

impl Connection {
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When this connection is to be closed unless something happens first;
    /// `None` while a request is in progress.
    pub(super) fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        match *self.phase() {
            Phase::Waiting {
                since,
                reading: true,
            } => Some(since + limits.header_read_timeout()),
            Phase::Waiting {
                since,
                reading: false,
            } => Some(since + limits.idle_timeout()),
            Phase::Busy {
                blocked_since: Some(since),
                ..
            } => Some(since + limits.send_timeout()),
            Phase::Busy { .. } => None,
        }
    }

    pub(super) fn is_busy(&self) -> bool {
        matches!(*self.phase(), Phase::Busy { .. })
    }

    /// Resolves when the server closes this connection to make room.
    pub(super) async fn evicted(&self) {
        self.evicted.notified().await;
    }

    /// Bytes went out: a blocked response moves again, and one written
    /// after its request ended (hyper drops the body once it is queued)
    /// is still sending, not idle.
    fn bytes_sent(&self) {
        match &mut *self.phase() {
            Phase::Busy { blocked_since, .. } => *blocked_since = None,
            Phase::Waiting {
                since,
                reading: false,
            } => *since = Instant::now(),
            Phase::Waiting { .. } => {}
        }
    }

    /// The socket took nothing: the client is not reading its response.
    fn write_blocked(&self) {
        if let Phase::Busy {
            blocked_since: blocked_since @ None,
            ..
        } = &mut *self.phase()
        {
            *blocked_since = Some(Instant::now());
        }
    }

    /// The client sent bytes: on an idle connection they start a request,
    /// whose headers are now due.
    fn bytes_arrived(&self) {
        let mut phase = self.phase();
        if let Phase::Waiting {
            reading: reading @ false,
            since,
        } = &mut *phase
        {
            *reading = true;
            *since = Instant::now();
        }
    }

    /// A request reached the router; the connection is busy until the
    /// returned guard (held by the response body) is dropped.
    pub(super) fn begin_request(self: &Arc<Self>) -> Request {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy {
                requests,
                blocked_since,
            } => Phase::Busy {
                requests: requests + 1,
                blocked_since,
            },
            Phase::Waiting { .. } => Phase::Busy {
                requests: 1,
                blocked_since: None,
            },
        };
        Request(self.clone())
    }

    /// Oldest first: how long this connection has waited without a request
    /// in progress; `None` while one is.
    fn waiting_since(&self) -> Option<Instant> {
        match *self.phase() {
            Phase::Waiting { since, .. } => Some(since),
            Phase::Busy { .. } => None,
        }
    }
}

/// A request in progress on its connection; dropped when its response has
/// been sent (or abandoned).
#[derive(Debug)]
pub(super) struct Request(Arc<Connection>);

impl Drop for Request {
    fn drop(&mut self) {
        let mut phase = self.0.phase();
        *phase = match *phase {
            Phase::Busy {
                requests,
                blocked_since,
            } if requests > 1 => Phase::Busy {
                requests: requests - 1,
                blocked_since,
            },
            _ => Phase::Waiting {
                since: Instant::now(),
                reading: false,
            },
        };
    }
}

/// The open connections.
#[derive(Debug, Default)]
pub(super) struct Connections {
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
}

impl Connections {
    fn open(&self) -> MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a connection that has just been accepted; it is forgotten
    /// when the returned handle is dropped.
    pub(super) fn add(self: &Arc<Self>) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            id,
            phase: Mutex::new(Phase::Waiting {
                since: Instant::now(),
                reading: true,
            }),
            evicted: Notify::new(),
        });
        self.open().insert(id, connection.clone());
        Registered {
            connections: self.clone(),
            connection,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.open().len()
    }

    /// Closes the connection that has waited longest without a request in
    /// progress, if it has waited at least `EVICTION_GRACE`; false when
    /// there is none.
    pub(super) fn evict_longest_waiting(&self) -> bool {
        let mut open = self.open();
        let now = Instant::now();
        let oldest = open
            .values()
            .filter_map(|c| c.waiting_since().map(|since| (since, c.id)))
            .filter(|(since, _)| now.duration_since(*since) >= EVICTION_GRACE)
            .min();
        let Some(connection) = oldest.and_then(|(_, id)| open.get(&id).cloned()) else {
            return false;
        };
        // A request may have begun since the scan: then it is not evicted.
        let phase = connection.phase();
        if matches!(*phase, Phase::Busy { .. }) {
            return false;
        }
        open.remove(&connection.id);
        connection.evicted.notify_one();
        true
    }
}

/// A new connection is never closed to make room before it has had this
/// long to send its request: clients that reconnect as fast as they are
/// cut off would otherwise churn every connection, real ones included.
const EVICTION_GRACE: Duration = Duration::from_secs(1);

/// A connection's place among the open ones, given up on drop.
#[derive(Debug)]
pub(super) struct Registered {
    connections: Arc<Connections>,
    pub(super) connection: Arc<Connection>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.connections.open().remove(&self.connection.id);
    }
}

/// The client's socket, noting when bytes of a new request arrive and
/// whether the client takes its responses.
pub(super) struct Watched<S> {
    pub(super) stream: S,
    pub(super) connection: Arc<Connection>,
}

impl<S> Watched<S> {
    fn note_write(&self, polled: &Poll<std::io::Result<usize>>) {
        match polled {
            Poll::Ready(Ok(n)) if *n > 0 => self.connection.bytes_sent(),
            Poll::Pending => self.connection.write_blocked(),
            Poll::Ready(_) => {}
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.connection.bytes_arrived();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.note_write(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.note_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A response body that keeps its request in progress until hyper has
/// taken all of it; what is still being written counts as activity (see
/// `Connection::bytes_sent`).
pub(super) struct Tracked {
    pub(super) body: axum::body::Body,
    pub(super) _request: Request,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// How often a busy connection looks again at its deadline.
pub(super) fn recheck_interval(limits: &ConnectionLimits) -> Duration {
    limits
        .header_read_timeout()
        .min(limits.idle_timeout())
        .min(limits.send_timeout())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_longest_waiting_idle_connection_is_evicted_never_a_busy_one() {
        let connections = Arc::new(Connections::default());
        let slow = connections.add();
        tokio::time::advance(Duration::from_millis(500)).await;
        let busy = connections.add();
        let request = busy.connection.begin_request();
        let fresh = connections.add();
        assert_eq!(connections.len(), 3);
        assert!(
            !connections.evict_longest_waiting(),
            "no connection is closed in its first moment"
        );

        tokio::time::advance(EVICTION_GRACE).await;
        assert!(connections.evict_longest_waiting());
        assert_eq!(connections.len(), 2);
        tokio::time::timeout(Duration::from_millis(1), slow.connection.evicted())
            .await
            .expect("the slow connection was told to close");

        assert!(connections.evict_longest_waiting());
        assert!(
            !connections.evict_longest_waiting(),
            "only a busy one is left"
        );
        drop(request);
        tokio::time::advance(EVICTION_GRACE).await;
        assert!(connections.evict_longest_waiting());
        drop(fresh);
        assert_eq!(connections.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn headers_are_due_from_the_first_byte_and_idleness_from_the_last_response() {
        let limits = ConnectionLimits::default();
        let connections = Arc::new(Connections::default());
        let registered = connections.add();
        let c = &registered.connection;
        let start = Instant::now();
        assert_eq!(
            c.deadline(&limits),
            Some(start + limits.header_read_timeout())
        );

        let request = c.begin_request();
        assert_eq!(c.deadline(&limits), None);
        tokio::time::advance(Duration::from_secs(3)).await;
        drop(request);
        let answered = Instant::now();
        assert_eq!(c.deadline(&limits), Some(answered + limits.idle_timeout()));

        tokio::time::advance(Duration::from_secs(5)).await;
        c.bytes_arrived();
        let head = Instant::now();
        assert_eq!(
            c.deadline(&limits),
            Some(head + limits.header_read_timeout())
        );
        c.bytes_arrived();
        assert_eq!(
            c.deadline(&limits),
            Some(head + limits.header_read_timeout())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_the_client_takes_nothing_of_is_due_after_the_send_timeout() {
        let limits = ConnectionLimits::default();
        let connections = Arc::new(Connections::default());
        let registered = connections.add();
        let c = &registered.connection;
        let request = c.begin_request();
        c.bytes_sent();
        assert_eq!(
            c.deadline(&limits),
            None,
            "a response going out has no deadline"
        );

        c.write_blocked();
        let blocked = Instant::now();
        tokio::time::advance(Duration::from_secs(5)).await;
        c.write_blocked();
        assert_eq!(c.deadline(&limits), Some(blocked + limits.send_timeout()));

        c.bytes_sent();
        assert_eq!(c.deadline(&limits), None, "a slow reader is not cut off");
        drop(request);
        c.write_blocked();
        assert!(
            c.deadline(&limits)
                .is_some_and(|d| d > Instant::now() + limits.send_timeout()),
            "once handed over, the rest of a response is bound by the idle timeout"
        );
    }
}
