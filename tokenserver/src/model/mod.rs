//! The tokenserver's protocol rules as pure code: parsing the client's key
//! headers, the user-record rules, and the node allocation policy.

pub mod access;
pub mod health;
pub mod keys;
pub mod node;
pub mod user;
pub mod user_file;
