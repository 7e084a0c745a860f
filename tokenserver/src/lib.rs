//! The tokenserver: turns a Firefox Accounts identity into short-lived HAWK
//! credentials for one storage node (`shared/spec/tokenserver.md`).
//!
//! Not built yet: it has its own issue. Tokens are minted with
//! [`sync_common::token`], which the storage node already verifies.

pub use sync_common::token::TokenSecrets;
