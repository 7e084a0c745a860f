//! A TCP proxy in front of a database server that a test can cut and
//! restore: an outage of the database as the service sees it (connections
//! reset, new ones refused), without stopping a server other tests share.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Whether the database is "up", and the open links; one lock for both so
/// a link accepted while `cut` runs is either refused or reset.
#[derive(Default)]
struct State {
    down: bool,
    links: Vec<AbortHandle>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    upstream: String,
    state: Arc<Mutex<State>>,
    accept: AbortHandle,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (host:port).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state: Arc<Mutex<State>> = Arc::default();
        let (to, shared) = (upstream.to_owned(), state.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut state = shared.lock().unwrap();
                if state.down {
                    drop(client); // refused: the database is "down"
                    continue;
                }
                let to = to.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&to).await {
                        let mut client = client;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                state.links.push(link.abort_handle());
            }
        })
        .abort_handle();
        Self {
            addr,
            upstream: upstream.to_owned(),
            state,
            accept,
        }
    }

    /// `url` with its `host:port` (the upstream's) replaced by the proxy's.
    pub fn route(&self, url: &str) -> String {
        url.replacen(&self.upstream, &self.addr.to_string(), 1)
    }

    /// The database goes away: open connections are reset, new ones dropped.
    pub fn cut(&self) {
        let mut state = self.state.lock().unwrap();
        state.down = true;
        for link in state.links.drain(..) {
            link.abort();
        }
    }

    /// The database is back.
    pub fn restore(&self) {
        self.state.lock().unwrap().down = false;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
