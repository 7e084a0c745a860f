//! Test support shared by the suites and the all-in-one's end-to-end test:
//! a local FxA stand-in and a HAWK-signing Sync client.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod fxa;
pub mod sync_client;
