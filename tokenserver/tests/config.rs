//! The settings files and variables operators write load as documented.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use sync_common::config::load;
use tokenserver::Config;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_annotated_example_loads_and_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/tokenserver.example.toml");
    let loaded = load::<Config>(Some(&path), vec![]).unwrap();
    assert!(
        loaded.config.problems().is_empty(),
        "{:?}",
        loaded.config.problems()
    );
    assert_eq!(
        loaded.config.tokenserver.init_node_url.as_deref(),
        Some("https://sync-1.example.com")
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn a_jwk_can_be_one_json_variable_or_one_variable_per_field() {
    let json = r#"{"kty":"RSA","alg":"RS256","kid":"k1","use":"sig","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}"#;
    let loaded = load::<Config>(
        None,
        env(&[("SYNC_TOKENSERVER__FXA_OAUTH_PRIMARY_JWK", json)]),
    )
    .unwrap();
    let jwk = loaded.config.tokenserver.fxa_oauth_primary_jwk.unwrap();
    assert_eq!(jwk.kid.as_deref(), Some("k1"));
    assert!(jwk.decoding_key().is_ok());
    let loaded = load::<Config>(
        None,
        env(&[
            ("SYNC_TOKENSERVER__FXA_OAUTH_SECONDARY_JWK__KTY", "RSA"),
            ("SYNC_TOKENSERVER__FXA_OAUTH_SECONDARY_JWK__N", "sXch"),
            ("SYNC_TOKENSERVER__FXA_OAUTH_SECONDARY_JWK__E", "AQAB"),
            ("SYNC_TOKENSERVER__FXA_OAUTH_SECONDARY_JWK__KID", "k2"),
            // Mozilla's documented settings give this one as a number.
            (
                "SYNC_TOKENSERVER__FXA_OAUTH_SECONDARY_JWK__FXA_CREATED_AT",
                "1564502400",
            ),
        ]),
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let jwk = loaded.config.tokenserver.fxa_oauth_secondary_jwk.unwrap();
    assert_eq!((jwk.kid.as_deref(), jwk.e.as_str()), (Some("k2"), "AQAB"));
    assert_eq!(jwk.fxa_created_at, Some(1_564_502_400));
}

#[test]
fn a_malformed_jwk_is_refused_naming_the_setting_and_the_fault() {
    let cases = [
        (
            "SYNC_TOKENSERVER__FXA_OAUTH_PRIMARY_JWK__FXA_CREATED_AT",
            "soon",
            "fxa_created_at",
        ),
        (
            "SYNC_TOKENSERVER__FXA_OAUTH_PRIMARY_JWK",
            "{not json",
            "JSON object",
        ),
    ];
    for (name, value, fault) in cases {
        let err = load::<Config>(None, env(&[(name, value)])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("fxa_oauth_primary_jwk"), "{name}: {text}");
        assert!(text.contains(fault), "{name}: {text}");
        assert!(!text.contains("untagged"), "{name}: {text}");
    }
}

#[test]
fn problems_are_sentences_naming_the_setting() {
    let loaded = load::<Config>(
        None,
        env(&[
            ("SYNC_TOKENSERVER__NODE_CAPACITY_RELEASE_RATE", "2"),
            ("SYNC_TOKENSERVER__FXA_WEBHOOK_ENABLED", "true"),
            ("SYNC_TOKENSERVER__DATABASE_URL", "redis://x"),
            (
                "SYNC_TOKENSERVER__INIT_NODE_URL",
                "https://node.example.com/",
            ),
        ]),
    )
    .unwrap();
    let problems = loaded.config.problems().join("\n");
    for needle in [
        "master_secret is required",
        "node_capacity_release_rate",
        "fxa_webhook_set_client_id",
        "unsupported database URL",
    ] {
        assert!(
            problems.contains(needle),
            "{needle} missing from:\n{problems}"
        );
    }
}
