//! The shipped monitoring (`deploy/monitoring`) against a real Prometheus
//! (Debian's `prometheus` package, which `.ci/run` installs): the rules pass
//! `promtool`, a scrape of the real server passes `promtool check metrics`,
//! and every query of the dashboard returns data from a Prometheus that
//! scraped a server after real syncs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::db::TestDb;
use integration_tests::fxa::FakeFxa;
use integration_tests::sync_client::{get_token, SyncClient};
use serde_json::{json, Value};
use support::{key_id, token, Server, SYNCSERVER};

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring")
}

/// Runs a tool the test needs, failing loudly when it is missing.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(monitoring())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed (apt install prometheus): {e}"));
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?}: {text}");
    text
}

#[test]
fn the_shipped_rules_and_config_pass_promtool() {
    run("promtool", &["check", "rules", "alerts.yml"], None);
    run("promtool", &["test", "rules", "alerts.test.yml"], None);
    run("promtool", &["check", "config", "prometheus.yml"], None);
}

/// Every PromQL expression of the dashboard, with Grafana's variables
/// given values.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(monitoring().join("dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let expr = expr.replace("$__rate_interval", "1m").replace("$job", ".*");
            queries.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    assert!(queries.len() > 30, "{}", queries.len());
    queries
}

/// Syncs the way clients do, touching every part the dashboard shows.
async fn sync_a_little(server: &Server, fxa: &FakeFxa) {
    let client = token(&server.url, "dashboard-user", 1, &[4; 16]).await;
    let scope = ["https://identity.mozilla.com/apps/oldsync"];
    let opaque = fxa.opaque_token("dashboard-remote", Some(1), &scope);
    let tokenserver = format!("{}/1.0/sync/1.5", server.url);
    let remote = get_token(&tokenserver, &opaque, &key_id(1, &[6; 16])).await;
    SyncClient::from_token(&remote.assert(200).json())
        .get("/info/collections")
        .await
        .assert(200);
    let records = json!([{"id": "a", "payload": "x"}, {"id": "b", "payload": "y"}]);
    client
        .post("/storage/bookmarks", &records)
        .await
        .assert(200);
    client.get("/storage/bookmarks?full=1").await.assert(200);
    let opened = client.post("/storage/tabs?batch=true", &records).await;
    let batch = opened.assert(202).json()["batch"]
        .as_str()
        .unwrap()
        .to_owned();
    let commit = format!("/storage/tabs?batch={batch}&commit=true");
    client.post(&commit, &json!([])).await.assert(200);
    client.get("/storage/bookmarks/missing").await.assert(404);
}

async fn query(prometheus: &str, expr: &str) -> Vec<Value> {
    let answer: Value = reqwest::Client::new()
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "success", "{expr}: {answer}");
    answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Prometheus scraping `target` every second; killed on drop.
struct Prometheus {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s}}\n\
                 scrape_configs:\n  - job_name: syncserver\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let address = format!("127.0.0.1:{}", integration_tests::free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("prometheus is needed (apt install prometheus): {e}"));
        Self {
            child,
            url: format!("http://{address}"),
            _dir: dir,
        }
    }
}

impl Prometheus {
    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = reqwest::get(format!("{}/-/ready", self.url)).await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("prometheus exited: {status}");
            }
            assert!(Instant::now() < deadline, "prometheus did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let db = TestDb::fresh("prometheus").await;
    let fxa = FakeFxa::spawn().await;
    let metrics = format!("127.0.0.1:{}", integration_tests::free_port());
    let env = [
        ("SYNC_SYNCSTORAGE__DATABASE_URL", db.url.as_str()),
        ("SYNC_METRICS_ADDRESS", metrics.as_str()),
        ("SYNC_SYNCSTORAGE__PURGE_INTERVAL_SECONDS", "1"),
        ("SYNC_TOKENSERVER__FXA_OAUTH_SERVER_URL", fxa.url.as_str()),
    ];
    let server = Server::start_with(SYNCSERVER, &env, None).await;
    sync_a_little(&server, &fxa).await;

    let scrape = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    run("promtool", &["check", "metrics"], Some(&scrape));

    let mut prometheus = Prometheus::start(&metrics);
    prometheus.wait_until_ready().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut missing = dashboard_queries();
    while !missing.is_empty() {
        let mut still = Vec::new();
        for (title, expr) in missing {
            if query(&prometheus.url, &expr).await.is_empty() {
                still.push((title, expr));
            }
        }
        missing = still;
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dashboard queries without data: {missing:#?}"
        );
        // Some panels need a few scrapes (rates) or the next sync.
        tokio::time::sleep(Duration::from_secs(1)).await;
        sync_a_little(&server, &fxa).await;
    }
}
