//! Protocol types used by more than one Countersign crate.
//!
//! Mostly data shapes (serde, nothing heavier): the OAuth / CIBA messages the server
//! speaks, their error codes, the discovery document, and the approval protocol between
//! server and wallet. Behaviour belongs in the crates that use them, except where two
//! sides must compute exactly the same thing (the approval's transaction hash).

pub mod approval;
pub mod authorization;
pub mod ciba;
pub mod decision;
pub mod discovery;
pub mod dpop;
pub mod oauth;
pub mod text;

pub use ciba::{BackchannelAuthResponse, DeliveryMode, PingNotification, TokenResponse};
pub use oauth::{OAuthError, OAuthErrorCode};
