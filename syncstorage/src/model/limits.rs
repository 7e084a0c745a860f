//! Size and count limits: configured once, enforced by the API layer and
//! reported verbatim by `/info/configuration`.

use serde::{Deserialize, Serialize};

/// Protocol limits (defaults from `shared/spec/syncstorage-notes.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Most BSOs stored by one POST; the rest come back as `"retry bso"`.
    pub max_post_records: u64,
    /// Most payload bytes stored by one POST; the rest come back as `"retry bytes"`.
    pub max_post_bytes: u64,
    /// Largest single payload, in bytes.
    pub max_record_payload_bytes: u64,
    /// Largest request body; larger gets 413. Default: `max_post_bytes` + 4 KiB.
    pub max_request_bytes: Option<u64>,
    /// Most BSOs in one batch (and most returned by one GET).
    pub max_total_records: u64,
    /// Most payload bytes in one batch.
    pub max_total_bytes: u64,
    /// Most ids in an `ids=` list.
    pub max_ids: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_post_records: 100,
            max_post_bytes: 2_621_440,
            max_record_payload_bytes: 2_621_440,
            max_request_bytes: None,
            max_total_records: 10_000,
            max_total_bytes: 262_144_000,
            max_ids: 100,
        }
    }
}

/// The body of `/info/configuration`.
#[derive(Debug, Serialize)]
pub struct ServerConfiguration {
    pub max_request_bytes: u64,
    pub max_post_records: u64,
    pub max_post_bytes: u64,
    pub max_total_records: u64,
    pub max_total_bytes: u64,
    pub max_record_payload_bytes: u64,
}

impl Limits {
    pub fn max_request_bytes(&self) -> u64 {
        self.max_request_bytes
            .unwrap_or(self.max_post_bytes.saturating_add(4_096))
    }

    pub fn server_configuration(&self) -> ServerConfiguration {
        ServerConfiguration {
            max_request_bytes: self.max_request_bytes(),
            max_post_records: self.max_post_records,
            max_post_bytes: self.max_post_bytes,
            max_total_records: self.max_total_records,
            max_total_bytes: self.max_total_bytes,
            max_record_payload_bytes: self.max_record_payload_bytes,
        }
    }

    /// Sentences for every limit that cannot work.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let positive = [
            ("max_post_records", self.max_post_records),
            ("max_post_bytes", self.max_post_bytes),
            ("max_record_payload_bytes", self.max_record_payload_bytes),
            ("max_request_bytes", self.max_request_bytes()),
            ("max_total_records", self.max_total_records),
            ("max_total_bytes", self.max_total_bytes),
            ("max_ids", self.max_ids),
        ];
        for (name, value) in positive {
            if value == 0 {
                problems.push(format!("syncstorage.limits.{name} must be greater than 0"));
            }
        }
        problems
    }
}
