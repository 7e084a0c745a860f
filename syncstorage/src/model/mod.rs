//! The protocol's data model and rules, free of HTTP and SQL, shared by every
//! storage backend.

pub mod bso;
pub mod limits;
pub mod paging;
pub mod post;
pub mod precondition;
pub mod revocation;
pub mod timestamp;
