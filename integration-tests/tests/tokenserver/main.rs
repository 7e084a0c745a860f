//! The tokenserver over real HTTP: a real server per test on a random
//! loopback port with its own SQLite database, a local FxA stand-in, and
//! tokens checked with the storage nodes' own code. `TEST_LOG=1` shows logs.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod errors;
mod events;
mod nodes;
mod oauth;
mod purge;
mod success;
mod support;
mod users;
