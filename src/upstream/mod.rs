//! Everything about reaching upstreams: pre-built peers, spawned upstream processes, and the
//! credentials the upstream receives.

pub mod credential;
pub mod forwarded;
pub mod peer;
pub mod rewrite;
pub mod spawn;
