//! The tokenserver over real HTTP: a real server per test on a random
//! loopback port with a fresh database of its own (on the backend
//! `SYNC_TEST_BACKEND` names: sqlite, postgres or mysql), a local FxA
//! stand-in, and tokens checked with the storage nodes' own code.
//! `TEST_LOG=1` shows logs.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abandoned;
mod access;
mod errors;
mod events;
mod nodes;
mod oauth;
mod outage;
mod purge;
mod revocations;
mod schema;
mod success;
mod support;
mod users;
