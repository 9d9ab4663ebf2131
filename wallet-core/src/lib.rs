//! The wallet's domain core, shared by the Tauri app and native shells.
//!
//! This crate starts with the piece everything else stands on: device keys that never leave
//! the platform keystore. The platform (Secure Enclave, Android Keystore/StrongBox, or the
//! software keystore here for desktop and tests) signs by key alias; Rust builds and checks
//! the JOSE structures around the raw signature. Enrollment, request display and approval
//! signing arrive with the wallet issue.

pub mod device_key;
pub mod platform;

pub use device_key::DeviceKey;
pub use platform::{Keystore, KeystoreError, SoftwareKeystore};
