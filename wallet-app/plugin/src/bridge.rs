//! The messages that cross the mobile bridge, defined once here. The Swift
//! (`ios/Sources/CountersignPlugin.swift`) and Kotlin
//! (`android/src/main/java/CountersignPlugin.kt`) sides read and write exactly these
//! camelCase fields; the tests below pin the JSON so a rename on this side cannot pass
//! unnoticed. Bytes travel as base64url without padding.

use serde::{Deserialize, Serialize};

/// Names of the native commands, as registered by the Swift and Kotlin plugins.
pub mod command {
    pub const GENERATE_KEY: &str = "generateKey";
    pub const PUBLIC_KEY: &str = "publicKey";
    pub const SIGN: &str = "sign";
    pub const DELETE_KEY: &str = "deleteKey";
    pub const ATTESTATION: &str = "attestation";
    pub const CREATE_PASSKEY: &str = "createPasskey";
    pub const GET_PASSKEY: &str = "getPasskey";
    pub const STORAGE_GET: &str = "storageGet";
    pub const STORAGE_PUT: &str = "storagePut";
    pub const STORAGE_DELETE: &str = "storageDelete";
    pub const REGISTER_PUSH: &str = "registerPush";
    pub const SCAN_INVITATION: &str = "scanInvitation";
}

/// A key in the platform keystore, by alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAlias {
    pub alias: String,
}

/// Create a P-256 key: Secure Enclave with `.biometryCurrentSet`, or Android Keystore
/// (StrongBox, else TEE) with `setUserAuthenticationRequired`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateKey {
    pub alias: String,
    pub require_user_verification: bool,
}

/// A public key as a JWK (JSON object text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicJwk {
    pub jwk: String,
}

/// Sign `message` (base64url) with ES256 after the biometric prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sign {
    pub alias: String,
    pub message: String,
    /// What the biometric prompt says (the platform shows it).
    pub prompt: String,
}

/// An ES256 signature, raw `r || s` (64 bytes), base64url. Platforms that produce DER
/// (both do) convert before answering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signature {
    pub signature: String,
}

/// Key attestation where the platform offers it: the Android attestation certificate
/// chain (base64 DER, leaf first, comma-separated) or an App Attest object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attestation {
    pub attestation: Option<String>,
}

/// WebAuthn JSON in (`PublicKeyCredentialCreationOptionsJSON` or `...RequestOptionsJSON`)
/// for ASAuthorization / Credential Manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyOptions {
    pub options_json: String,
}

/// WebAuthn JSON out (`RegistrationResponseJSON` or `AuthenticationResponseJSON`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyResponse {
    pub response_json: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageKey {
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageValue {
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoragePut {
    pub key: String,
    pub value: String,
}

/// The device's push registration: `apns` or `fcm` and its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushRegistration {
    pub channel: String,
    pub token: Option<String>,
}

/// An enrollment link read from a QR code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScannedInvitation {
    pub uri: String,
}

/// What a native command answers when it fails: `cancelled` when the human dismissed the
/// biometric or passkey sheet, anything else a failure with the platform's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NativeError {
    pub code: Option<String>,
    pub message: String,
}

impl NativeError {
    pub const CANCELLED: &'static str = "cancelled";

    pub fn cancelled(&self) -> bool {
        self.code.as_deref() == Some(Self::CANCELLED)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{Value, json};

    fn wire<T: Serialize>(v: &T) -> Value {
        serde_json::to_value(v).unwrap()
    }

    /// The JSON the Swift and Kotlin plugins parse and produce, field by field.
    #[test]
    fn payloads_are_the_camel_case_json_the_native_plugins_read() {
        assert_eq!(
            wire(&GenerateKey {
                alias: "countersign.device".into(),
                require_user_verification: true
            }),
            json!({"alias": "countersign.device", "requireUserVerification": true})
        );
        assert_eq!(
            wire(&Sign {
                alias: "a".into(),
                message: "bWVzc2FnZQ".into(),
                prompt: "Approve".into()
            }),
            json!({"alias": "a", "message": "bWVzc2FnZQ", "prompt": "Approve"})
        );
        assert_eq!(
            wire(&PasskeyOptions {
                options_json: "{}".into()
            }),
            json!({"optionsJson": "{}"})
        );
        assert_eq!(
            wire(&StoragePut {
                key: "k".into(),
                value: "v".into()
            }),
            json!({"key": "k", "value": "v"})
        );
        assert_eq!(wire(&KeyAlias { alias: "a".into() }), json!({"alias": "a"}));
        assert_eq!(wire(&StorageKey { key: "k".into() }), json!({"key": "k"}));
    }

    #[test]
    fn answers_parse_from_what_the_native_plugins_send() {
        let jwk: PublicJwk = serde_json::from_value(json!({"jwk": "{\"kty\":\"EC\"}"})).unwrap();
        assert_eq!(jwk.jwk, r#"{"kty":"EC"}"#);
        let sig: Signature = serde_json::from_value(json!({"signature": "AAAA"})).unwrap();
        assert_eq!(sig.signature, "AAAA");
        let response: PasskeyResponse =
            serde_json::from_value(json!({"responseJson": "{}"})).unwrap();
        assert_eq!(response.response_json, "{}");
        let missing: StorageValue = serde_json::from_value(json!({"value": null})).unwrap();
        assert_eq!(missing.value, None);
        let push: PushRegistration =
            serde_json::from_value(json!({"channel": "fcm", "token": "t"})).unwrap();
        assert_eq!(push.channel, "fcm");
        let none: Attestation = serde_json::from_value(json!({"attestation": null})).unwrap();
        assert_eq!(none.attestation, None);
        let scanned: ScannedInvitation =
            serde_json::from_value(json!({"uri": "countersign://enroll?x"})).unwrap();
        assert_eq!(scanned.uri, "countersign://enroll?x");
        let cancelled: NativeError =
            serde_json::from_value(json!({"code": "cancelled", "message": "user"})).unwrap();
        assert!(cancelled.cancelled());
        let failed: NativeError = serde_json::from_value(json!({"message": "no key"})).unwrap();
        assert!(!failed.cancelled());
        // Missing required fields are refused, not defaulted.
        assert!(serde_json::from_value::<Signature>(json!({})).is_err());
    }
}
