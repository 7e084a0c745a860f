//! Bodies of writes: POSTs as JSON or `application/newlines`, planned
//! against the default limits, and PUT objects parsed as a BSO.

#![no_main]

use libfuzzer_sys::fuzz_target;
use syncstorage::api::body::{post_items, put_object};
use syncstorage::api::extract::BodyFormat;
use syncstorage::model::bso::{parse_bso, BsoId};
use syncstorage::model::limits::Limits;
use syncstorage::model::post::plan_post;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 | 1 => {
            let format = if mode % 3 == 0 {
                BodyFormat::Json
            } else {
                BodyFormat::Newlines
            };
            if let Ok(items) = post_items(format, body) {
                let _ = plan_post(items, &Limits::default());
            }
        }
        _ => {
            if let (Ok(object), Some(id)) = (put_object(body), BsoId::parse("record")) {
                let _ = parse_bso(&object, id);
            }
        }
    }
});
