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
use crate::history::{self, DecisionEntry};
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

/// What an enrollment invitation offers, read from its server before any key exists:
/// the human sees this and confirms (or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentOffer {
    pub server: String,
    pub subject: String,
    pub name: String,
    pub rp_id: String,
}

/// An offer the human has seen, with what completing it needs.
struct OpenOffer {
    uri: EnrollmentUri,
    challenge: EnrollmentChallenge,
}

pub struct Wallet {
    platform: Platform,
    shown: Mutex<HashMap<String, ShownRequest>>,
    offer: Mutex<Option<OpenOffer>>,
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
            offer: Mutex::new(None),
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
    /// registers both with the server ([`Self::preview_enrollment`], then
    /// [`Self::confirm_enrollment`], for a caller that showed the offer already).
    pub fn enroll(&self, uri: &str, options: &EnrollOptions) -> Result<Enrollment, WalletError> {
        self.preview_enrollment(uri)?;
        self.confirm_enrollment(options)
    }

    /// Reads what invitation `uri` offers from its server (the human and the relying
    /// party), without creating any key; [`Self::confirm_enrollment`] completes it. A new
    /// preview replaces an open one. The invitation is not used up by a preview.
    pub fn preview_enrollment(&self, uri: &str) -> Result<EnrollmentOffer, WalletError> {
        let uri = EnrollmentUri::parse(uri).map_err(WalletError::Invalid)?;
        let challenge: EnrollmentChallenge = ServerClient::new(&uri.server).call(
            "POST",
            "/wallet/v1/enrollments",
            Some(&BeginEnrollment {
                invitation: uri.invitation.clone(),
            }),
            None,
        )?;
        let offer = EnrollmentOffer {
            server: uri.server.clone(),
            subject: challenge.subject.clone(),
            name: challenge.name.clone(),
            rp_id: challenge.rp_id.clone(),
        };
        *self.lock_offer()? = Some(OpenOffer { uri, challenge });
        Ok(offer)
    }

    /// Forgets the open offer, if any.
    pub fn cancel_enrollment(&self) -> Result<(), WalletError> {
        *self.lock_offer()? = None;
        Ok(())
    }

    fn lock_offer(&self) -> Result<std::sync::MutexGuard<'_, Option<OpenOffer>>, WalletError> {
        self.offer
            .lock()
            .map_err(|_| WalletError::Invalid("wallet state lock poisoned".into()))
    }

    /// Completes the offer the human saw: creates the device key and a passkey and
    /// registers both with the server.
    pub fn confirm_enrollment(&self, options: &EnrollOptions) -> Result<Enrollment, WalletError> {
        let OpenOffer { uri, challenge } = self.lock_offer()?.take().ok_or_else(|| {
            WalletError::Invalid("no enrollment to confirm; open the invitation first".into())
        })?;
        let server = ServerClient::new(&uri.server);
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

    /// The decisions this wallet made, newest first, with their signed evidence.
    pub fn history(&self) -> Result<Vec<DecisionEntry>, WalletError> {
        history::load(self.platform.storage.as_ref())
    }

    /// Removes this device: tells the server to disable it (its pending approvals can no
    /// longer be made from here), then forgets the enrollment, its history and its device
    /// key. If the server cannot be reached the device stays enrolled and the error says
    /// so, so a human never believes a device is gone while the server still trusts it.
    pub fn remove_device(&self) -> Result<(), WalletError> {
        let enrollment = self.enrolled()?;
        ServerClient::new(&enrollment.server).call::<(), serde_json::Value>(
            "POST",
            "/wallet/v1/device/remove",
            None,
            Some(&self.device_key()),
        )?;
        self.forget()
    }

    /// Forgets this device's enrollment, history and key locally (the server is not told).
    pub fn forget(&self) -> Result<(), WalletError> {
        let storage = self.platform.storage.as_ref();
        history::clear(storage)?;
        storage.delete(ENROLLMENT_KEY)?;
        self.platform.keystore.delete(DEVICE_KEY_ALIAS)?;
        self.shown
            .lock()
            .map_err(|_| WalletError::Invalid("wallet state lock poisoned".into()))?
            .clear();
        Ok(())
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
    /// A denial may carry the human's `reason`, signed with it. A decision the server
    /// recorded goes into [`Self::history`].
    ///
    /// If the server answers that the request is no longer pending, the error says
    /// whether it expired ([`WalletError::Expired`]) or was decided elsewhere
    /// ([`WalletError::AlreadyDecided`]), as the server's problem `code` tells. The
    /// request stays shown after a cancelled passkey, so the human can try again.
    pub fn decide(
        &self,
        id: &str,
        decision: DecisionKind,
        reason: Option<&str>,
    ) -> Result<DecisionRecorded, WalletError> {
        let enrollment = self.enrolled()?;
        if reason.is_some() && decision == DecisionKind::Approve {
            return Err(WalletError::Invalid("a reason goes with a denial".into()));
        }
        let shown = self
            .shown
            .lock()
            .map_err(|_| WalletError::Invalid("wallet state lock poisoned".into()))?
            .get(id)
            .cloned()
            .ok_or_else(|| {
                WalletError::Invalid(format!(
                    "request {id} has not been shown; show it before deciding"
                ))
            })?;
        let options = serde_json::to_string(&shown.webauthn)
            .map_err(|e| WalletError::Invalid(e.to_string()))?;
        let assertion = self.platform.passkeys.get_assertion(&options)?;
        // From here the passkey challenge is spent: the request must be shown again.
        self.shown
            .lock()
            .map_err(|_| WalletError::Invalid("wallet state lock poisoned".into()))?
            .remove(id);
        let claims = ApprovalClaims {
            request_id: id.to_owned(),
            transaction_hash: shown.transaction_hash.clone(),
            decision,
            iat: now_secs(),
            jti: countersign_jose::random_b64url(16),
            assertion: serde_json::from_str(&assertion).map_err(|e| {
                WalletError::Protocol(format!("the passkey response is not JSON: {e}"))
            })?,
            reason: reason.map(str::to_owned),
        };
        let key = self.device_key();
        let approval = key.sign_jws(APPROVAL_TYP, &claims)?;
        let recorded: DecisionRecorded = ServerClient::new(&enrollment.server).call(
            "POST",
            &format!("/wallet/v1/requests/{id}/decision"),
            Some(&DecisionRequest {
                approval: approval.clone(),
            }),
            Some(&key),
        )?;
        let t = shown.transaction;
        history::record(
            self.platform.storage.as_ref(),
            DecisionEntry {
                request_id: id.to_owned(),
                decision: match decision {
                    DecisionKind::Approve => "approve",
                    DecisionKind::Deny => "deny",
                }
                .into(),
                decided_at: claims.iat,
                agent: t.agent.name,
                action: t.action,
                binding_message: t.binding_message,
                reason: claims.reason,
                transaction_hash: shown.transaction_hash,
                evidence: approval,
                device_jkt: key.thumbprint()?,
            },
        )?;
        Ok(recorded)
    }
}
