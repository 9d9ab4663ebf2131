//! The CIBA authentication-request state machine (OpenID CIBA Core 1.0): accepting
//! backchannel requests, the token endpoint grant, and client notifications (ping / push).

pub mod authorize;
pub mod client_credentials;
pub mod details;
pub mod error;
mod hint;
pub mod renewal;
pub mod request;
pub mod token;

pub use error::CibaError;
