//! Token ids as a HAWK header carries them (tokenlib's format).

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sync_common::token::TokenSecrets;

static SECRETS: LazyLock<TokenSecrets> =
    LazyLock::new(|| TokenSecrets::new(&["fuzz", "previous"]).expect("secrets"));

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = SECRETS.parse_token(token);
    }
});
