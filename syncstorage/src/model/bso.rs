//! Basic Storage Objects: validated names and ids, the write input with its
//! keep/reset/set fields, and the one merge rule every backend applies.

use serde::Serialize;
use serde_json::{Map, Value};

use super::timestamp::SyncTimestamp;

/// Largest |sortindex| accepted (nine digits).
pub const MAX_SORTINDEX: i64 = 999_999_999;
/// Largest ttl (seconds) a client may send.
pub const MAX_TTL: i64 = 999_999_999;
/// The ttl of a BSO written without one: about 66 years, i.e. "never".
pub const DEFAULT_TTL_SECONDS: u64 = 2_100_000_000;

/// A collection name: `^[a-zA-Z0-9._-]{1,32}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CollectionName(String);

impl CollectionName {
    pub fn parse(name: &str) -> Option<Self> {
        let valid = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        valid.then(|| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A BSO id: 1 to 64 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BsoId(String);

impl BsoId {
    pub fn parse(id: &str) -> Option<Self> {
        let valid = (1..=64).contains(&id.len()) && id.bytes().all(|b| (b' '..=b'~').contains(&b));
        valid.then(|| Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One field of a write: absent keeps the stored value, `null` resets it to
/// its default, a value sets it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    #[default]
    Keep,
    Reset,
    Set(T),
}

impl<T> Patch<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Patch::Keep)
    }

    /// `later` applied on top of `self` (batch appends of the same id).
    fn then(self, later: Patch<T>) -> Patch<T> {
        match later {
            Patch::Keep => self,
            other => other,
        }
    }
}

/// A validated BSO write (PUT body, or one item of a POST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BsoInput {
    pub id: BsoId,
    pub sortindex: Patch<i32>,
    pub payload: Patch<String>,
    /// Seconds from the write's timestamp until the BSO expires.
    pub ttl: Patch<u32>,
}

/// The all-zero IV that a broken client once wrote into `crypto/keys`;
/// Mozilla's server refuses such a `crypto` record (`IV":\s*"AAAA…==`), so
/// a client cannot overwrite good keys with unusable ones.
const KNOWN_BAD_IV: &str = "\"AAAAAAAAAAAAAAAAAAAAAA==";

impl BsoInput {
    /// Whether this write may not be stored in `collection`: only `crypto`
    /// refuses anything, a payload with the known-bad IV.
    pub fn refused_in(&self, collection: &CollectionName) -> bool {
        let Patch::Set(payload) = &self.payload else {
            return false;
        };
        collection.as_str() == "crypto"
            && payload.match_indices("IV\":").any(|(at, _)| {
                payload[at + 4..]
                    .trim_start_matches(|c: char| c.is_ascii_whitespace())
                    .starts_with(KNOWN_BAD_IV)
            })
    }

    /// Payload size in UTF-8 bytes, as limits and quotas count it.
    pub fn payload_len(&self) -> usize {
        match &self.payload {
            Patch::Set(p) => p.len(),
            _ => 0,
        }
    }

    /// This write followed by `later` to the same id, as one write.
    pub fn then(self, later: BsoInput) -> BsoInput {
        BsoInput {
            id: self.id,
            sortindex: self.sortindex.then(later.sortindex),
            payload: self.payload.then(later.payload),
            ttl: self.ttl.then(later.ttl),
        }
    }
}

/// A stored BSO as reads return it. `ttl` and `expiry` are never sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bso {
    pub id: String,
    pub modified: SyncTimestamp,
    pub payload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sortindex: Option<i32>,
    #[serde(skip)]
    pub expiry: SyncTimestamp,
}

/// When a write happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteTime {
    /// The user's next timestamp (never behind an earlier write, so it may
    /// run ahead of the clock); stamped on what the write touches.
    pub modified: SyncTimestamp,
    /// The server clock: ttls run from it, and expiry is judged against it,
    /// as reads do.
    pub clock: SyncTimestamp,
}

impl WriteTime {
    /// Both times equal (tests, and writes with the clock ahead).
    pub fn at(t: SyncTimestamp) -> Self {
        Self {
            modified: t,
            clock: t,
        }
    }
}

/// The row to store when `input` is written at `at` over `existing`.
///
/// An expired BSO counts as absent. `modified` moves only when the payload
/// or sortindex is written: a ttl-only touch keeps it (as Mozilla does).
pub fn apply(existing: Option<&Bso>, input: &BsoInput, at: WriteTime) -> Bso {
    let base = existing.filter(|b| b.expiry > at.clock);
    let sortindex = match input.sortindex {
        Patch::Keep => base.and_then(|b| b.sortindex),
        Patch::Reset => None,
        Patch::Set(v) => Some(v),
    };
    let payload = match &input.payload {
        Patch::Keep => base.map(|b| b.payload.clone()).unwrap_or_default(),
        Patch::Reset => String::new(),
        Patch::Set(p) => p.clone(),
    };
    let default_expiry = at.clock.plus_seconds(DEFAULT_TTL_SECONDS);
    let expiry = match input.ttl {
        Patch::Keep => base.map_or(default_expiry, |b| b.expiry),
        Patch::Reset => default_expiry,
        Patch::Set(ttl) => at.clock.plus_seconds(u64::from(ttl)),
    };
    let touched = !input.payload.is_keep() || !input.sortindex.is_keep();
    let modified = match base {
        Some(b) if !touched => b.modified,
        _ => at.modified,
    };
    Bso {
        id: input.id.as_str().to_owned(),
        modified,
        payload,
        sortindex,
        expiry,
    }
}

/// Folds writes made in upload order (a batch) into one write per id, in
/// order of each id's first appearance.
pub fn fold(writes: impl IntoIterator<Item = BsoInput>) -> Vec<BsoInput> {
    let mut folded: Vec<BsoInput> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for write in writes {
        match index.get(write.id.as_str()) {
            Some(&i) => {
                let earlier = std::mem::replace(&mut folded[i], write.clone());
                folded[i] = earlier.then(write);
            }
            None => {
                index.insert(write.id.as_str().to_owned(), folded.len());
                folded.push(write);
            }
        }
    }
    folded
}

impl BsoInput {
    /// The write as a JSON object that [`parse_bso`] reads back unchanged
    /// (absent fields stay absent, resets are `null`); used to stage batches.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("id".into(), Value::from(self.id.as_str()));
        let fields = [
            (
                "sortindex",
                patch_json(&self.sortindex, |v| Value::from(*v)),
            ),
            (
                "payload",
                patch_json(&self.payload, |v| Value::from(v.as_str())),
            ),
            ("ttl", patch_json(&self.ttl, |v| Value::from(*v))),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                object.insert(name.into(), value);
            }
        }
        Value::Object(object)
    }
}

fn patch_json<T>(patch: &Patch<T>, set: impl Fn(&T) -> Value) -> Option<Value> {
    match patch {
        Patch::Keep => None,
        Patch::Reset => Some(Value::Null),
        Patch::Set(v) => Some(set(v)),
    }
}

/// Why one BSO was refused; the text goes into a POST's `failed` map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

/// Validates one JSON object as a BSO write. `modified` and `collection` are
/// ignored; any other unknown field or a wrong type is refused.
pub fn parse_bso(object: &Map<String, Value>, id: BsoId) -> Result<BsoInput, Invalid> {
    let mut input = BsoInput {
        id,
        sortindex: Patch::Keep,
        payload: Patch::Keep,
        ttl: Patch::Keep,
    };
    for (key, value) in object {
        match key.as_str() {
            "id" | "modified" | "collection" => {}
            "sortindex" => input.sortindex = parse_int(value, MAX_SORTINDEX, "sortindex")?,
            "ttl" => input.ttl = parse_ttl(value)?,
            "payload" => {
                input.payload = match value {
                    Value::Null => Patch::Reset,
                    // PostgreSQL text cannot hold NUL; refused on every backend.
                    Value::String(s) if s.contains('\0') => {
                        return Err(Invalid("invalid bso: payload contains NUL".into()))
                    }
                    Value::String(s) => Patch::Set(s.clone()),
                    _ => return Err(Invalid("invalid bso: payload must be a string".into())),
                }
            }
            other => return Err(Invalid(format!("unknown field {other}"))),
        }
    }
    Ok(input)
}

fn parse_int(value: &Value, max: i64, name: &str) -> Result<Patch<i32>, Invalid> {
    match value {
        Value::Null => Ok(Patch::Reset),
        Value::Number(n) => n
            .as_i64()
            .filter(|v| v.abs() <= max)
            .and_then(|v| i32::try_from(v).ok())
            .map(Patch::Set)
            .ok_or_else(|| Invalid(format!("invalid bso: invalid {name}"))),
        _ => Err(Invalid(format!("invalid bso: invalid {name}"))),
    }
}

fn parse_ttl(value: &Value) -> Result<Patch<u32>, Invalid> {
    match value {
        Value::Null => Ok(Patch::Reset),
        Value::Number(n) => n
            .as_i64()
            .filter(|v| (0..=MAX_TTL).contains(v))
            .and_then(|v| u32::try_from(v).ok())
            .map(Patch::Set)
            .ok_or_else(|| Invalid("invalid bso: invalid ttl".into())),
        _ => Err(Invalid("invalid bso: invalid ttl".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(v: Value) -> Result<BsoInput, Invalid> {
        let obj = v.as_object().unwrap().clone();
        parse_bso(&obj, BsoId::parse("a").unwrap())
    }

    #[test]
    fn names_and_ids_are_validated() {
        assert!(CollectionName::parse("bookmarks").is_some());
        assert!(CollectionName::parse("a.b_c-D9").is_some());
        assert!(CollectionName::parse("").is_none());
        assert!(CollectionName::parse("has space").is_none());
        assert!(CollectionName::parse(&"x".repeat(33)).is_none());
        assert!(BsoId::parse("ok id ~!").is_some());
        assert!(BsoId::parse("").is_none());
        assert!(BsoId::parse("tab\t").is_none());
        assert!(BsoId::parse("é").is_none());
        assert!(BsoId::parse(&"x".repeat(65)).is_none());
    }

    #[test]
    fn fields_parse_into_keep_reset_set() {
        let i =
            input(json!({"id": "a", "payload": "p", "sortindex": null, "modified": 5})).unwrap();
        assert_eq!(i.payload, Patch::Set("p".into()));
        assert_eq!(i.sortindex, Patch::Reset);
        assert_eq!(i.ttl, Patch::Keep);
    }

    #[test]
    fn bad_fields_are_refused_with_a_reason() {
        for bad in [
            json!({"sortindex": 1_000_000_000}),
            json!({"sortindex": "1"}),
            json!({"sortindex": 1.5}),
            json!({"ttl": -1}),
            json!({"ttl": 1_000_000_000}),
            json!({"payload": 5}),
            json!({"other": 1}),
        ] {
            assert!(input(bad.clone()).is_err(), "{bad}");
        }
        assert_eq!(input(json!({"x": 1})).unwrap_err().0, "unknown field x");
    }

    #[test]
    fn apply_keeps_absent_fields_and_resets_nulls() {
        let t1 = SyncTimestamp::from_millis(1_000);
        let t2 = SyncTimestamp::from_millis(2_000);
        let first = input(json!({"payload": "p", "sortindex": 5, "ttl": 100})).unwrap();
        let stored = apply(None, &first, WriteTime::at(t1));
        assert_eq!(stored.expiry, t1.plus_seconds(100));

        let ttl_only = input(json!({"ttl": 200})).unwrap();
        let touched = apply(Some(&stored), &ttl_only, WriteTime::at(t2));
        assert_eq!(touched.payload, "p");
        assert_eq!(touched.sortindex, Some(5));
        assert_eq!(touched.modified, t1, "a ttl-only write keeps modified");
        assert_eq!(touched.expiry, t2.plus_seconds(200));

        let reset = input(json!({"sortindex": null})).unwrap();
        let r = apply(Some(&stored), &reset, WriteTime::at(t2));
        assert_eq!(r.sortindex, None);
        assert_eq!(r.modified, t2);
    }

    #[test]
    fn an_expired_bso_counts_as_absent() {
        let t1 = SyncTimestamp::from_millis(1_000);
        let stored = apply(
            None,
            &input(json!({"payload": "old", "ttl": 1})).unwrap(),
            WriteTime::at(t1),
        );
        let later = t1.plus_seconds(5);
        let r = apply(
            Some(&stored),
            &input(json!({"ttl": 10})).unwrap(),
            WriteTime::at(later),
        );
        assert_eq!(r.payload, "");
        assert_eq!(r.modified, later);
    }

    #[test]
    fn batched_writes_of_one_id_combine() {
        let a = input(json!({"payload": "p", "sortindex": 1})).unwrap();
        let b = input(json!({"sortindex": 2, "ttl": null})).unwrap();
        let c = a.then(b);
        assert_eq!(c.payload, Patch::Set("p".into()));
        assert_eq!(c.sortindex, Patch::Set(2));
        assert_eq!(c.ttl, Patch::Reset);
        let folded = fold([
            input(json!({"payload": "p"})).unwrap(),
            input(json!({"ttl": 5})).unwrap(),
        ]);
        assert_eq!(folded.len(), 1);
        assert_eq!(folded[0].ttl, Patch::Set(5));
    }

    #[test]
    fn staged_json_reads_back_as_the_same_write() {
        let original = input(json!({"payload": "p", "sortindex": null})).unwrap();
        let json = original.to_json();
        let back = parse_bso(json.as_object().unwrap(), original.id.clone()).unwrap();
        assert_eq!(back, original);
    }
}
