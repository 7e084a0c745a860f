//! The all-in-one's settings: the example loads, defaults follow `data_dir`,
//! and a missing master secret is generated once and kept.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use sync_common::config::load;
use syncserver::{ensure_master_secret, Config, SecretSource};

#[test]
fn the_annotated_example_loads_and_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/syncserver.example.toml");
    let loaded = load::<Config>(Some(&path), vec![]).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let mut config = loaded.config;
    config.master_secret = sync_common::secret::Secret::new("x");
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    assert_eq!(config.public_url(), "https://sync.example.com");
}

#[test]
fn databases_follow_the_data_dir_and_the_public_url_defaults_to_localhost() {
    let env = vec![("SYNC_DATA_DIR".to_owned(), "/srv/sync".to_owned())];
    let config = load::<Config>(None, env).unwrap().config;
    assert_eq!(config.public_url(), "http://localhost:8000");
    assert_eq!(
        config.storage().syncstorage.database_url.expose(),
        "sqlite:/srv/sync/syncstorage.db"
    );
    assert_eq!(
        config.tokens().tokenserver.database_url.expose(),
        "sqlite:/srv/sync/tokenserver.db"
    );
    assert_eq!(
        config.storage().public_url.as_deref(),
        Some("http://localhost:8000")
    );
}

#[test]
fn the_master_secret_is_generated_once_then_reused() {
    let dir = tempfile::tempdir().unwrap();
    let mut unstarted = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    assert_eq!(
        ensure_master_secret(&mut unstarted, false).unwrap(),
        SecretSource::Missing
    );
    assert!(
        !dir.path().join("data").exists(),
        "inspecting creates nothing"
    );
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    let first = ensure_master_secret(&mut config, true).unwrap();
    assert!(matches!(first, SecretSource::Generated(_)));
    let secret = config.master_secret.expose().to_owned();
    assert_eq!(secret.len(), 64);
    let mut again = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    assert!(matches!(
        ensure_master_secret(&mut again, true).unwrap(),
        SecretSource::Loaded(_)
    ));
    assert_eq!(again.master_secret.expose(), secret);
    let mut configured = Config {
        master_secret: sync_common::secret::Secret::new("set"),
        ..Config::default()
    };
    assert_eq!(
        ensure_master_secret(&mut configured, true).unwrap(),
        SecretSource::Configured
    );
}

#[test]
fn a_public_url_tokens_cannot_name_is_refused_at_start() {
    for url in [
        "https://sync.example.com/sync",
        "sync.example.com",
        &format!("https://{}.example.com", "a".repeat(60)),
    ] {
        let config = Config {
            public_url: Some(url.to_owned()),
            master_secret: sync_common::secret::Secret::new("x"),
            ..Config::default()
        };
        assert!(
            config.problems().iter().any(|p| p.contains("public_url")),
            "{url}: {:?}",
            config.problems()
        );
    }
}

#[test]
fn an_empty_secret_file_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/master_secret"), "\n").unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    let error = ensure_master_secret(&mut config, true)
        .unwrap_err()
        .to_string();
    assert!(error.contains("is empty: delete it"), "{error}");
}

#[test]
fn racing_first_starts_agree_on_one_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secrets: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let data = data.clone();
                scope.spawn(move || {
                    let mut config = Config {
                        data_dir: data,
                        ..Config::default()
                    };
                    ensure_master_secret(&mut config, true).unwrap();
                    config.master_secret.expose().to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(secrets.windows(2).all(|w| w[0] == w[1]), "{secrets:?}");
    let leftovers = std::fs::read_dir(&data).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary files are left behind");
}

#[test]
fn an_ipv6_host_gives_a_bracketed_url() {
    let config = Config {
        host: "fd00::5".into(),
        ..Config::default()
    };
    assert_eq!(config.public_url(), "http://[fd00::5]:8000");
}
