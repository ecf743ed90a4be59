//! End-to-end tests of the mock server over real sockets.

mod apis;
mod auth;
mod bad;
mod client;
mod faults;
mod generated;
mod github;
mod hostile;
mod jsonserver;
mod rate_limit;
mod server;
mod slack;
mod zendesk;
