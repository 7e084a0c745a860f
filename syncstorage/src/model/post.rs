//! Turning a POST body into BSO writes, applying the per-request limits:
//! bad items go to `failed`, items past the limits come back as "retry".

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::bso::{parse_bso, BsoId, BsoInput};
use super::limits::Limits;

/// The items of a POST that will be written, and those that will not.
#[derive(Debug, Default)]
pub struct PostPlan {
    pub writes: Vec<BsoInput>,
    /// id → reason, as the response's `failed` object.
    pub failed: BTreeMap<String, String>,
}

/// Why a whole POST body is refused (400 with code 8).
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidPost(pub &'static str);

/// Validates the items of a POST in order.
///
/// The whole request is refused if an item is not an object, has no string
/// `id`, or repeats an id. Otherwise each item either becomes a write or
/// lands in `failed` (invalid, or beyond `max_post_records`/bytes).
pub fn plan_post(items: Vec<Value>, limits: &Limits) -> Result<PostPlan, InvalidPost> {
    let mut seen = HashSet::new();
    let mut plan = PostPlan::default();
    let mut bytes: u64 = 0;
    for item in items {
        let Value::Object(object) = item else {
            return Err(InvalidPost("every item must be an object"));
        };
        let Some(Value::String(raw_id)) = object.get("id") else {
            return Err(InvalidPost("every item needs a string id"));
        };
        if !seen.insert(raw_id.clone()) {
            return Err(InvalidPost("duplicate ids in one request"));
        }
        let Some(id) = BsoId::parse(raw_id) else {
            plan.failed
                .insert(raw_id.clone(), "invalid bso: invalid id".into());
            continue;
        };
        if plan.writes.len() as u64 >= limits.max_post_records {
            plan.failed.insert(raw_id.clone(), "retry bso".into());
            continue;
        }
        match parse_bso(&object, id) {
            Err(invalid) => {
                plan.failed.insert(raw_id.clone(), invalid.0);
            }
            Ok(input) => {
                let size = input.payload_len() as u64;
                if size > limits.max_record_payload_bytes
                    || bytes.saturating_add(size) > limits.max_post_bytes
                {
                    plan.failed.insert(raw_id.clone(), "retry bytes".into());
                    continue;
                }
                bytes += size;
                plan.writes.push(input);
            }
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items(v: Value) -> Vec<Value> {
        v.as_array().unwrap().clone()
    }

    #[test]
    fn invalid_items_fail_and_the_rest_are_written() {
        let plan = plan_post(
            items(json!([
                {"id": "a", "payload": "x"},
                {"id": "b", "sortindex": "nope"},
                {"id": "bad\u{1}", "payload": "x"},
            ])),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(plan.writes.len(), 1);
        assert_eq!(plan.failed.len(), 2);
    }

    #[test]
    fn structural_errors_refuse_the_whole_post() {
        let limits = Limits::default();
        assert!(plan_post(items(json!([1])), &limits).is_err());
        assert!(plan_post(items(json!([{"payload": "x"}])), &limits).is_err());
        assert!(plan_post(items(json!([{"id": 5}])), &limits).is_err());
        assert!(plan_post(items(json!([{"id": "a"}, {"id": "a"}])), &limits).is_err());
    }

    #[test]
    fn items_past_the_limits_are_to_be_retried() {
        let limits = Limits {
            max_post_records: 2,
            max_post_bytes: 5,
            max_record_payload_bytes: 4,
            ..Limits::default()
        };
        let plan = plan_post(
            items(json!([
                {"id": "a", "payload": "1234"},
                {"id": "b", "payload": "12345"},
                {"id": "c", "payload": "12"},
                {"id": "d", "payload": "1"},
                {"id": "e", "payload": ""},
            ])),
            &limits,
        )
        .unwrap();
        let ids: Vec<_> = plan.writes.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["a", "d"]);
        assert_eq!(plan.failed["b"], "retry bytes");
        assert_eq!(plan.failed["c"], "retry bytes");
        assert_eq!(plan.failed["e"], "retry bso");
    }
}
