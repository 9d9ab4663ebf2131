//! The wallet: enrollment, listing what waits for the human, showing one request (only
//! after checking the server's signature over it and the transaction hash), and the
//! human's decision — a passkey assertion on the request's challenge plus a device-key
//! signature over the exact transaction shown.
//!
//! A decision can only be made on a request this wallet has shown: [`Wallet::show`]
//! keeps the verified request, and [`Wallet::decide`] signs that and nothing else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use countersign_jose::{JwkSet, UnverifiedJws};
use countersign_shared::approval::{
    APPROVAL_TYP, ApprovalClaims, BeginEnrollment, CompleteEnrollment, DecisionKind,
    DecisionRecorded, DecisionRequest, DisplayedRequest, EnrolledDevice, EnrollmentChallenge,
    EnrollmentUri, PendingRequest, REQUEST_OBJECT_TYP, RequestObjectClaims, Transaction,
    transaction_hash,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::WalletError;
use crate::client::ServerClient;
use crate::device_key::DeviceKey;
use crate::platform::{Keystore, PasskeyAuthenticator, SecureStorage};

/// The keystore alias of the device key.
pub const DEVICE_KEY_ALIAS: &str = "countersign.device";
const ENROLLMENT_KEY: &str = "enrollment";

/// What the live channel says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// Subscribed: from now on every new request is announced.
    Ready,
    /// A new request waits for this wallet's human.
    Request { request_id: String },
    /// Events were missed: list the pending requests again.
    Resync,
}

/// What the host platform provides.
#[derive(Clone)]
pub struct Platform {
    pub keystore: Arc<dyn Keystore>,
    pub passkeys: Arc<dyn PasskeyAuthenticator>,
    pub storage: Arc<dyn SecureStorage>,
}

/// This wallet's enrollment, persisted in secure storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    pub server: String,
    pub device_id: String,
    pub subject: String,
    pub name: String,
    pub rp_id: String,
    /// The server's signing keys, pinned at enrollment.
    pub jwks: JwkSet,
}

/// Platform and push details sent at enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollOptions {
    /// `ios`, `android` or `desktop`.
    pub platform: String,
    pub name: Option<String>,
    /// `apns`, `fcm`, `live` or `none`.
    pub push_channel: String,
    pub push_token: Option<String>,
}

/// A request as shown to the human, after the wallet verified it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownRequest {
    pub transaction: Transaction,
    pub transaction_hash: String,
    /// Passkey request options for the decision.
    webauthn: Value,
}

pub struct Wallet {
    platform: Platform,
    shown: Mutex<HashMap<String, ShownRequest>>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Wallet {
    pub fn new(platform: Platform) -> Self {
        Self {
            platform,
            shown: Mutex::new(HashMap::new()),
        }
    }

    fn device_key(&self) -> DeviceKey {
        DeviceKey::new(self.platform.keystore.clone(), DEVICE_KEY_ALIAS)
    }

    pub fn enrollment(&self) -> Result<Option<Enrollment>, WalletError> {
        match self.platform.storage.get(ENROLLMENT_KEY)? {
            Some(text) => Ok(Some(serde_json::from_str(&text).map_err(|e| {
                WalletError::Invalid(format!("stored enrollment is corrupt: {e}"))
            })?)),
            None => Ok(None),
        }
    }

    fn enrolled(&self) -> Result<Enrollment, WalletError> {
        self.enrollment()?.ok_or(WalletError::NotEnrolled)
    }

    fn save_enrollment(&self, enrollment: &Enrollment) -> Result<(), WalletError> {
        let text =
            serde_json::to_string(enrollment).map_err(|e| WalletError::Invalid(e.to_string()))?;
        Ok(self.platform.storage.put(ENROLLMENT_KEY, &text)?)
    }

    /// Redeems an enrollment invitation URI: creates the device key and a passkey, and
    /// registers both with the server.
    pub fn enroll(&self, uri: &str, options: &EnrollOptions) -> Result<Enrollment, WalletError> {
        let uri = EnrollmentUri::parse(uri).map_err(WalletError::Invalid)?;
        let server = ServerClient::new(&uri.server);
        let challenge: EnrollmentChallenge = server.call(
            "POST",
            "/wallet/v1/enrollments",
            Some(&BeginEnrollment {
                invitation: uri.invitation.clone(),
            }),
            None,
        )?;
        let keystore = &self.platform.keystore;
        let jwk = keystore.generate(DEVICE_KEY_ALIAS, true)?;
        let options_json = serde_json::to_string(&challenge.webauthn)
            .map_err(|e| WalletError::Invalid(e.to_string()))?;
        let passkey = self.platform.passkeys.create(&options_json)?;
        let request = CompleteEnrollment {
            invitation: uri.invitation,
            device_key: serde_json::to_value(&jwk)
                .map_err(|e| WalletError::Invalid(e.to_string()))?,
            platform: options.platform.clone(),
            name: options.name.clone(),
            push_channel: options.push_channel.clone(),
            push_token: options.push_token.clone(),
            attestation: keystore.attestation(DEVICE_KEY_ALIAS),
            passkey: serde_json::from_str(&passkey).map_err(|e| {
                WalletError::Protocol(format!("the passkey response is not JSON: {e}"))
            })?,
        };
        let enrolled: EnrolledDevice = server.call(
            "POST",
            "/wallet/v1/enrollments/complete",
            Some(&request),
            Some(&self.device_key()),
        )?;
        let jwks: JwkSet = serde_json::from_value(enrolled.jwks)
            .map_err(|e| WalletError::Protocol(format!("the server's JWKS: {e}")))?;
        let enrollment = Enrollment {
            server: uri.server,
            device_id: enrolled.device_id,
            subject: enrolled.subject,
            name: challenge.name,
            rp_id: challenge.rp_id,
            jwks,
        };
        self.save_enrollment(&enrollment)?;
        Ok(enrollment)
    }

    /// Requests waiting for this wallet's human.
    pub fn pending(&self) -> Result<Vec<PendingRequest>, WalletError> {
        let enrollment = self.enrolled()?;
        ServerClient::new(&enrollment.server).call::<(), _>(
            "GET",
            "/wallet/v1/requests",
            None,
            Some(&self.device_key()),
        )
    }

    /// Listens on the live channel and calls `handle` with each event until it returns
    /// false (then `Ok`), or until the connection fails (then `Err`; reconnect and list the
    /// pending requests, as events may have been missed).
    pub fn watch(&self, mut handle: impl FnMut(LiveEvent) -> bool) -> Result<(), WalletError> {
        use std::io::BufRead as _;
        let enrollment = self.enrolled()?;
        let mut lines = ServerClient::new(&enrollment.server)
            .event_stream("/wallet/v1/events", &self.device_key())?;
        let (mut event, mut data) = (String::new(), String::new());
        let mut line = String::new();
        loop {
            line.clear();
            if lines
                .read_line(&mut line)
                .map_err(|e| WalletError::Network(format!("live channel: {e}")))?
                == 0
            {
                return Err(WalletError::Network("the live channel closed".into()));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(name) = line.strip_prefix("event:") {
                event = name.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim());
            } else if line.is_empty() && !event.is_empty() {
                let parsed = match event.as_str() {
                    "ready" => Some(LiveEvent::Ready),
                    "resync" => Some(LiveEvent::Resync),
                    "request" => serde_json::from_str::<Value>(&data)
                        .ok()
                        .and_then(|v| v.get("request_id")?.as_str().map(str::to_owned))
                        .map(|request_id| LiveEvent::Request { request_id }),
                    _ => None,
                };
                event.clear();
                data.clear();
                if let Some(e) = parsed
                    && !handle(e)
                {
                    return Ok(());
                }
            }
        }
    }

    /// Fetches request `id` and verifies it before anything is shown: the server's
    /// signature (with the keys pinned at enrollment), that it is for this device and
    /// unexpired, and that its transaction hash is what this wallet computes.
    pub fn show(&self, id: &str) -> Result<ShownRequest, WalletError> {
        let mut enrollment = self.enrolled()?;
        let server = ServerClient::new(&enrollment.server);
        let displayed: DisplayedRequest = server.call::<(), _>(
            "POST",
            &format!("/wallet/v1/requests/{id}/display"),
            None,
            Some(&self.device_key()),
        )?;
        let refuse = |m: String| WalletError::Protocol(format!("request object refused: {m}"));
        let jws =
            UnverifiedJws::parse(&displayed.request_object).map_err(|e| refuse(e.to_string()))?;
        if jws.header.typ.as_deref() != Some(REQUEST_OBJECT_TYP) {
            return Err(refuse(format!("typ must be {REQUEST_OBJECT_TYP}")));
        }
        let known_kid = jws.header.kid.as_ref().is_none_or(|kid| {
            enrollment
                .jwks
                .keys
                .iter()
                .any(|k| k.kid.as_ref() == Some(kid))
        });
        if !known_kid {
            // The server rotated its key: take its current set over TLS, once.
            enrollment.jwks = server.call::<(), _>("GET", "/jwks.json", None, None)?;
            self.save_enrollment(&enrollment)?;
        }
        let claims: RequestObjectClaims = jws
            .verify_with_set(&enrollment.jwks)
            .map_err(|e| refuse(format!("the server's signature does not verify ({e})")))?;
        if claims.iss != enrollment.server || claims.aud != enrollment.device_id {
            return Err(refuse(
                "it was not issued by this server for this device".into(),
            ));
        }
        if claims.exp <= now_secs() {
            return Err(refuse("it has expired".into()));
        }
        if claims.transaction.request_id != id {
            return Err(refuse("it is for another request".into()));
        }
        let computed = transaction_hash(&claims.transaction).map_err(refuse)?;
        if computed != claims.transaction_hash {
            return Err(refuse(
                "its transaction hash does not match its contents".into(),
            ));
        }
        let shown = ShownRequest {
            transaction: claims.transaction,
            transaction_hash: computed,
            webauthn: claims.webauthn,
        };
        self.shown
            .lock()
            .map_err(|_| WalletError::Invalid("wallet state lock poisoned".into()))?
            .insert(id.to_owned(), shown.clone());
        Ok(shown)
    }

    /// Approves or denies request `id`, which must have been shown by [`Self::show`]:
    /// a passkey assertion (the platform asks for the biometric) on the request's
    /// challenge, inside an approval signed by the device key over the transaction hash.
    pub fn decide(
        &self,
        id: &str,
        decision: DecisionKind,
    ) -> Result<DecisionRecorded, WalletError> {
        let enrollment = self.enrolled()?;
        let shown = self
            .shown
            .lock()
            .map_err(|_| WalletError::Invalid("wallet state lock poisoned".into()))?
            .remove(id)
            .ok_or_else(|| {
                WalletError::Invalid(format!(
                    "request {id} has not been shown; show it before deciding"
                ))
            })?;
        let options = serde_json::to_string(&shown.webauthn)
            .map_err(|e| WalletError::Invalid(e.to_string()))?;
        let assertion = self.platform.passkeys.get_assertion(&options)?;
        let claims = ApprovalClaims {
            request_id: id.to_owned(),
            transaction_hash: shown.transaction_hash,
            decision,
            iat: now_secs(),
            jti: countersign_jose::random_b64url(16),
            assertion: serde_json::from_str(&assertion).map_err(|e| {
                WalletError::Protocol(format!("the passkey response is not JSON: {e}"))
            })?,
        };
        let approval = self.device_key().sign_jws(APPROVAL_TYP, &claims)?;
        ServerClient::new(&enrollment.server).call(
            "POST",
            &format!("/wallet/v1/requests/{id}/decision"),
            Some(&DecisionRequest { approval }),
            Some(&self.device_key()),
        )
    }
}
