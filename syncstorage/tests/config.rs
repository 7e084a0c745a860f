//! The settings files and variables operators write load as documented.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use sync_common::config::load;
use syncstorage::Config;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_annotated_example_loads_and_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/syncstorage.example.toml");
    let loaded = load::<Config>(Some(&path), vec![]).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(
        loaded.config.problems().is_empty(),
        "{:?}",
        loaded.config.problems()
    );
    assert_eq!(
        loaded.config.public_url.as_deref(),
        Some("https://sync.example.com")
    );
    assert_eq!(loaded.config.syncstorage.limits.max_post_records, 100);
}

#[test]
fn mozilla_style_variables_set_nested_keys() {
    let loaded = load::<Config>(
        None,
        env(&[
            ("SYNC_MASTER_SECRET", "s"),
            ("SYNC_PORT", "9000"),
            ("SYNC_SYNCSTORAGE__DATABASE_URL", "sqlite:/tmp/x.db"),
            ("SYNC_SYNCSTORAGE__LIMITS__MAX_POST_RECORDS", "50"),
            ("SYNC_SYNCSTORAGE__ENABLE_QUOTA", "true"),
            ("SYNC_PREVIOUS_MASTER_SECRETS", "[\"old\"]"),
        ]),
    )
    .unwrap();
    let c = loaded.config;
    assert_eq!(c.port, 9000);
    assert_eq!(c.syncstorage.database_url.expose(), "sqlite:/tmp/x.db");
    assert_eq!(c.syncstorage.limits.max_post_records, 50);
    assert!(c.syncstorage.enable_quota);
    assert_eq!(c.secrets(), ["s", "old"]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn a_missing_secret_and_bad_values_are_explained() {
    let loaded = load::<Config>(
        None,
        env(&[
            ("SYNC_PUBLIC_URL", "sync.example.com"),
            ("SYNC_SYNCSTORAGE__DATABASE_URL", "redis://x"),
            ("SYNC_SYNCSTORAGE__LIMITS__MAX_POST_RECORDS", "0"),
        ]),
    )
    .unwrap();
    let problems = loaded.config.problems().join("\n");
    assert!(problems.contains("master_secret is required"), "{problems}");
    assert!(problems.contains("public_url"), "{problems}");
    assert!(problems.contains("unsupported database URL"), "{problems}");
    assert!(problems.contains("max_post_records"), "{problems}");
}

#[test]
fn printed_settings_never_show_secrets() {
    let loaded = load::<Config>(
        None,
        env(&[
            ("SYNC_MASTER_SECRET", "hunter2"),
            ("SYNC_SYNCSTORAGE__DATABASE_URL", "postgres://u:pw@db/sync"),
        ]),
    )
    .unwrap();
    let printed = serde_json::to_string(&loaded.config).unwrap();
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(!printed.contains(":pw@"), "{printed}");
    assert!(!format!("{:?}", loaded.config).contains("hunter2"));
    // A password given as a query parameter is a password too.
    let loaded = load::<Config>(
        None,
        env(&[(
            "SYNC_SYNCSTORAGE__DATABASE_URL",
            "postgres://u@db/sync?password=querypw",
        )]),
    )
    .unwrap();
    let printed = format!(
        "{} {:?} {}",
        serde_json::to_string(&loaded.config).unwrap(),
        loaded.config,
        loaded.config.syncstorage.database_url
    );
    assert!(!printed.contains("querypw"), "{printed}");
}

#[test]
fn a_mistyped_secret_list_is_explained_without_echoing_it() {
    let err = load::<Config>(
        None,
        env(&[("SYNC_PREVIOUS_MASTER_SECRETS", "oldsecret-hunter2")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("previous_master_secrets"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn passwords_with_an_at_sign_stay_redacted() {
    let url = sync_common::db_url::DatabaseUrl::new("postgres://u:p@ss@db/sync");
    assert_eq!(url.to_string(), "postgres://u:***@db/sync");
}
