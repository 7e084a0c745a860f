//! The `syncserver` binary as a child process, for the tests that need a
//! process of its own (a restart, an open-files limit, its memory).

#![allow(unused_imports)]

pub use integration_tests::process::{key_id, memory_mib, reset_peak, token, Server};

/// The binary Cargo built for these tests.
pub const SYNCSERVER: &str = env!("CARGO_BIN_EXE_syncserver");
