//! `X-KeyID` (any bytes) with an optional legacy `X-Client-State`, split at
//! the first 0xFF byte.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenserver::model::keys::KeyId;

fuzz_target!(|data: &[u8]| {
    let (key_id, client_state) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], std::str::from_utf8(&data[at + 1..]).ok()),
        None => (data, None),
    };
    let _ = KeyId::parse(Some(key_id), client_state);
});
