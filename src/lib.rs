//! mcpgate: an OAuth gateway for MCP servers, on Pingora. The README's Development section
//! is the map of these modules.

#[macro_use]
pub mod respond;
pub mod auth;
pub mod banner;
pub mod config;
pub mod connections;
pub mod control;
pub mod cors;
pub mod fuzzing;
pub mod gateway;
pub mod json;
pub mod logging;
pub mod mcp;
pub mod metrics;
pub mod oauth;
pub mod route;
pub mod routing;
pub mod server;
pub mod snapshot;
pub mod state;
pub mod target;
pub mod upstream;
pub mod wellknown;
