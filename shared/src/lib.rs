//! Protocol types used by more than one Countersign crate.
//!
//! Only data shapes live here (serde, nothing heavier): the OAuth / CIBA messages the
//! server speaks, their error codes, and the discovery document. Behaviour belongs in the
//! crates that use them.

pub mod authorization;
pub mod ciba;
pub mod discovery;
pub mod dpop;
pub mod oauth;

pub use ciba::{BackchannelAuthResponse, DeliveryMode, PingNotification, TokenResponse};
pub use oauth::{OAuthError, OAuthErrorCode};
