//! How a tokenserver tells a storage node that tokens it minted no longer
//! hold (ADR 0012): a HAWK-signed `POST /__revocations__` carrying a
//! [`Notice`], signed with a token the tokenserver mints for
//! [`TOKENSERVER_UID`] on that node, so only a holder of the master secret
//! can revoke, and a notice cannot be replayed.

use serde::{Deserialize, Serialize};

/// Where a node takes notices.
pub const PATH: &str = "/__revocations__";

/// The uid of the tokens notices are signed with. No user has it (uids
/// start at 1), and a node serves no storage to it.
pub const TOKENSERVER_UID: u64 = 0;

/// Most uids in one notice: a node reads at most this many per request.
pub const MAX_UIDS: usize = 1_000;

/// What a node refuses from now on. Applying a notice twice, or an older
/// one after a newer, changes nothing: uids are only added, epochs only
/// rise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The node URL the refused tokens name (as in their `node` field).
    pub node: String,
    /// Tokens for `node` minted at a smaller `node_epoch` are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Every token of these uids is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uids: Vec<u64>,
    /// Unix seconds by which every token this notice refuses has expired:
    /// the node may forget the uids then.
    pub until: u64,
}

/// A node's answer to a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// Uids the notice named.
    pub uids: u64,
}
