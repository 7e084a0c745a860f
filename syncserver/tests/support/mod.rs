//! The `syncserver` binary as a child process, for the tests that need a
//! process of its own (a restart, an open-files limit, its memory).

#![allow(unused_imports)]

pub use integration_tests::process::{key_id, memory_mib, reset_peak, token, Server};

/// A command's standard output, which must have succeeded.
#[allow(dead_code)]
pub fn succeeded(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The binary Cargo built for these tests.
pub const SYNCSERVER: &str = env!("CARGO_BIN_EXE_syncserver");
