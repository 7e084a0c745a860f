//! Test support shared by the suites and the all-in-one's end-to-end test:
//! a local FxA stand-in, a real Firefox driven headless, a HAWK-signing Sync
//! client, server binaries as child processes, deployments of several
//! (`cluster`) and the operator's drill on them, a closed port for
//! "unreachable" cases, and what the load generators share.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bench;
pub mod cluster;
pub mod db;
pub mod drill;
pub mod firefox;
pub mod fxa;
pub mod mozilla;
pub mod otlp;
pub mod pages;
pub mod process;
pub mod prometheus;
pub mod proxy;
pub mod raw;
pub mod sync_client;

/// A loopback URL nothing listens on (a port bound, then freed).
pub fn unreachable_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// A loopback port free a moment ago (bound, then freed).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}
