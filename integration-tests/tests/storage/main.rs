//! The storage node's conformance suite: real server, real HTTP, real HAWK.
//! `TEST_LOG=1` shows the server's logs.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abandoned;
mod auth;
mod batch;
mod bso;
mod collection;
mod concurrency;
mod info;
mod large;
mod outage;
mod paging;
mod preconditions;
mod protocol;
mod replay;
mod streaming;
mod support;
