//! The Countersign authorization server: an OpenID CIBA provider that decides agents'
//! actions, records human approvals and issues credentials for them.
//!
//! Layout: `http` (axum routers, extractors, the one error mapping) calls the domain
//! modules (`ciba`, `oidc`, `credentials`, `approvals`, `directory`, `scim`, `admin`), which call
//! `store`. Domain code does not know about axum or sqlx.

pub mod admin;
pub mod approvals;
pub mod audit;
pub mod authzen;
pub mod ciba;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod directory;
pub mod flows;
pub mod fuzzing;
pub mod gateway;
pub mod housekeeping;
pub mod http;
pub mod ids;
pub mod limits;
pub mod notifications;
pub mod oidc;
pub mod paths;
pub mod policy;
pub mod push;
pub mod scim;
pub mod secrets;
pub mod server;
pub mod signals;
pub mod state;
pub mod store;
