//! tutela-server: the HTTP face of tutela.
//!
//! [`Application::build`] is shared by `tutela serve` and the integration tests: it loads
//! the policy, opens the store, binds the listener and assembles the router. Only this
//! crate knows HTTP and JSON; request bodies are DTOs that convert into `tutela-core`
//! types, and every failure leaves through [`error::ApiError`].

pub mod api;
pub mod app;
pub mod audit;
pub mod audit_writer;
pub mod auth;
pub mod cache;
pub mod config;
pub mod demo;
pub mod error;
pub mod ids;
pub mod metrics;
pub mod outbox;
pub mod retention;
pub mod seed;
pub mod state;
pub mod tokens;
pub mod vault;
pub mod witness;

pub use app::Application;
pub use config::Config;
pub use state::AppState;
