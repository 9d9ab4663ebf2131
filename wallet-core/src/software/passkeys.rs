//! A passkey authenticator in software, on 1Password's `passkey` crates, for desktop
//! wallets and tests. It behaves like a platform authenticator on the relying party's
//! own origin (`https://<rp id>`, or `http://localhost`): user verification is reported
//! as done (the desktop wallet's user confirms at the terminal), signature counters are
//! on, and passkeys persist in [`SecureStorage`].
//!
//! Two traps of the crates are handled here: their credential stores ignore the RP ID
//! (ours filters by it), and `Passkey` has no serde (ours stores the COSE key as CBOR).
//!
//! [`AuthenticatorFaults`] makes it misbehave on purpose, so tests can show the server
//! refuses assertions without user verification, from another origin or for another RP.

use std::sync::Arc;

use countersign_jose::{b64url_decode, b64url_encode};
use passkey_authenticator::{
    Authenticator, CredentialStore, DiscoverabilitySupport, StoreInfo, UiHint, UserCheck,
    UserValidationMethod,
};
use passkey_crypto::coset::{CborSerializable as _, CoseKey};
use passkey_types::ctap2::make_credential::{
    Options, PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
};
use passkey_types::ctap2::{Aaguid, Ctap2Error, StatusCode};
use passkey_types::webauthn::{
    CredentialCreationOptions, CredentialRequestOptions, PublicKeyCredentialDescriptor,
};
use passkey_types::{Bytes, Passkey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::platform::{PasskeyAuthenticator, PasskeyError, SecureStorage};

/// Deliberate misbehaviour, for tests of the relying party.
#[derive(Debug, Clone, Default)]
pub struct AuthenticatorFaults {
    /// Assert without user verification (as an authenticator without a biometric would).
    pub skip_user_verification: bool,
    /// Claim this origin in `clientDataJSON` instead of the RP's.
    pub origin: Option<String>,
    /// Sign for this RP ID instead of the one requested (with any stored passkey), while
    /// reporting the legitimate origin: an authenticator that ignores RP scoping.
    pub rp_id: Option<String>,
}

/// A passkey as stored.
#[derive(Serialize, Deserialize)]
struct StoredPasskey {
    key: String,
    credential_id: String,
    rp_id: String,
    user_handle: Option<String>,
    username: Option<String>,
    user_display_name: Option<String>,
    counter: Option<u32>,
}

const PREFIX: &str = "passkey/";

fn failed(e: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Failed(e.to_string())
}

impl StoredPasskey {
    fn from_passkey(p: &Passkey) -> Result<Self, PasskeyError> {
        Ok(Self {
            key: b64url_encode(
                p.key
                    .clone()
                    .to_vec()
                    .map_err(|e| failed(format!("{e:?}")))?,
            ),
            credential_id: b64url_encode(p.credential_id.as_slice()),
            rp_id: p.rp_id.clone(),
            user_handle: p.user_handle.as_ref().map(|h| b64url_encode(h.as_slice())),
            username: p.username.clone(),
            user_display_name: p.user_display_name.clone(),
            counter: p.counter,
        })
    }

    fn into_passkey(self) -> Result<Passkey, PasskeyError> {
        let bytes = |s: &str| b64url_decode(s).ok_or_else(|| failed("corrupt stored passkey"));
        Ok(Passkey {
            key: CoseKey::from_slice(&bytes(&self.key)?).map_err(|e| failed(format!("{e:?}")))?,
            credential_id: Bytes::from(bytes(&self.credential_id)?),
            rp_id: self.rp_id,
            user_handle: match &self.user_handle {
                Some(h) => Some(Bytes::from(bytes(h)?)),
                None => None,
            },
            username: self.username,
            user_display_name: self.user_display_name,
            counter: self.counter,
            extensions: Default::default(),
        })
    }
}

/// The credential store the authenticator works on: loaded from storage for one
/// ceremony, written back after it.
struct Store {
    passkeys: Vec<Passkey>,
    ignore_rp_id: bool,
}

#[async_trait::async_trait]
impl CredentialStore for Store {
    type PasskeyItem = Passkey;

    async fn find_credentials(
        &self,
        ids: Option<&[PublicKeyCredentialDescriptor]>,
        rp_id: &str,
        _user_handle: Option<&[u8]>,
    ) -> Result<Vec<Passkey>, StatusCode> {
        let found: Vec<Passkey> = self
            .passkeys
            .iter()
            .filter(|p| self.ignore_rp_id || p.rp_id == rp_id)
            .filter(|p| {
                ids.is_none_or(|ids| {
                    ids.iter()
                        .any(|d| d.id.as_slice() == p.credential_id.as_slice())
                })
            })
            .cloned()
            .collect();
        if found.is_empty() {
            Err(Ctap2Error::NoCredentials.into())
        } else {
            Ok(found)
        }
    }

    async fn save_credential(
        &mut self,
        cred: Passkey,
        _user: PublicKeyCredentialUserEntity,
        _rp: PublicKeyCredentialRpEntity,
        _options: Options,
    ) -> Result<(), StatusCode> {
        self.passkeys.push(cred);
        Ok(())
    }

    async fn update_credential(&mut self, cred: &Passkey) -> Result<(), StatusCode> {
        for p in &mut self.passkeys {
            if p.credential_id == cred.credential_id {
                *p = cred.clone();
            }
        }
        Ok(())
    }

    async fn get_info(&self) -> StoreInfo {
        StoreInfo {
            discoverability: DiscoverabilitySupport::ForcedDiscoverable,
        }
    }
}

/// Reports user presence and verification as requested, unless told to skip UV.
struct Verification {
    skip: bool,
}

#[async_trait::async_trait]
impl UserValidationMethod for Verification {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification: verification && !self.skip,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

pub struct SoftwarePasskeys {
    storage: Arc<dyn SecureStorage>,
    faults: AuthenticatorFaults,
}

impl SoftwarePasskeys {
    pub fn new(storage: Arc<dyn SecureStorage>) -> Self {
        Self {
            storage,
            faults: AuthenticatorFaults::default(),
        }
    }

    pub fn with_faults(mut self, faults: AuthenticatorFaults) -> Self {
        self.faults = faults;
        self
    }

    fn load(&self) -> Result<Vec<Passkey>, PasskeyError> {
        let index = self
            .storage
            .get("passkeys")
            .map_err(failed)?
            .unwrap_or_default();
        let mut out = Vec::new();
        for id in index.split(',').filter(|s| !s.is_empty()) {
            if let Some(text) = self.storage.get(&format!("{PREFIX}{id}")).map_err(failed)? {
                let stored: StoredPasskey = serde_json::from_str(&text).map_err(failed)?;
                out.push(stored.into_passkey()?);
            }
        }
        Ok(out)
    }

    fn save(&self, passkeys: &[Passkey]) -> Result<(), PasskeyError> {
        let mut ids = Vec::new();
        for p in passkeys {
            let stored = StoredPasskey::from_passkey(p)?;
            let text = serde_json::to_string(&stored).map_err(failed)?;
            self.storage
                .put(&format!("{PREFIX}{}", stored.credential_id), &text)
                .map_err(failed)?;
            ids.push(stored.credential_id);
        }
        self.storage.put("passkeys", &ids.join(",")).map_err(failed)
    }

    /// The origin a platform authenticator would report for `rp_id`.
    fn origin(&self, rp_id: &str) -> Result<url::Url, PasskeyError> {
        let origin = match &self.faults.origin {
            Some(o) => o.clone(),
            None if rp_id == "localhost" => "http://localhost".to_owned(),
            None => format!("https://{rp_id}"),
        };
        url::Url::parse(&origin).map_err(failed)
    }

    fn run<T>(
        &self,
        ceremony: impl FnOnce(
            &mut passkey_client::Client<
                Store,
                Verification,
                passkey_crypto::AvailableBackend,
                public_suffix::PublicSuffixList,
                (),
            >,
        ) -> Result<T, PasskeyError>,
    ) -> Result<T, PasskeyError> {
        let store = Store {
            passkeys: self.load()?,
            ignore_rp_id: self.faults.rp_id.is_some(),
        };
        let verification = Verification {
            skip: self.faults.skip_user_verification,
        };
        let mut authenticator = Authenticator::new(
            Aaguid::new_empty(),
            store,
            verification,
            passkey_crypto::AvailableBackend,
        );
        authenticator.set_make_credentials_with_signature_counter(true);
        let mut client = passkey_client::Client::new(authenticator).allows_insecure_localhost(true);
        let result = ceremony(&mut client)?;
        self.save(&client.authenticator().store().passkeys)?;
        Ok(result)
    }
}

impl SoftwarePasskeys {
    /// Talks to the authenticator directly (as a broken client would), so the assertion
    /// names `rp_id` while `clientDataJSON` carries the legitimate origin.
    fn assert_for_another_rp(
        &self,
        public_key: &Value,
        rp_id: &str,
    ) -> Result<String, PasskeyError> {
        use passkey_types::ctap2::get_assertion::{Options as AssertOptions, Request};
        let requested = public_key
            .get("rpId")
            .and_then(Value::as_str)
            .ok_or_else(|| failed("request options without rpId"))?;
        let challenge = public_key
            .get("challenge")
            .and_then(Value::as_str)
            .ok_or_else(|| failed("request options without challenge"))?;
        let origin = self.origin(requested)?;
        let client_data = serde_json::json!({
            "type": "webauthn.get",
            "challenge": challenge,
            "origin": origin.as_str().trim_end_matches('/'),
            "crossOrigin": false,
        })
        .to_string();
        let store = Store {
            passkeys: self.load()?,
            ignore_rp_id: true,
        };
        let mut authenticator = Authenticator::new(
            Aaguid::new_empty(),
            store,
            Verification { skip: false },
            passkey_crypto::AvailableBackend,
        );
        authenticator.set_make_credentials_with_signature_counter(true);
        let request = Request {
            rp_id: rp_id.to_owned(),
            client_data_hash: Bytes::from(
                countersign_jose::sha256(client_data.as_bytes()).to_vec(),
            ),
            allow_list: None,
            extensions: None,
            options: AssertOptions { up: true, uv: true },
            pin_auth: None,
            pin_protocol: None,
        };
        let response = pollster::block_on(authenticator.get_assertion(request))
            .map_err(|e| failed(format!("{e:?}")))?;
        self.save(&authenticator.store().passkeys)?;
        let id = response
            .credential
            .map(|c| b64url_encode(c.id.as_slice()))
            .ok_or_else(|| failed("no credential in the assertion"))?;
        Ok(serde_json::json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url_encode(client_data.as_bytes()),
                "authenticatorData": b64url_encode(response.auth_data.to_vec()),
                "signature": b64url_encode(response.signature.as_slice()),
                "userHandle": response.user.map(|u| b64url_encode(u.id.as_slice())),
            },
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        })
        .to_string())
    }
}

fn webauthn_error(e: passkey_client::WebauthnError) -> PasskeyError {
    PasskeyError::Failed(format!("{e:?}"))
}

impl PasskeyAuthenticator for SoftwarePasskeys {
    fn create(&self, options: &str) -> Result<String, PasskeyError> {
        let public_key: Value = serde_json::from_str(options).map_err(failed)?;
        let rp_id = public_key
            .pointer("/rp/id")
            .and_then(Value::as_str)
            .ok_or_else(|| failed("creation options without rp.id"))?
            .to_owned();
        let origin = self.origin(&rp_id)?;
        let request: CredentialCreationOptions =
            serde_json::from_value(serde_json::json!({ "publicKey": public_key }))
                .map_err(failed)?;
        self.run(|client| {
            let created = pollster::block_on(client.register(
                &origin,
                request,
                passkey_client::DefaultClientData,
            ))
            .map_err(webauthn_error)?;
            serde_json::to_string(&created).map_err(failed)
        })
    }

    fn get_assertion(&self, options: &str) -> Result<String, PasskeyError> {
        let mut public_key: Value = serde_json::from_str(options).map_err(failed)?;
        if let Some(rp_id) = &self.faults.rp_id {
            return self.assert_for_another_rp(&public_key, rp_id);
        }
        if self.faults.skip_user_verification {
            public_key["userVerification"] = Value::String("discouraged".into());
        }
        let rp_id = public_key
            .get("rpId")
            .and_then(Value::as_str)
            .ok_or_else(|| failed("request options without rpId"))?
            .to_owned();
        let origin = self.origin(&rp_id)?;
        let request: CredentialRequestOptions =
            serde_json::from_value(serde_json::json!({ "publicKey": public_key }))
                .map_err(failed)?;
        self.run(|client| {
            let asserted = pollster::block_on(client.authenticate(
                &origin,
                request,
                passkey_client::DefaultClientData,
            ))
            .map_err(webauthn_error)?;
            serde_json::to_string(&asserted).map_err(failed)
        })
    }
}
