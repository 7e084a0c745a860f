//! Query strings of collection requests: `ids`, the filters, sort, paging
//! offset and batch parameters.

#![no_main]

use libfuzzer_sys::fuzz_target;
use syncstorage::api::extract::QueryPairs;
use syncstorage::api::query::{batch_mode, bso_query, ids};
use syncstorage::model::limits::Limits;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(query) = QueryPairs::parse(text) else {
        return;
    };
    let limits = Limits::default();
    let _ = ids(&query, &limits);
    let _ = bso_query(&query, &limits);
    let _ = batch_mode(&query);
});
