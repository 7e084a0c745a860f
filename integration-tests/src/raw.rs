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

/// A slow client (slowloris): sends a request's headers a byte every
/// `interval`, and each time the server closes the connection opens
/// another, until `until`. Returns how many connections the server closed.
pub async fn trickle(authority: &str, interval: Duration, until: tokio::time::Instant) -> usize {
    // A header that never ends: the server cannot tell it from a slow one.
    let head = b"GET /__heartbeat__ HTTP/1.1\r\nHost: slow\r\nX-Slow: ";
    let mut closed = 0;
    while tokio::time::Instant::now() < until {
        let connect = tokio::net::TcpStream::connect(authority);
        let Ok(Ok(mut socket)) = tokio::time::timeout(interval, connect).await else {
            continue;
        };
        for sent in 0.. {
            if tokio::time::Instant::now() >= until {
                return closed;
            }
            let byte = head.get(sent).copied().unwrap_or(b'a');
            if socket.write_all(&[byte]).await.is_err()
                || closed_within(&mut socket, interval).await
            {
                closed += 1;
                break;
            }
        }
    }
    closed
}

/// Whether the server closes (or answers on) `socket` within `wait`.
pub async fn closed_within(socket: &mut tokio::net::TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 512];
    // Any answer to an unfinished request is the server giving up on it.
    tokio::time::timeout(wait, socket.read(&mut buf))
        .await
        .is_ok()
}

/// Reads one answer with a `Content-Length` body from `socket`, leaving the
/// connection open; `None` if the server closed it first.
pub async fn read_answer(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if answer.len() >= end + 4 + length {
                return Some(text);
            }
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
}
