//! `Authorization: Hawk …` headers: raw, or around a genuine token so the
//! fuzzer reaches the timestamp, MAC, hash and nonce checks.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sync_common::hawk::{HawkRequest, HawkVerifier, ReplayCache};
use sync_common::token::{TokenPayload, TokenSecrets};

const NOW: u64 = 1_700_000_000;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    verifier: HawkVerifier,
    token: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let secrets = TokenSecrets::new(&["fuzz"]).expect("a secret");
    let payload = TokenPayload {
        node: "http://localhost".into(),
        fxa_kid: String::new(),
        fxa_uid: String::new(),
        hashed_device_id: String::new(),
        hashed_fxa_uid: String::new(),
        expires: NOW + 100,
        uid: 7,
        tokenserver_origin: "rust".into(),
        salt: "abcdef".into(),
        node_epoch: 0,
    };
    let token = secrets.make_token(&payload).expect("a token").token;
    Fixture {
        runtime: tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime"),
        verifier: HawkVerifier::new(secrets, 60, ReplayCache::in_process(0)),
        token,
    }
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let f = &*FIXTURE;
    let header = if mode % 2 == 0 {
        text.to_owned()
    } else {
        format!("Hawk id=\"{}\", {text}", f.token)
    };
    let request = HawkRequest {
        method: "POST",
        host: "localhost",
        port: 80,
        path_and_query: "/1.5/7/storage/bookmarks",
        content_type: Some("application/json"),
        body: b"[]",
    };
    let _ = f
        .runtime
        .block_on(f.verifier.verify(Some(&header), &request, NOW, mode % 4 == 1));
});
