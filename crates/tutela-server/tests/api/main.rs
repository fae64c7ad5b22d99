//! The API test binary: every test starts the real server on a random port with a fresh
//! data directory and talks HTTP. `TUTELA_TEST_DB=postgres` runs the same tests on a
//! fresh PostgreSQL database each.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation should panic with context"
)]

mod helpers;

mod audit;
mod bad_input;
mod consents;
mod contact;
mod cookies;
mod foundation;
mod fulfil;
mod fuzz;
mod grants;
mod isolation;
mod least_privilege;
mod lifecycle;
mod receiver;
mod records;
mod redact;
mod requests;
mod sharing;
mod tenants;
mod tls;
