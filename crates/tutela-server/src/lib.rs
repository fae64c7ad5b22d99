//! tutela-server: the HTTP face of tutela.
//!
//! [`Application::build`] is shared by `tutela serve` and the integration tests: it opens
//! the service layer's state (`tutela_app::startup::open_state`), binds the listener and
//! assembles the router. Only this crate knows HTTP and JSON: a handler parses the
//! request into `tutela-core` types, calls the service layer (`tutela-app`), and maps the
//! result into a response DTO; every failure leaves through [`error::ApiError`].

pub mod api;
pub mod app;
pub mod auth;
pub mod error;

pub use app::Application;
pub use tutela_app::{AppState, Config};
