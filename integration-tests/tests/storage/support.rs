//! Test support: a real storage node on a random loopback port, and a client
//! that signs every request with real HAWK credentials from real tokens.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hawk::{Credentials, DigestAlgorithm, Key, PayloadHasher, RequestBuilder};
use integration_tests::db::TestDb;
use integration_tests::raw::{http_request, send_and_vanish, Vanish};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use sync_common::db_url::DatabaseUrl;
use sync_common::secret::Secret;
use sync_common::token::{MintedToken, TokenPayload, TokenSecrets};
use syncstorage::Config;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running storage node with its own fresh database on the backend
/// `SYNC_TEST_BACKEND` names; stopped (and the database dropped) on drop.
pub struct TestServer {
    pub port: u16,
    pub secret: String,
    pub db: Arc<TestDb>,
    http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns a node after `adjust` has changed the default test settings.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        if std::env::var_os("TEST_LOG").is_some() {
            sync_common::telemetry::init(&sync_common::telemetry::Settings {
                service: "tests",
                human_logs: true,
                log_level: "debug",
                metrics_listener: false,
            });
        }
        let db = Arc::new(TestDb::fresh("storage").await);
        let secret = hex::encode(rand::random::<[u8; 16]>());
        Self::start(db, secret, adjust).await
    }

    /// A second node on this one's database (as another process would be),
    /// accepting tokens made with the same secret.
    pub async fn spawn_beside(&self) -> Self {
        self.spawn_beside_with(|_| {}).await
    }

    /// Like `spawn_beside`, after `adjust` has changed the settings.
    pub async fn spawn_beside_with(&self, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start(self.db.clone(), self.secret.clone(), adjust).await
    }

    async fn start(db: Arc<TestDb>, secret: String, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            master_secret: Secret::new(secret.clone()),
            ..Config::default()
        };
        config.syncstorage.database_url = DatabaseUrl::new(db.url.clone());
        config.syncstorage.purge_interval_seconds = 0;
        adjust(&mut config);
        // Bound before the server starts: requests queue instead of failing.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            if let Err(e) = syncstorage::serve(config, listener, shutdown).await {
                panic!("test server failed: {e}");
            }
        });
        let http = reqwest::Client::new();
        // Serving starts once the database is open and migrated: wait for
        // it, so a test (or a second node) never races the migrations.
        http.get(format!("http://127.0.0.1:{port}/__heartbeat__"))
            .send()
            .await
            .unwrap();
        Self {
            port,
            secret,
            db,
            http,
            shutdown: Some(tx),
        }
    }

    /// The storage layer on this node's database, for tests that act below
    /// HTTP (bulk fills, purges). Batch limits do not matter there.
    pub async fn store(&self) -> std::sync::Arc<dyn syncstorage::db::SyncStore> {
        let settings = syncstorage::db::StoreSettings {
            quota_bytes: None,
            max_total_records: 10_000,
            max_total_bytes: 100_000_000,
            batch_ttl_seconds: 60,
            busy_timeout_ms: 5_000,
            max_connections: 2,
        };
        syncstorage::db::open(&DatabaseUrl::new(self.db.url.clone()), settings)
            .await
            .unwrap()
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A token payload for `uid` on this node, valid for an hour.
    pub fn payload(&self, uid: u64) -> TokenPayload {
        TokenPayload {
            node: self.origin(),
            fxa_kid: "0000000001234-qqo".into(),
            fxa_uid: format!("fxa{uid}"),
            hashed_device_id: String::new(),
            hashed_fxa_uid: String::new(),
            expires: now() + 3600,
            uid,
            tokenserver_origin: "rust".into(),
            salt: TokenPayload::random_salt(),
            node_epoch: 0,
        }
    }

    pub fn mint(&self, payload: &TokenPayload) -> MintedToken {
        TokenSecrets::new(&[self.secret.as_str()])
            .unwrap()
            .make_token(payload)
            .unwrap()
    }

    /// A client for `uid` with a fresh token.
    pub fn user(&self, uid: u64) -> Client {
        self.client_with(uid, &self.mint(&self.payload(uid)))
    }

    /// A client that uses `token` but addresses `/1.5/{uid}`.
    pub fn client_with(&self, uid: u64, token: &MintedToken) -> Client {
        Client {
            http: self.http.clone(),
            base: self.origin(),
            host: "127.0.0.1".into(),
            port: self.port,
            uid,
            token: token.clone(),
        }
    }

    /// An unauthenticated GET on the node.
    pub async fn get_raw(&self, path: &str) -> Resp {
        let response = self
            .http
            .get(format!("{}{path}", self.origin()))
            .send()
            .await
            .unwrap();
        Resp::read(response).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A HAWK-signing client for one user.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    pub host: String,
    pub port: u16,
    pub uid: u64,
    pub token: MintedToken,
}

impl Client {
    /// The same client sending its requests to `server` (still signed for
    /// the host and port it was made for).
    pub fn sending_to(mut self, server: &TestServer) -> Self {
        self.base = server.origin();
        self
    }

    /// A request to `/1.5/{uid}{path}`.
    pub fn call(&self, method: Method, path: &str) -> Call {
        Call {
            client: self.clone(),
            method,
            path: format!("/1.5/{}{path}", self.uid),
            headers: Vec::new(),
            body: None,
            auth: Auth::Sign {
                ts: None,
                nonce: None,
                hash: false,
            },
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path).send().await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path).send().await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path).json(&body).send().await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path).json(&body).send().await
    }
}

/// How a request is authenticated.
#[derive(Clone)]
pub enum Auth {
    Sign {
        ts: Option<u64>,
        nonce: Option<String>,
        hash: bool,
    },
    Raw(String),
    None,
}

/// A request being built.
pub struct Call {
    client: Client,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
    auth: Auth,
}

impl Call {
    pub fn header(mut self, name: &str, value: impl ToString) -> Self {
        self.headers.push((name.to_owned(), value.to_string()));
        self
    }

    pub fn json(self, body: &Value) -> Self {
        self.body("application/json", serde_json::to_vec(body).unwrap())
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some((content_type.to_owned(), body.into()));
        self
    }

    /// Replaces the whole path (including `/1.5/{uid}`).
    pub fn raw_path(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// The Authorization header this call would send.
    pub fn authorization(&self) -> Option<String> {
        match &self.auth {
            Auth::None => None,
            Auth::Raw(value) => Some(value.clone()),
            Auth::Sign { ts, nonce, hash } => {
                let c = &self.client;
                let credentials = Credentials {
                    id: c.token.token.clone(),
                    key: Key::new(c.token.derived_secret.as_bytes(), DigestAlgorithm::Sha256)
                        .unwrap(),
                };
                let payload_hash = match (&self.body, hash) {
                    (Some((ct, body)), true) => Some(
                        PayloadHasher::hash(ct.as_str(), DigestAlgorithm::Sha256, body).unwrap(),
                    ),
                    _ => None,
                };
                let request =
                    RequestBuilder::new(self.method.as_str(), &c.host, c.port, &self.path)
                        .hash(payload_hash.as_deref())
                        .request();
                let ts = UNIX_EPOCH + Duration::from_secs(ts.unwrap_or_else(now));
                let nonce = nonce
                    .clone()
                    .unwrap_or_else(|| hex::encode(rand::random::<[u8; 8]>()));
                let header = request.make_header_full(&credentials, ts, nonce).unwrap();
                Some(format!("Hawk {header}"))
            }
        }
    }

    pub async fn send(self) -> Resp {
        let url = format!("{}{}", self.client.base, self.path);
        let mut request = self.client.http.request(self.method.clone(), url);
        if let Some(authorization) = self.authorization() {
            request = request.header("Authorization", authorization);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some((content_type, body)) = self.body {
            request = request.header("Content-Type", content_type).body(body);
        }
        Resp::read(request.send().await.unwrap()).await
    }
}

impl Call {
    /// Sends the request over a raw socket, waits `after`, then leaves as
    /// `how` says without reading the answer: a client that vanishes.
    pub async fn abandon(self, after: Duration, how: Vanish) {
        let (authority, request) = self.raw();
        send_and_vanish(&authority, &request, after, how).await;
    }

    /// Sends the request over a raw socket with a small receive buffer
    /// (64 KiB, so that the answer soon waits on the client) and hands the
    /// socket over, answer unread.
    pub async fn open(self) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let (authority, request) = self.raw();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        // Fixed before connecting, it also stops the kernel growing it.
        socket.set_recv_buffer_size(64 * 1024).unwrap();
        let mut socket = socket.connect(authority.parse().unwrap()).await.unwrap();
        socket.write_all(&request).await.unwrap();
        socket
    }

    /// The server's `host:port` and this call as HTTP/1.1 bytes.
    fn raw(self) -> (String, Vec<u8>) {
        let authorization = self.authorization();
        let mut headers = self.headers;
        headers.extend(authorization.map(|a| ("Authorization".into(), a)));
        let (content_type, body) = self.body.unwrap_or_default();
        if !content_type.is_empty() {
            headers.push(("Content-Type".into(), content_type));
        }
        let authority = format!("{}:{}", self.client.host, self.client.port);
        let request = http_request(
            self.method.as_str(),
            &self.path,
            &authority,
            &headers,
            &body,
        );
        (authority, request)
    }
}

/// A response read in full.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    async fn read(response: reqwest::Response) -> Self {
        Self {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// A timestamp header as milliseconds.
    pub fn ts(&self, name: &str) -> u64 {
        let value = self
            .header(name)
            .unwrap_or_else(|| panic!("no {name} header"));
        ms(&value)
    }

    #[track_caller]
    pub fn assert(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.text);
        self
    }

    /// Asserts a status and the bare Sync response code in the body.
    #[track_caller]
    pub fn assert_code(&self, status: u16, code: u8) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(self.text.trim(), code.to_string(), "status {status}");
    }
}

/// `"1234.56"` → 1234560.
pub fn ms(seconds: &str) -> u64 {
    let (whole, frac) = seconds.split_once('.').expect("two decimals");
    assert_eq!(
        frac.len(),
        2,
        "timestamp {seconds:?} must have two decimals"
    );
    whole.parse::<u64>().unwrap() * 1000 + frac.parse::<u64>().unwrap() * 10
}

/// A JSON-number timestamp as milliseconds.
pub fn ms_of(value: &Value) -> u64 {
    (value.as_f64().expect("a number") * 1000.0).round() as u64
}

/// BSOs `{id, payload, sortindex}` for ids `prefix0..prefixN`.
pub fn bsos(prefix: &str, range: std::ops::Range<usize>) -> Value {
    Value::Array(
        range
            .map(|i| serde_json::json!({"id": format!("{prefix}{i}"), "payload": format!("p{i}"), "sortindex": i}))
            .collect(),
    )
}
