//! The approval protocol between the server and a human's wallet: what the wallet is
//! shown (a [`Transaction`], inside a server-signed request object), what it signs back
//! (an [`ApprovalClaims`] JWS by the device key), and the one function both sides use to
//! bind the two: [`transaction_hash`], SHA-256 over the RFC 8785 canonical JSON of the
//! transaction. Because the server recomputes the hash from its own records when the
//! approval arrives, the human can only approve exactly what they were shown.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `typ` of the server-signed request object the wallet displays.
pub const REQUEST_OBJECT_TYP: &str = "countersign-request+jwt";
/// `typ` of the wallet's signed decision.
pub const APPROVAL_TYP: &str = "countersign-approval+jwt";
/// `typ` of the proof a wallet sends with every API call (RFC 9449 shape).
pub const WALLET_PROOF_TYP: &str = "dpop+jwt";
/// The header carrying that proof.
pub const WALLET_PROOF_HEADER: &str = "DPoP";
/// URI scheme of enrollment invitations: `countersign://enroll?server=...&invitation=...`.
pub const ENROLL_URI_PREFIX: &str = "countersign://enroll?";

/// The agent asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentSummary {
    pub client_id: String,
    pub name: String,
    /// The human who owns the agent (subject).
    pub owner: String,
}

/// Everything the human is asked to approve. Field order does not matter (the hash is
/// over canonical JSON); absent values are `null`, never omitted, so both sides hash the
/// same document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transaction {
    pub request_id: String,
    pub agent: AgentSummary,
    /// The human the request is routed to (subject).
    pub approver: String,
    /// The action type (`authorization_details[0].type`), if any.
    pub action: Option<String>,
    /// RFC 9396 `authorization_details` exactly as the agent sent them.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub authorization_details: Option<Value>,
    pub binding_message: Option<String>,
    pub scope: String,
    pub task_id: Option<String>,
    /// Unix seconds: when the agent asked, and until when the request can be decided.
    pub requested_at: i64,
    pub expires_at: i64,
    /// How long the credential will be valid once approved.
    pub credential_validity_secs: u64,
    /// Why a human must decide (the policy's reason), when the policy gave one.
    pub policy_reason: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub risk_signals: Vec<Value>,
}

/// Claims of the server-signed request object (`typ: countersign-request+jwt`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestObjectClaims {
    pub iss: String,
    /// The device it was made for.
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub transaction: Transaction,
    /// [`transaction_hash`] of `transaction`, so the wallet can check it computes the same.
    pub transaction_hash: String,
    /// WebAuthn `PublicKeyCredentialRequestOptions` (JSON) for the passkey assertion that
    /// confirms this decision; its challenge is single use and bound to this request.
    pub webauthn: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionKind {
    Approve,
    Deny,
}

/// Claims of the wallet's decision (`typ: countersign-approval+jwt`), signed by the
/// device key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalClaims {
    pub request_id: String,
    pub transaction_hash: String,
    pub decision: DecisionKind,
    pub iat: i64,
    pub jti: String,
    /// The WebAuthn assertion (`AuthenticationResponseJSON`) made with user verification
    /// on the challenge from the request object.
    pub assertion: Value,
    /// The human's reason for a denial, when they gave one (signed with the decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

// Messages of the wallet API (`/wallet/v1`).

/// Step 1 of enrollment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BeginEnrollment {
    /// The `invitation` value of the enrollment URI.
    pub invitation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollmentChallenge {
    pub subject: String,
    pub name: String,
    /// The WebAuthn relying party ID the passkey will be bound to.
    pub rp_id: String,
    /// `PublicKeyCredentialCreationOptionsJSON` for the passkey (user verification required).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub webauthn: Value,
}

/// Step 2 of enrollment. The request must carry a `DPoP` proof signed by `device_key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompleteEnrollment {
    pub invitation: String,
    /// The device key's public JWK (P-256), generated in the platform keystore.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub device_key: Value,
    /// `ios`, `android` or `desktop`.
    pub platform: String,
    /// A name the human recognises ("Alice's iPhone").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `apns`, `fcm`, `live` (server-sent events) or `none`.
    pub push_channel: String,
    /// The APNs device token or FCM registration token (required for those channels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_token: Option<String>,
    /// Key attestation the platform offers (Android key attestation chain, App Attest), as
    /// given; recorded, not yet verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<String>,
    /// The passkey's `RegistrationResponseJSON`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub passkey: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrolledDevice {
    pub device_id: String,
    pub subject: String,
    pub issuer: String,
    /// The server's signing keys, which the wallet pins to check request objects.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub jwks: Value,
}

/// A request waiting for the human, as the wallet lists it (no amounts, vendors or
/// messages: those come in the signed request object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingRequest {
    pub id: String,
    pub agent: String,
    pub action: Option<String>,
    /// Unix seconds.
    pub requested_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DisplayedRequest {
    /// Compact JWS (`typ: countersign-request+jwt`) by the server's key, with the
    /// transaction, its hash and the passkey challenge.
    pub request_object: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Compact JWS (`typ: countersign-approval+jwt`) by the device key.
    pub approval: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionRecorded {
    pub request_id: String,
    /// `approved` or `denied`.
    pub status: String,
}

/// The transaction's hash: base64url (no padding) of SHA-256 over its RFC 8785 (JCS)
/// canonical JSON.
pub fn transaction_hash(transaction: &Transaction) -> Result<String, String> {
    let canonical = serde_json_canonicalizer::to_vec(transaction).map_err(|e| e.to_string())?;
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(&canonical)))
}

/// The parts of an enrollment invitation URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentUri {
    /// The server's issuer URL.
    pub server: String,
    pub invitation: String,
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl EnrollmentUri {
    pub fn to_uri(&self) -> String {
        format!(
            "{ENROLL_URI_PREFIX}server={}&invitation={}",
            percent_encode(&self.server),
            percent_encode(&self.invitation)
        )
    }

    pub fn parse(uri: &str) -> Result<Self, String> {
        let query = uri
            .strip_prefix(ENROLL_URI_PREFIX)
            .ok_or_else(|| format!("an enrollment URI starts with {ENROLL_URI_PREFIX}"))?;
        let (mut server, mut invitation) = (None, None);
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value).ok_or("the URI is not validly percent-encoded")?;
            match key {
                "server" => server = Some(value),
                "invitation" => invitation = Some(value),
                _ => {}
            }
        }
        let server = server
            .filter(|s| s.starts_with("https://") || s.starts_with("http://"))
            .ok_or("the URI names no http(s) server")?;
        let invitation = invitation
            .filter(|i| !i.is_empty())
            .ok_or("the URI carries no invitation")?;
        Ok(Self { server, invitation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn transaction() -> Transaction {
        Transaction {
            request_id: "r1".into(),
            agent: AgentSummary {
                client_id: "procurement".into(),
                name: "Procurement".into(),
                owner: "alice".into(),
            },
            approver: "alice".into(),
            action: Some("purchase_order".into()),
            authorization_details: Some(
                json!([{"type": "purchase_order", "vendor": "Acme", "amount": 1200, "currency": "USD"}]),
            ),
            binding_message: Some("W4SCT".into()),
            scope: "openid".into(),
            task_id: None,
            requested_at: 1,
            expires_at: 301,
            credential_validity_secs: 900,
            policy_reason: None,
            risk_signals: vec![],
        }
    }

    #[test]
    fn the_hash_is_over_canonical_json_and_changes_with_any_field() {
        let t = transaction();
        let h = transaction_hash(&t).unwrap();
        assert_eq!(h.len(), 43);
        // Key order in the details does not matter (canonical JSON sorts keys)...
        let mut reordered = t.clone();
        reordered.authorization_details = Some(
            json!([{"currency": "USD", "amount": 1200, "vendor": "Acme", "type": "purchase_order"}]),
        );
        assert_eq!(transaction_hash(&reordered).unwrap(), h);
        // ...but every value does.
        let mut more = t.clone();
        more.authorization_details = Some(
            json!([{"type": "purchase_order", "vendor": "Acme", "amount": 1201, "currency": "USD"}]),
        );
        assert_ne!(transaction_hash(&more).unwrap(), h);
        let mut other = t;
        other.request_id = "r2".into();
        assert_ne!(transaction_hash(&other).unwrap(), h);
    }

    #[test]
    fn enrollment_uris_round_trip_and_bad_ones_are_refused() {
        let uri = EnrollmentUri {
            server: "https://auth.example.com:8443".into(),
            invitation: "abc-_123".into(),
        };
        let text = uri.to_uri();
        assert_eq!(
            text,
            "countersign://enroll?server=https%3A%2F%2Fauth.example.com%3A8443&invitation=abc-_123"
        );
        assert_eq!(EnrollmentUri::parse(&text).unwrap(), uri);
        for bad in [
            "https://x",
            "countersign://enroll?invitation=a",
            "countersign://enroll?server=ftp%3A%2F%2Fx&invitation=a",
            "countersign://enroll?server=https%3A%2F%2Fx",
            "countersign://enroll?server=%ZZ&invitation=a",
        ] {
            assert!(EnrollmentUri::parse(bad).is_err(), "{bad}");
        }
    }
}
