//! What the tokenserver and the storage nodes share.

/// What every binary's `main` shares: settings, logging, exit codes.
pub mod cli;
/// Loading settings from defaults, a TOML file and `SYNC_` variables.
pub mod config;
/// The database URL setting and backend selection by scheme.
pub mod db_url;
/// What a failed database call means, for every backend.
pub mod failure;
/// HAWK request verification with replay protection.
pub mod hawk;
/// The wire format of live migration between storage nodes.
pub mod migration;
/// Connecting to MySQL/MariaDB and classifying its errors, for both services.
#[cfg(feature = "mysql")]
pub mod mysql;
/// The Dockerflow endpoints both services share.
pub mod ops;
/// Connecting to PostgreSQL and classifying its errors, for both services.
#[cfg(feature = "postgres")]
pub mod postgres;
/// The notice a tokenserver sends a storage node to refuse old tokens.
pub mod revocation;
/// A redacted string type for secrets.
pub mod secret;
/// Serving a router with graceful shutdown.
pub mod server;
/// Opening SQLite files and classifying their errors, for both services.
pub mod sqlite;
/// Work that is never cancelled half-way (transactions).
pub mod task;
/// Logging set-up.
pub mod telemetry;
/// Tokenlib-compatible tokens and derived secrets.
pub mod token;
