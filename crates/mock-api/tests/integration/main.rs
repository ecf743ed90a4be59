//! End-to-end tests of the mock server over real sockets.

mod auth;
mod bad;
mod client;
mod faults;
mod generated;
mod jsonserver;
mod rate_limit;
mod server;
