//! A deployment as operators run it: a `tokenserver` process and storage
//! node processes (`syncstorage`), each on its own database (on the backend
//! `SYNC_TEST_BACKEND` names), driven over HTTP and the operator's command
//! line.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod drill;
mod firefox;
mod health;
mod migration;
mod revocations;
mod user_file;
