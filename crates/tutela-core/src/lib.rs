//! tutela-core: the domain of a personal-information protection engine.
//!
//! Everything here is pure: validated domain types (an invalid id, category or clause
//! cannot exist as a value), the policy model compiled from `policy/statement.toml`, and
//! the decision and state-machine functions. No IO, no async, no wall clock: time arrives
//! as an argument or through the [`clock::Clock`] trait held by the edges.

#[macro_use]
mod macros;

pub mod actor;
pub mod anonymize;
pub mod clause;
pub mod clock;
pub mod consent;
pub mod contact;
pub mod decide;
pub mod delivery;
pub mod erasure;
pub mod grant;
pub mod ids;
pub mod lifecycle;
pub mod lookup;
pub mod policy;
pub mod request;
pub mod tenant;
pub mod transfer;
pub mod vocab;

pub use actor::{Actor, Role};
pub use clause::Clause;
pub use clock::Clock;
pub use ids::{SubjectId, TenantId, TokenId};
pub use policy::Policy;
pub use vocab::{Category, Country, Purpose, Region, ServiceId};
