//! A server binary as a child process, for the tests and benchmarks that
//! need a process of its own (a restart, an open-files limit, its memory).

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fxa::{access_token, TestKey};
use crate::sync_client::{get_token, SyncClient};
use base64::Engine;

/// A `syncserver` process in its own working directory; killed on drop.
pub struct Server {
    binary: String,
    pub url: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    /// Its log lines so far.
    log: Arc<Mutex<Vec<String>>>,
    /// Whether it prints the URL to give Firefox (the all-in-one does).
    announces: bool,
}

impl Server {
    /// Starts `binary` on a free port (`SYNC_PORT=0`), as the README
    /// says: no settings but the test FxA key.
    pub async fn start(binary: &str) -> Self {
        Self::start_with(binary, &[("SYNC_PORT", "0")], None).await
    }

    /// Starts `binary` with `env` (on a free port unless `SYNC_PORT` is
    /// given), under an open-files limit of `open_files` if given.
    pub async fn start_with(binary: &str, env: &[(&str, &str)], open_files: Option<u32>) -> Self {
        let mut server = Self::new(binary, true);
        server.spawn_limited(&with_port(env), open_files).await;
        server
    }

    /// Starts a separate service (`syncstorage`, `tokenserver`: they do not
    /// announce a URL) with `env`, on a free port unless `SYNC_PORT` is
    /// given.
    pub async fn start_service(binary: &str, env: &[(&str, &str)]) -> Self {
        let mut server = Self::new(binary, false);
        let port = crate::free_port().to_string();
        let mut env = env.to_vec();
        if !env.iter().any(|(key, _)| *key == "SYNC_PORT") {
            env.push(("SYNC_PORT", port.as_str()));
        }
        server.spawn_limited(&env, None).await;
        server
    }

    fn new(binary: &str, announces: bool) -> Self {
        Self {
            binary: binary.to_owned(),
            url: String::new(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
            log: Arc::default(),
            announces,
        }
    }

    /// Starts the binary with `env` (on a free port unless `SYNC_PORT` is
    /// given) and waits until it serves.
    pub async fn spawn(&mut self, env: &[(&str, &str)]) {
        self.spawn_limited(&with_port(env), None).await;
    }

    async fn spawn_limited(&mut self, env: &[(&str, &str)], open_files: Option<u32>) {
        let binary = &self.binary;
        let mut command = match open_files {
            // `ulimit -n` sets the hard limit too: the server cannot raise it.
            Some(limit) => {
                let mut sh = Command::new("/bin/sh");
                sh.args(["-c", &format!("ulimit -n {limit} && exec \"$0\""), binary]);
                sh
            }
            None => Command::new(binary),
        };
        command
            .current_dir(self.dir.path())
            .env_clear()
            .env("SYNC_LOG_LEVEL", "warn")
            .env(
                "SYNC_TOKENSERVER__FXA_OAUTH_PRIMARY_JWK",
                TestKey::Primary.jwk().to_string(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        keep_lines(child.stdout.take().unwrap(), self.log.clone());
        self.child = Some(child);
        // The all-in-one announces its URL; a separate service listens
        // where it is told.
        let told = env.iter().find(|(key, _)| *key == "SYNC_PORT");
        self.url = match told {
            Some((_, port)) if !self.announces => {
                keep_lines(stderr, self.log.clone());
                format!("http://127.0.0.1:{port}")
            }
            _ => announced_url(stderr, self.log.clone()).await,
        };
        wait_until_up(&self.url, self.child.as_mut().unwrap()).await;
    }

    pub fn port(&self) -> String {
        self.url.rsplit(':').next().unwrap().to_owned()
    }

    /// `host:port`, for raw sockets.
    pub fn authority(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// The log lines written so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `env`, with `SYNC_PORT=0` (any free port) unless it names a port.
fn with_port<'a>(env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = env.to_vec();
    if !env.iter().any(|(key, _)| *key == "SYNC_PORT") {
        env.push(("SYNC_PORT", "0"));
    }
    env
}

/// The server prints the URL to give Firefox; read it from stderr (and keep
/// draining stderr into `log`, so the child never blocks on a full pipe).
async fn announced_url(stderr: std::process::ChildStderr, log: Arc<Mutex<Vec<String>>>) -> String {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(uri) = line.split("identity.sync.tokenserver.uri to ").nth(1) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(uri.trim_end_matches("/1.0/sync/1.5").to_owned());
                }
            }
            log.lock().unwrap().push(line);
        }
    });
    tokio::time::timeout(Duration::from_secs(60), rx)
        .await
        .expect("the server announced no URL")
        .expect("the server exited before announcing its URL")
}

/// A child's output goes to `log` as it comes.
fn keep_lines(output: impl std::io::Read + Send + 'static, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(output)
            .lines()
            .map_while(Result::ok)
        {
            log.lock().unwrap().push(line);
        }
    });
}

/// Polls `/__heartbeat__` until the server answers (a process start has no
/// other signal to wait on), failing at once if the process died.
async fn wait_until_up(url: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/__heartbeat__")).await {
            if r.status() == 200 {
                return;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the server at {url} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A process's memory, from `/proc/<pid>/status`: resident now (`VmRSS`)
/// and at its peak since the last `reset_peak` (`VmHWM`), in MiB.
pub fn memory_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    kib / 1024.0
}

/// Starts a new peak: `VmHWM` becomes the current `VmRSS`.
pub fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

/// The `X-KeyID` for these keys.
pub fn key_id(keys_changed_at: i64, client_state: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(client_state);
    format!("{keys_changed_at}-{b64}")
}

/// A storage client with a token for this FxA user.
pub async fn token(
    server: &str,
    fxa_uid: &str,
    generation: i64,
    client_state: &[u8],
) -> SyncClient {
    let reply = get_token(
        &format!("{server}/1.0/sync/1.5"),
        &access_token(fxa_uid, Some(generation)),
        &key_id(generation, client_state),
    )
    .await;
    SyncClient::from_token(&reply.assert(200).json())
}
