//! The wire format of live migration between storage nodes (ADR 0013): the
//! tokenserver reads a user's data from one node and writes it to another
//! under `/__migration__/{uid}`, signed as for revocations (a token for
//! [`crate::revocation::TOKENSERVER_UID`] on that node). Times are
//! milliseconds since the epoch, as the nodes store them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a node serves migrations.
pub const PREFIX: &str = "/__migration__";

/// Most records per read or write.
pub const MAX_RECORDS: usize = 1_000;

/// Payload bytes past which a page of records ends (one record alone may
/// be larger).
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// A user's timestamps: the storage's, and each collection's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    pub modified: i64,
    pub collections: BTreeMap<String, i64>,
}

/// One stored record, everything a client can observe of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub modified: i64,
    pub payload: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sortindex: Option<i32>,
    pub expiry: i64,
}

/// A page of a collection's live records, in id order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Records {
    pub records: Vec<Record>,
}

/// Records to store in a collection whose timestamp becomes `modified`;
/// `replace` drops what the collection held first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    pub modified: i64,
    pub replace: bool,
    pub records: Vec<Record>,
}

/// The end of an import: the storage's timestamp.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finish {
    pub modified: i64,
}

/// Writes of the user are refused (503) for `seconds` from now, by the
/// node's own clock (0 lifts the fence).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    pub seconds: u64,
}
