//! Everything about reaching upstreams: pre-built peers and spawned upstream processes.

pub mod peer;
pub mod spawn;
