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
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    let first = ensure_master_secret(&mut config).unwrap();
    assert!(matches!(first, SecretSource::Generated(_)));
    let secret = config.master_secret.expose().to_owned();
    assert_eq!(secret.len(), 64);
    let mut again = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    assert!(matches!(
        ensure_master_secret(&mut again).unwrap(),
        SecretSource::Loaded(_)
    ));
    assert_eq!(again.master_secret.expose(), secret);
    let mut configured = Config {
        master_secret: sync_common::secret::Secret::new("set"),
        ..Config::default()
    };
    assert_eq!(
        ensure_master_secret(&mut configured).unwrap(),
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
