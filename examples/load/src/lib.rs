//! Load, outage and soak tooling for the twofactor demo server (`examples/server`).
//!
//! The `twofactor-load` binary drives users through the demo's API over HTTP, as browsers
//! would, and prints throughput and latency per step; see examples/load/README.md. The library
//! is what the binary and the outage test (tests/outage.rs) share:
//!
//! - [`server`]: start `twofactor-server` processes, fresh databases, read resident memory;
//! - [`http`]: a JSON client with a deadline on every request;
//! - [`flow`]: one user's steps (sign-up, setup, login, second step), codes computed with the
//!   `twofactor` crate as an authenticator app would;
//! - [`run`]: the headline scenario (N users, every second step at once, then replayed);
//! - [`floor`]: the second step's SQL statements run bare through sqlx, for comparison;
//! - [`soak`]: a steady load for minutes while sampling the server's memory;
//! - [`burst`]: many password logins at once, with the server's peak memory;
//! - [`stats`]: percentiles and status counts.
//!
//! Test data only: the passwords and codes here are generated per run and never logged.

pub mod burst;
pub mod floor;
pub mod flow;
pub mod http;
pub mod run;
pub mod server;
pub mod soak;
pub mod stats;
