//! A real Firefox ESR, headless, driven through Marionette by
//! `firefox/driver.py`: signed in to the FxA stand-in, syncing with our
//! tokenserver, and kept off every address but loopback (everything else
//! goes to a proxy port nothing listens on).
//!
//! Needs Debian's `firefox-esr` and PyPI's `marionette-driver` (`.ci/run`
//! installs both); a test that uses it fails when they are missing.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::process::key_id;

/// Longest a driver command may take (a sync that meets a 401 waits and
/// tries again).
const COMMAND_LIMIT: Duration = Duration::from_secs(240);

/// A Firefox account as the browser holds it once signed in: the FxA uid,
/// and the Sync key with its key id.
#[derive(Debug, Clone)]
pub struct Account {
    pub fxa_uid: String,
    /// The Sync key: 64 bytes, base64url.
    k: String,
    kid: String,
}

impl Account {
    pub fn random() -> Self {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let k: [u8; 32] = rand::random();
        let hmac: [u8; 32] = rand::random();
        let client_state: [u8; 16] = rand::random();
        Self {
            fxa_uid: hex::encode(rand::random::<[u8; 16]>()),
            k: b64.encode([k, hmac].concat()),
            // FxA's key rotation time, in milliseconds.
            kid: key_id(1_700_000_000_000, &client_state),
        }
    }
}

/// Where the browser's proxy is: a privileged port nothing on these
/// machines listens on, and no test can bind.
const DEAD_PROXY_PORT: &str = "9";

/// One browser on its own fresh profile; killed (with its driver) on drop.
pub struct Firefox {
    driver: Child,
    /// Firefox's process, which leads a process group of its own.
    browser: u32,
    stdin: ChildStdin,
    answers: Lines<BufReader<ChildStdout>>,
    /// Holds the logs (`driver.log`, the driver's own; `firefox.log`) and
    /// the profile.
    dir: tempfile::TempDir,
}

impl Firefox {
    /// Starts the browser, its FxA servers at `fxa`, its tokenserver at
    /// `tokenserver`.
    pub async fn start(fxa: &str, tokenserver: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("firefox.log");
        let driver_log = std::fs::File::create(dir.path().join("driver.log")).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/firefox/driver.py");
        let mut driver = Command::new("python3")
            .arg(script)
            .args(["--fxa", fxa, "--tokenserver", tokenserver])
            .args(["--dead-port", DEAD_PROXY_PORT])
            .args(["--marionette-port", &crate::free_port().to_string()])
            .arg("--log")
            .arg(&log)
            // The profile and Firefox's temporary files go with `dir`.
            .env("TMPDIR", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(driver_log)
            // A group of its own, so that its children go with it.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs firefox/driver.py");
        let stdin = driver.stdin.take().unwrap();
        let answers = BufReader::new(driver.stdout.take().unwrap()).lines();
        let mut firefox = Self {
            driver,
            browser: 0,
            stdin,
            answers,
            dir,
        };
        let started = firefox.answer().await;
        firefox.browser = started["firefox_pid"].as_u64().expect("Firefox's pid") as u32;
        firefox
    }

    /// Signs in as `account` and waits for the first sync; Sync's status
    /// after each sync it took.
    pub async fn sign_in(&mut self, account: &Account) -> Vec<Value> {
        let command = json!({
            "cmd": "sign_in",
            "uid": account.fxa_uid,
            "email": format!("{}@example.com", account.fxa_uid),
            "session": hex::encode(rand::random::<[u8; 32]>()),
            "kid": account.kid,
            "k": account.k,
        });
        Self::attempts(self.call(command).await)
    }

    /// Adds a toolbar folder `folder` holding a bookmark per title.
    pub async fn add_bookmarks(&mut self, folder: &str, titles: &[String]) {
        let added = self
            .call(json!({"cmd": "add_bookmarks", "folder": folder, "titles": titles}))
            .await;
        assert_eq!(added, json!(titles.len()));
    }

    /// Syncs until a sync succeeds; Sync's status after each one.
    pub async fn sync(&mut self) -> Vec<Value> {
        Self::attempts(self.call(json!({"cmd": "sync"})).await)
    }

    /// The title of every bookmark (not folders) in the profile.
    pub async fn bookmark_titles(&mut self) -> Vec<String> {
        let all = self.call(json!({"cmd": "bookmarks"})).await;
        all.as_array()
            .unwrap()
            .iter()
            .map(|b| b["title"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Quits the browser the way a user does.
    pub async fn quit(mut self) {
        self.send(json!({"cmd": "quit"})).await;
        let exited = tokio::time::timeout(COMMAND_LIMIT, self.driver.wait()).await;
        assert!(matches!(exited, Ok(Ok(s)) if s.success()), "{exited:?}");
    }

    /// The sync attempts a command reported; the last one must have
    /// succeeded.
    fn attempts(result: Value) -> Vec<Value> {
        let attempts = result.as_array().unwrap().clone();
        let last = attempts.last().unwrap();
        assert_eq!(last["service"], "success.status_ok", "{attempts:#?}");
        attempts
    }

    async fn call(&mut self, command: Value) -> Value {
        self.send(command).await;
        self.answer().await
    }

    async fn send(&mut self, command: Value) {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The next answer's result; fails the test, with the end of
    /// Firefox's log, on an error.
    async fn answer(&mut self) -> Value {
        let answer = tokio::time::timeout(COMMAND_LIMIT, self.next_answer()).await;
        match answer.ok().flatten() {
            Some(a) if a["ok"] == true => a["result"].clone(),
            other => panic!(
                "the Firefox driver failed: {other:?}\n--- end of the driver's log:\n{}\n--- end of Firefox's log:\n{}",
                tail(&self.dir.path().join("driver.log"), 20),
                tail(&self.dir.path().join("firefox.log"), 60),
            ),
        }
    }

    /// The next line that is an answer (the driver's libraries may print
    /// other lines); `None` once the driver is gone.
    async fn next_answer(&mut self) -> Option<Value> {
        while let Some(line) = self.answers.next_line().await.ok().flatten() {
            match serde_json::from_str::<Value>(&line) {
                Ok(answer) if answer.get("ok").is_some() => return Some(answer),
                _ => eprintln!("firefox driver: {line}"),
            }
        }
        None
    }
}

/// The last `lines` lines of a log file.
fn tail(path: &std::path::Path, lines: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Firefox {
    fn drop(&mut self) {
        // Both groups: the browser's (its content processes too) and the
        // driver's.
        let groups = [Some(self.browser), self.driver.id()];
        for group in groups.into_iter().flatten().filter(|g| *g != 0) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
        }
    }
}
