//! Verifying Firefox Accounts: OAuth access tokens (a local JWT check, or
//! FxA's verify endpoint) and the signed events of FxA's webhook.

pub mod events;
pub mod keys;
pub mod oauth;
