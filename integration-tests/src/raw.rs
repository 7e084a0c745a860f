//! HTTP/1.1 over a raw socket, for what no HTTP client library sends:
//! clients that vanish mid-request (the socket half-closed or closed
//! without reading the answer) and malformed framing.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a client leaves a request it has sent.
#[derive(Debug, Clone, Copy)]
pub enum Vanish {
    /// `shutdown(SHUT_WR)`: nothing more will be sent, the answer is not read.
    HalfClose,
    /// The socket is closed.
    Close,
}

impl Vanish {
    /// Half-close for even `n`, close for odd.
    pub fn alternating(n: usize) -> Self {
        if n % 2 == 0 {
            Vanish::HalfClose
        } else {
            Vanish::Close
        }
    }
}

/// A moment of 0–5 ms, at random.
pub fn moment() -> Duration {
    Duration::from_micros(rand::random::<u64>() % 5_001)
}

/// An HTTP/1.1 request as bytes, with `Content-Length` for `body`.
pub fn http_request(
    method: &str,
    path: &str,
    authority: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    request
}

/// Abandoned requests in flight at once.
const WAVE: usize = 20;

/// Runs `requests`, a wave of concurrent ones at a time.
pub async fn in_waves<Fut>(requests: impl IntoIterator<Item = Fut>)
where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut requests = requests.into_iter().peekable();
    while requests.peek().is_some() {
        let wave: Vec<_> = requests.by_ref().take(WAVE).map(tokio::spawn).collect();
        for task in wave {
            task.await.unwrap();
        }
    }
}

/// Sends `request` to `authority`, waits `after`, then leaves as `how` says.
pub async fn send_and_vanish(authority: &str, request: &[u8], after: Duration, how: Vanish) {
    let mut socket = tokio::net::TcpStream::connect(authority).await.unwrap();
    socket.write_all(request).await.unwrap();
    tokio::time::sleep(after).await;
    if let Vanish::HalfClose = how {
        let _ = socket.shutdown().await;
        // Gone for good a moment later, answered or not.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `request` (its write side then closed) and reads the answer until
/// the server closes, for at most 10 s.
pub async fn exchange(authority: &str, request: &[u8]) -> String {
    let mut socket = tokio::net::TcpStream::connect(authority).await.unwrap();
    socket.write_all(request).await.unwrap();
    let _ = socket.shutdown().await;
    let mut answer = Vec::new();
    let read = socket.read_to_end(&mut answer);
    let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
    String::from_utf8_lossy(&answer).into_owned()
}
