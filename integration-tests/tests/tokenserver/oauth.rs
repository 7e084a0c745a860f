//! Verifying FxA tokens: configured keys (primary and secondary), FxA's
//! JWKS fetched and cached, and the remote fallback.

use integration_tests::fxa::{access_claims, access_token, Mode, TestKey, SYNC_SCOPE};

use crate::support::{TestTokenserver, TokenRequest};

fn jwk_config(key: TestKey) -> Option<tokenserver::auth::keys::RsaJwk> {
    Some(serde_json::from_value(key.jwk()).unwrap())
}

#[tokio::test]
async fn configured_primary_and_secondary_keys_both_verify() {
    let ts = TestTokenserver::spawn_with(|c| {
        c.tokenserver.fxa_oauth_primary_jwk = jwk_config(TestKey::Primary);
        c.tokenserver.fxa_oauth_secondary_jwk = jwk_config(TestKey::Secondary);
    })
    .await;
    ts.request("p", Some(1), "1-qqo").send().await.ok();
    let rotated = TestKey::Secondary.sign("at+jwt", &access_claims("p", Some(1)));
    ts.with_bearer(&rotated).send().await.ok();
    let rogue = TestKey::Rogue.sign("at+jwt", &access_claims("p", Some(1)));
    let refused = ts.with_bearer(&rogue).send().await;
    refused.assert_error(401, "invalid-credentials", "body", "", "Unauthorized");
    assert_eq!(ts.fxa.jwks_fetches(), 0, "configured keys need no JWKS");
    // Only the token whose kid no configured key has went to FxA.
    assert_eq!(ts.fxa.verify_calls(), 1);
}

#[tokio::test]
async fn the_jwks_is_fetched_once_and_refreshed_for_a_new_key() {
    let ts = TestTokenserver::spawn().await;
    ts.fxa.publish(&[TestKey::Primary]);
    ts.request("j", Some(1), "1-qqo").send().await.ok();
    ts.request("j", Some(1), "1-qqo").send().await.ok();
    assert_eq!(ts.fxa.jwks_fetches(), 1, "the JWKS is cached");
    // FxA rotates to a key we have not seen: the token's kid is unknown,
    // which forces one refresh.
    ts.fxa.publish(&[TestKey::Primary, TestKey::Secondary]);
    let rotated = TestKey::Secondary.sign("at+jwt", &access_claims("j", Some(1)));
    ts.with_bearer(&rotated).send().await.ok();
    assert_eq!(ts.fxa.jwks_fetches(), 2);
    // Another unknown kid right after does not refetch (forged tokens
    // cannot make us hammer FxA's keys); FxA's verify refuses it.
    let rogue = TestKey::Rogue.sign("at+jwt", &access_claims("j", Some(1)));
    let reply = ts.with_bearer(&rogue).send().await;
    reply.assert_error(401, "invalid-credentials", "body", "", "Unauthorized");
    assert_eq!(ts.fxa.jwks_fetches(), 2);
    assert_eq!(ts.fxa.verify_calls(), 1);
}

#[tokio::test]
async fn a_malformed_jwks_falls_back_to_remote_verification_never_a_crash() {
    let ts = TestTokenserver::spawn().await;
    ts.fxa.set_mode(Mode::MalformedJwks);
    // A JWT with no usable local key goes to /v1/verify, which does not
    // know it: refused, not crashed.
    let reply = ts.request("m", Some(1), "1-qqo").send().await;
    reply.assert_error(401, "invalid-credentials", "body", "", "Unauthorized");
    assert_eq!(ts.fxa.verify_calls(), 1);
    // A token FxA vouches for still works.
    let token = ts.fxa.opaque_token("m", Some(1), &[SYNC_SCOPE]);
    ts.with_bearer(&token).send().await.ok();
}

#[tokio::test]
async fn remote_answers_without_the_sync_scope_are_refused() {
    let ts = TestTokenserver::spawn().await;
    let token = ts.fxa.opaque_token("r", Some(1), &["profile"]);
    let reply = ts.with_bearer(&token).send().await;
    reply.assert_error(401, "invalid-credentials", "body", "", "Unauthorized");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let ts = TestTokenserver::spawn().await;
    let token = access_token("c", Some(1));
    TokenRequest::new(&ts.url)
        .header("Authorization", &format!("bEaReR {token}"))
        .key_id("1-qqo")
        .send()
        .await
        .ok();
}

#[tokio::test]
async fn known_keys_are_kept_while_fxa_serves_a_broken_jwks() {
    let ts = TestTokenserver::spawn().await;
    ts.fxa.publish(&[TestKey::Primary]);
    ts.request("k", Some(1), "1-qqo").send().await.ok();
    ts.fxa.set_mode(Mode::MalformedJwks);
    // FxA rotated to a key we cannot fetch: the token's kid forces a
    // refetch, which fails; FxA's verify endpoint decides instead.
    let rotated = TestKey::Secondary.sign("at+jwt", &access_claims("k", Some(1)));
    ts.fxa.vouch(&rotated, "k", Some(1), &[SYNC_SCOPE]);
    ts.with_bearer(&rotated).send().await.ok();
    assert_eq!((ts.fxa.jwks_fetches(), ts.fxa.verify_calls()), (2, 1));
    // The known key still verifies locally.
    ts.request("k", Some(1), "1-qqo").send().await.ok();
    assert_eq!(ts.fxa.verify_calls(), 1, "still verified locally");
}

#[tokio::test]
async fn the_jwks_can_come_from_its_own_url() {
    let keys = integration_tests::fxa::FakeFxa::spawn().await;
    let jwks_url = format!("{}/v1/jwks", keys.url);
    let closed = integration_tests::unreachable_url();
    let ts = TestTokenserver::spawn_with(|c| {
        // The OAuth server is down; only the key URL answers.
        c.tokenserver.fxa_oauth_server_url = closed.clone();
        c.tokenserver.fxa_oauth_jwks_url = Some(jwks_url);
    })
    .await;
    ts.request("own-url", Some(1), "1-qqo").send().await.ok();
    assert_eq!(keys.jwks_fetches(), 1);
}
