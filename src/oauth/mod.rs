//! What the gateway answers itself as part of OAuth: today the protected resource metadata
//! (RFC 9728) that a route's `401` challenge points to.

pub mod metadata;
