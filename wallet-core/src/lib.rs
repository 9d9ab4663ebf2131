//! The wallet's domain core, shared by the Tauri app, native shells and the CLI wallet.
//!
//! The device key never leaves the platform keystore: the platform (Secure Enclave,
//! Android Keystore/StrongBox, or [`software`] here for desktops and tests) signs by key
//! alias; Rust builds and checks the JOSE structures around the raw signature. Passkeys
//! come from the platform's WebAuthn API, state from its secure storage
//! ([`platform`]). [`wallet::Wallet`] enrolls, lists and shows requests (verifying the
//! server's signature first) and sends the human's decision. [`ffi`] exposes it to Swift,
//! Kotlin and Python with uniffi; nothing else in this crate knows about uniffi.

pub mod client;
pub mod device_key;
pub mod ffi;
pub mod history;
pub mod platform;
pub mod software;
pub mod wallet;

pub use device_key::DeviceKey;
pub use history::DecisionEntry;
pub use platform::{Keystore, KeystoreError, PasskeyAuthenticator, PasskeyError, SecureStorage};
pub use wallet::{
    EnrollOptions, Enrollment, EnrollmentOffer, LiveEvent, Platform, ShownRequest, Wallet,
};

uniffi::setup_scaffolding!();

/// Why a wallet operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("this wallet is not enrolled")]
    NotEnrolled,
    #[error("{0}")]
    Invalid(String),
    /// The server answered with an error (its problem `detail`).
    #[error("the server refused ({status}): {detail}")]
    Refused { status: u16, detail: String },
    /// The server could not be reached.
    #[error("network: {0}")]
    Network(String),
    /// The server's answer is not what the protocol requires (bad signature, wrong hash).
    #[error("{0}")]
    Protocol(String),
    /// The request expired before the decision reached the server; nothing was recorded.
    #[error("the request expired before it was decided; nothing was approved")]
    Expired,
    /// The request was decided already (another device or approver); this decision was
    /// not recorded.
    #[error("the request was already decided; this decision was not recorded")]
    AlreadyDecided,
    #[error(transparent)]
    Keystore(#[from] platform::KeystoreError),
    #[error(transparent)]
    Passkey(#[from] platform::PasskeyError),
    #[error(transparent)]
    Storage(#[from] platform::StorageError),
    #[error(transparent)]
    DeviceKey(#[from] device_key::DeviceKeyError),
}
