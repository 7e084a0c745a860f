//! A tokenserver on a loopback port, its database (a fresh one on the
//! backend `SYNC_TEST_BACKEND` names), and a request builder.

use std::sync::Arc;
use std::time::Duration;

use integration_tests::db::{TestBackend, TestDb};
use integration_tests::fxa::{access_token, FakeFxa};
use integration_tests::raw::{http_request, send_and_vanish, Vanish};
use integration_tests::sync_client::Reply;
use sqlx::{Connection, Executor, Row};
use sync_common::db_url::DatabaseUrl;
use sync_common::secret::Secret;
use tokenserver::db::{TokenStore, UserRecord};
use tokenserver::Config;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const NODE: &str = "https://node-1.example.com";
pub const DOMAIN: &str = "api.accounts.firefox.com";

/// A running tokenserver; stopped on drop.
pub struct TestTokenserver {
    pub url: String,
    pub secret: String,
    pub fxa: FakeFxa,
    pub store: Arc<dyn TokenStore>,
    /// The database's URL, for a second server or a raw connection.
    pub database_url: DatabaseUrl,
    shutdown: Option<oneshot::Sender<()>>,
    /// Dropped last: the server and the store are gone by then. `None`
    /// for a server beside another, which owns the database.
    db: Option<TestDb>,
}

impl TestTokenserver {
    /// With one node, `NODE`, and FxA's keys fetched from the stand-in.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_on(TestDb::fresh("ts").await, adjust).await
    }

    /// On a database the test prepared.
    pub async fn spawn_on(db: TestDb, adjust: impl FnOnce(&mut Config)) -> Self {
        let url = DatabaseUrl::new(db.url.clone());
        let secret = hex::encode(rand::random::<[u8; 16]>());
        Self::start(url, secret, Some(db), adjust).await
    }

    /// Another server on `other`'s database and master secret, as a
    /// second process of the same deployment would be.
    pub async fn spawn_beside(other: &TestTokenserver) -> Self {
        let url = other.database_url.clone();
        Self::start(url, other.secret.clone(), None, |_| {}).await
    }

    async fn start(
        database_url: DatabaseUrl,
        secret: String,
        db: Option<TestDb>,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        if std::env::var_os("TEST_LOG").is_some() {
            sync_common::telemetry::init(&sync_common::telemetry::Settings {
                service: "tests",
                human_logs: true,
                log_level: "debug",
                metrics_listener: false,
            });
        }
        let fxa = FakeFxa::spawn().await;
        let mut config = Config {
            master_secret: Secret::new(secret),
            ..Config::default()
        };
        let ts = &mut config.tokenserver;
        ts.database_url = database_url;
        ts.fxa_oauth_server_url = fxa.url.clone();
        ts.fxa_profile_server_url = Some(fxa.url.clone());
        ts.fxa_oauth_request_timeout = 2;
        ts.init_node_url = Some(NODE.into());
        ts.init_node_capacity = 100;
        adjust(&mut config);
        let secret = config.master_secret.expose().to_owned();
        let database_url = config.tokenserver.database_url.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (tx, rx) = oneshot::channel::<()>();
        let (started_tx, started) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = started_tx.send(());
                let _ = rx.await;
            };
            if let Err(e) = tokenserver::serve(config, listener, shutdown).await {
                panic!("test tokenserver failed: {e}");
            }
        });
        // The schema and initial node exist once serving starts.
        started.await.unwrap();
        let store = tokenserver::db::open(&database_url, Default::default())
            .await
            .unwrap();
        Self {
            url,
            secret,
            fxa,
            store,
            database_url,
            shutdown: Some(tx),
            db,
        }
    }

    /// The backend the server runs on.
    pub fn backend(&self) -> TestBackend {
        self.db
            .as_ref()
            .map_or_else(TestBackend::from_env, |db| db.backend)
    }

    /// A connection of the test's own to the server's database, as another
    /// process (or an operator) would have.
    pub async fn connect_db(&self) -> RawConnection {
        RawConnection::open(self.backend(), self.database_url.expose()).await
    }

    /// Another process holding what allocating a user or changing who may
    /// sync needs, until it rolls back: SQLite's write lock, or the service
    /// row every such write locks on the servers.
    pub async fn hold_write_lock(&self) -> RawConnection {
        let mut other = self.connect_db().await;
        let lock = match self.backend() {
            TestBackend::Sqlite => "BEGIN IMMEDIATE",
            TestBackend::Postgres | TestBackend::MySql => {
                "BEGIN; SELECT id FROM services FOR UPDATE"
            }
        };
        other.execute(lock).await;
        other
    }

    /// A token request with a JWT for `fxa_uid` at `generation`.
    pub fn request(&self, fxa_uid: &str, generation: Option<i64>, key_id: &str) -> TokenRequest {
        TokenRequest::new(&self.url)
            .bearer(&access_token(fxa_uid, generation))
            .key_id(key_id)
    }

    /// A token request with `token` as the Bearer token and X-KeyID `1-qqo`.
    pub fn with_bearer(&self, token: &str) -> TokenRequest {
        TokenRequest::new(&self.url).bearer(token).key_id("1-qqo")
    }

    /// The user's records, newest first.
    pub async fn records(&self, fxa_uid: &str) -> Vec<UserRecord> {
        self.store
            .user_records(&format!("{fxa_uid}@{DOMAIN}"))
            .await
            .unwrap()
    }
}

impl Drop for TestTokenserver {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A connection to a test server's database, on whichever backend it is.
pub enum RawConnection {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
}

impl RawConnection {
    pub async fn open(backend: TestBackend, url: &str) -> Self {
        match backend {
            TestBackend::Sqlite => {
                RawConnection::Sqlite(sqlx::SqliteConnection::connect(url).await.unwrap())
            }
            TestBackend::Postgres => {
                RawConnection::Postgres(sqlx::PgConnection::connect(url).await.unwrap())
            }
            TestBackend::MySql => {
                RawConnection::MySql(sqlx::MySqlConnection::connect(url).await.unwrap())
            }
        }
    }

    /// Runs `sql` (one or more statements, no parameters).
    pub async fn execute(&mut self, sql: &str) {
        match self {
            RawConnection::Sqlite(c) => c.execute(sql).await.map(drop),
            RawConnection::Postgres(c) => c.execute(sql).await.map(drop),
            RawConnection::MySql(c) => c.execute(sql).await.map(drop),
        }
        .unwrap();
    }

    /// The first column of every row `sql` returns, as text (cast it).
    pub async fn strings(&mut self, sql: &str) -> Vec<String> {
        match self {
            RawConnection::Sqlite(c) => first_column(sqlx::query(sql).fetch_all(c).await),
            RawConnection::Postgres(c) => first_column(sqlx::query(sql).fetch_all(c).await),
            RawConnection::MySql(c) => first_column(sqlx::query(sql).fetch_all(c).await),
        }
    }
}

fn first_column<R>(rows: Result<Vec<R>, sqlx::Error>) -> Vec<String>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.unwrap()
        .iter()
        .map(|row| row.try_get::<String, _>(0).unwrap())
        .collect()
}

/// A `GET /1.0/sync/1.5` being built.
pub struct TokenRequest {
    url: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl TokenRequest {
    pub fn new(base: &str) -> Self {
        Self {
            url: base.to_owned(),
            path: "/1.0/sync/1.5".into(),
            headers: Vec::new(),
        }
    }

    pub fn path(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    pub fn key_id(self, key_id: &str) -> Self {
        self.header("X-KeyID", key_id)
    }

    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Sends the request over a raw socket, waits `after`, then leaves as
    /// `how` says without reading the answer: a client that vanishes.
    pub async fn abandon(self, after: Duration, how: Vanish) {
        let authority = self.url.trim_start_matches("http://");
        let request = http_request("GET", &self.path, authority, &self.headers, b"");
        send_and_vanish(authority, &request, after, how).await;
    }

    pub async fn send(self) -> Reply {
        let mut request = reqwest::Client::new().get(format!("{}{}", self.url, self.path));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        Reply::read(request.send().await.unwrap()).await
    }
}
