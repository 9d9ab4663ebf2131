//! Local stand-ins for the clouds the server talks to, speaking their real wire protocol.

pub mod apns;
pub mod fcm;
pub mod ssf_poll;
pub mod witness;

use countersign_jose::SigningKeyPair;
use countersign_server::config::{ApnsConfig, FcmConfig};
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};

pub const APNS_KEY_ID: &str = "ABCDE12345";
pub const APNS_TEAM: &str = "TEAM123456";
pub const APNS_TOPIC: &str = "com.example.countersign";

/// An APNs signing key as Apple hands it out: PKCS#8 PEM (a `.p8` file's content).
pub fn apns_key_pem(key: &SigningKeyPair) -> String {
    p256::SecretKey::from_slice(&key.scalar_bytes())
        .expect("P-256 scalar")
        .to_pkcs8_pem(LineEnding::LF)
        .expect("PEM")
        .to_string()
}

/// Server configuration for the fake APNs, with the team key `key`.
pub fn apns_config(fake: &apns::FakeApns, key: &SigningKeyPair) -> ApnsConfig {
    ApnsConfig {
        key_file: None,
        key: Some(apns_key_pem(key)),
        key_id: APNS_KEY_ID.into(),
        team_id: APNS_TEAM.into(),
        topic: APNS_TOPIC.into(),
        environment: "sandbox".into(),
        base_url: Some(fake.url()),
        ca_file: Some(fake.ca_file.clone()),
    }
}

/// Server configuration for the fake FCM.
pub fn fcm_config(fake: &fcm::FakeFcm) -> FcmConfig {
    FcmConfig {
        service_account_file: None,
        service_account: Some(fake.service_account.clone()),
        project_id: None,
        base_url: Some(fake.url()),
    }
}
