//! What FxA sends: `/v1/verify` answers, JWT access tokens (checked against
//! a real RSA key), and JWKs as configured or fetched.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tokenserver::auth::keys::{deserialize_jwk, VerifyingKey};
use tokenserver::auth::oauth::{identity_in_answer, verify_jwt_locally};

/// The public half of the tests' FxA key.
static KEY: LazyLock<VerifyingKey> = LazyLock::new(|| {
    let keys: serde_json::Value =
        serde_json::from_str(include_str!("../../integration-tests/src/fxa_test_keys.json"))
            .expect("the test keys");
    let jwk = deserialize_jwk(keys["primary"]["jwk"].clone())
        .expect("a JWK")
        .expect("present");
    jwk.decoding_key().expect("a key")
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let _ = identity_in_answer(rest);
        }
        1 => {
            if let Ok(token) = std::str::from_utf8(rest) {
                let _ = verify_jwt_locally(token, std::slice::from_ref(&*KEY));
            }
        }
        _ => {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(rest) {
                if let Ok(Some(jwk)) = deserialize_jwk(value) {
                    let _ = jwk.decoding_key();
                }
            }
        }
    }
});
