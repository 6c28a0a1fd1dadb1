//! What the gateway answers itself as part of OAuth: the protected resource metadata
//! (RFC 9728) a route's `401` points to, and in broker mode a whole authorization server.

pub mod cimd;
pub mod consent;
pub mod facade;
pub mod issued;
pub mod metadata;
pub mod passthrough;
pub mod redirect;
pub mod seal;
pub mod service;
