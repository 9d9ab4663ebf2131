//! OpenID Connect plumbing: discovery, signing keys, client authentication, DPoP proofs.

pub mod client_auth;
pub mod discovery;
pub mod dpop;
pub mod jwt;
pub mod keys;
pub mod resource_auth;
pub mod resource_token;
