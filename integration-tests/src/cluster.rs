//! A deployment of separate processes: one `tokenserver` and storage nodes
//! (`syncstorage`), each on its own database and loopback port, sharing a
//! master secret, with the operator's command line at hand.
//!
//! The binaries are the ones Cargo built beside the test (`cargo test
//! --workspace` builds every binary of the workspace before any test runs).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::db::{TestBackend, TestDb};
use crate::drill::Deployment;
use crate::fxa::TestKey;
use crate::process::{token, Server};
use crate::sync_client::SyncClient;

/// A workspace binary next to the running test (`target/<profile>/<name>`).
pub fn binary(name: &str) -> String {
    let test = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let path: PathBuf = test.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace's binaries (cargo test --workspace does)",
        path.display()
    );
    path.display().to_string()
}

/// One storage node: its process, database, metrics listener and
/// settings.
pub struct Node {
    pub server: Server,
    pub db: TestDb,
    metrics: String,
    env: Vec<(String, String)>,
}

impl Node {
    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// Records clients have written to each collection since the process
    /// started (migration imports are not counted).
    pub async fn uploads(&self) -> BTreeMap<String, f64> {
        crate::prometheus::records_written_by_collection(&self.metrics).await
    }

    /// Kills the process with SIGKILL: no shutdown of any kind.
    pub fn kill(&mut self) {
        self.server.stop();
    }

    /// Starts the process again on the same port and database.
    pub async fn restart(&mut self) {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.server.spawn(&env).await;
    }
}

/// A tokenserver and its storage nodes.
pub struct Cluster {
    pub tokenserver: Server,
    pub nodes: Vec<Node>,
    pub secret: String,
    tokenserver_env: Vec<(String, String)>,
    _tokenserver_db: TestDb,
}

impl Cluster {
    /// A node per backend in `nodes`, the tokenserver on the backend
    /// `SYNC_TEST_BACKEND` names, `tokenserver_env` and `node_env` added to
    /// their settings.
    pub async fn start(
        nodes: &[TestBackend],
        tokenserver_env: &[(&str, &str)],
        node_env: &[(&str, &str)],
    ) -> Self {
        let secret = hex::encode(rand::random::<[u8; 16]>());
        let mut started = Vec::new();
        for (i, backend) in nodes.iter().enumerate() {
            let db = TestDb::fresh_on(*backend, &format!("node{i}")).await;
            let port = crate::free_port().to_string();
            let metrics = format!("127.0.0.1:{}", crate::free_port());
            let mut env = owned(node_env);
            env.extend(owned(&[
                ("SYNC_MASTER_SECRET", &secret),
                ("SYNC_SYNCSTORAGE__DATABASE_URL", &db.url),
                ("SYNC_PORT", &port),
                ("SYNC_METRICS_ADDRESS", &metrics),
            ]));
            let server = Server::start_service(&binary("syncstorage"), &borrowed(&env)).await;
            let metrics = format!("http://{metrics}");
            started.push(Node {
                server,
                db,
                metrics,
                env,
            });
        }
        let db = TestDb::fresh("tokenserver").await;
        let mut env = owned(tokenserver_env);
        env.extend(owned(&[
            ("SYNC_MASTER_SECRET", &secret),
            ("SYNC_TOKENSERVER__DATABASE_URL", &db.url),
        ]));
        let cluster = Self {
            tokenserver: Server::start_service(&binary("tokenserver"), &borrowed(&env)).await,
            nodes: started,
            secret,
            tokenserver_env: env,
            _tokenserver_db: db,
        };
        for i in 0..cluster.nodes.len() {
            let url = cluster.nodes[i].url().to_owned();
            cluster.admin(&["node", "add", &url, "--capacity", "1000"]);
        }
        cluster
    }

    /// Runs the operator command `tokenserver <args>` with the
    /// tokenserver's settings; its output.
    #[track_caller]
    pub fn admin(&self, args: &[&str]) -> String {
        let (ok, output) = self.admin_run(args);
        assert!(ok, "{args:?} failed: {output}");
        output
    }

    /// Runs the operator command; whether it succeeded, and all it printed.
    pub fn admin_run(&self, args: &[&str]) -> (bool, String) {
        let output = self.admin_command(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        (output.status.success(), format!("{stdout}{stderr}"))
    }

    /// Starts the operator command `tokenserver <args>` without waiting.
    pub fn admin_spawn(&self, args: &[&str]) -> std::process::Child {
        self.admin_command(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// `tokenserver <args>` with the tokenserver's settings.
    fn admin_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("tokenserver"));
        command
            .args(args)
            .env_clear()
            .envs(self.tokenserver_env.iter().map(|(k, v)| (k, v)))
            .env("SYNC_LOG_LEVEL", "warn")
            .env(
                "SYNC_TOKENSERVER__FXA_OAUTH_PRIMARY_JWK",
                TestKey::Primary.jwk().to_string(),
            );
        command
    }

    /// A client with a fresh token for `fxa_uid`.
    pub async fn client(&self, fxa_uid: &str) -> SyncClient {
        token(&self.tokenserver.url, fxa_uid, 1, &[7; 16]).await
    }

    /// The node a client's token is for.
    pub fn node_of(&self, client: &SyncClient) -> usize {
        self.nodes
            .iter()
            .position(|n| client.endpoint.starts_with(&format!("{}/", n.url())))
            .unwrap_or_else(|| panic!("{} is no node of this cluster", client.endpoint))
    }
}

impl Deployment for Cluster {
    fn tokenserver(&self) -> String {
        self.tokenserver.url.clone()
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url().to_owned()).collect()
    }

    fn metrics(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.metrics.clone()).collect()
    }

    fn admin(&self, args: &[&str]) -> String {
        Cluster::admin(self, args)
    }

    fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }
}

/// Polls `check` every 50 ms until it holds; how long that took. Fails
/// after `limit`.
pub async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn owned(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}
