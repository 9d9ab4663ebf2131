//! The passkey relying party, over `webauthn_rp` (ADR 0005). Ceremony state and stored
//! passkeys cross this boundary as base64url text, so the rest of the server stores them
//! without knowing the crate's types.
//!
//! Registration asks for a discoverable passkey with user verification required;
//! assertions name the device's passkey (`allowCredentials`) and require user
//! verification, the expected RP ID and origin, and a signature counter that only grows.

use countersign_jose::{b64url_decode, b64url_encode};
use serde_json::Value;
use webauthn_rp::bin::{Decode, Encode};
use webauthn_rp::request::auth::{
    AllowedCredentials, AuthenticationVerificationOptions, DiscoverableAuthenticationServerState,
    DiscoverableCredentialRequestOptions, NonDiscoverableCredentialRequestOptions,
};
use webauthn_rp::request::register::{
    CredProtect, Nickname, PublicKeyCredentialUserEntity, RegistrationVerificationOptions,
    UserHandle16, Username,
};
use webauthn_rp::request::{
    AsciiDomain, Credentials, ExtensionInfo, PublicKeyCredentialDescriptor, RpId,
    UserVerificationRequirement,
};
use webauthn_rp::response::register::{CompressedPubKey, DynamicState, StaticState};
use webauthn_rp::response::{AuthTransports, CredentialId};
use webauthn_rp::{
    AuthenticatedCredential, DiscoverableAuthentication16, NonDiscoverableAuthentication16,
    NonDiscoverableAuthenticationServerState, PublicKeyCredentialCreationOptions, Registration,
    RegistrationServerState,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebauthnError {
    /// The client's message cannot be read.
    #[error("malformed WebAuthn response: {0}")]
    Malformed(String),
    /// It was read and does not verify (RP ID, origin, challenge, flags, signature, counter).
    #[error("the passkey ceremony failed: {0}")]
    Rejected(String),
    /// Stored state cannot be decoded (corruption) or options cannot be built.
    #[error("passkey state error: {0}")]
    State(String),
}

/// A ceremony just started: the options for the client and what the server keeps.
#[derive(Debug, Clone)]
pub struct Started {
    /// WebAuthn options JSON (`PublicKeyCredentialCreationOptionsJSON` or
    /// `PublicKeyCredentialRequestOptionsJSON`).
    pub options: Value,
    /// base64url challenge, the ceremony's key.
    pub challenge: String,
    /// The relying party's state, base64url.
    pub state: String,
}

/// A registered passkey as stored (all base64url but `transports`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    pub id: String,
    pub user: String,
    pub static_state: String,
    pub dynamic_state: String,
    pub transports: i64,
}

type PubKey = CompressedPubKey<[u8; 32], [u8; 32], [u8; 48], Vec<u8>>;

pub struct RelyingParty {
    rp_id: RpId,
    rp_id_text: String,
    origins: Vec<String>,
}

fn state_err(what: &str) -> impl FnOnce(String) -> WebauthnError + '_ {
    move |e| WebauthnError::State(format!("{what}: {e}"))
}

fn decode_b64(text: &str, what: &str) -> Result<Vec<u8>, WebauthnError> {
    b64url_decode(text).ok_or_else(|| WebauthnError::State(format!("{what} is not base64url")))
}

/// The base64url challenge inside a WebAuthn response's `clientDataJSON`.
pub fn challenge_of(response: &Value) -> Result<String, WebauthnError> {
    let malformed = |m: &str| WebauthnError::Malformed(m.to_owned());
    let encoded = response
        .pointer("/response/clientDataJSON")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("response.clientDataJSON is missing"))?;
    let bytes =
        b64url_decode(encoded).ok_or_else(|| malformed("clientDataJSON is not base64url"))?;
    let client_data: Value =
        serde_json::from_slice(&bytes).map_err(|_| malformed("clientDataJSON is not JSON"))?;
    client_data
        .get("challenge")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| malformed("clientDataJSON has no challenge"))
}

/// The client options (JSON) and the encoded server state of a ceremony just started.
fn started(client: &impl serde::Serialize, state: Vec<u8>) -> Result<Started, WebauthnError> {
    let options = serde_json::to_value(client).map_err(|e| state_err("options")(e.to_string()))?;
    let challenge = options
        .get("challenge")
        .and_then(Value::as_str)
        .ok_or_else(|| WebauthnError::State("options without a challenge".into()))?
        .to_owned();
    Ok(Started {
        options,
        challenge,
        state: b64url_encode(state),
    })
}

/// A stored passkey in the relying party's types: its credential ID, user handle, and
/// static (public key) and dynamic (counter, flags) state.
type Parts = (
    CredentialId<Vec<u8>>,
    UserHandle16,
    StaticState<PubKey>,
    DynamicState,
);

/// A stored passkey decoded into the relying party's types.
fn stored_parts(passkey: &StoredPasskey) -> Result<Parts, WebauthnError> {
    let id = CredentialId::<Vec<u8>>::decode(decode_b64(&passkey.id, "passkey id")?)
        .map_err(|e| WebauthnError::State(format!("passkey id: {e:?}")))?;
    let user_bytes: [u8; 16] = decode_b64(&passkey.user, "user handle")?
        .try_into()
        .map_err(|_| WebauthnError::State("user handle length".into()))?;
    let user = UserHandle16::decode(user_bytes)
        .map_err(|e| WebauthnError::State(format!("user handle: {e:?}")))?;
    let static_state = StaticState::<PubKey>::decode(
        decode_b64(&passkey.static_state, "static state")?.as_slice(),
    )
    .map_err(|e| WebauthnError::State(format!("static state: {e:?}")))?;
    let dynamic: [u8; 7] = decode_b64(&passkey.dynamic_state, "dynamic state")?
        .try_into()
        .map_err(|_| WebauthnError::State("dynamic state length".into()))?;
    let dynamic_state = DynamicState::decode(dynamic)
        .map_err(|e| WebauthnError::State(format!("dynamic state: {e:?}")))?;
    Ok((id, user, static_state, dynamic_state))
}

/// The base64url credential ID a WebAuthn response names (`rawId`), to find its passkey.
pub fn credential_id_of(response: &Value) -> Result<String, WebauthnError> {
    response
        .get("rawId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 1366 && b64url_decode(id).is_some())
        .map(str::to_owned)
        .ok_or_else(|| WebauthnError::Malformed("rawId is missing or not base64url".into()))
}

impl RelyingParty {
    pub fn new(rp_id: &str, origins: Vec<String>) -> Result<Self, WebauthnError> {
        let domain = AsciiDomain::try_from(rp_id.to_owned())
            .map_err(|e| WebauthnError::State(format!("RP ID {rp_id:?}: {e:?}")))?;
        Ok(Self {
            rp_id: RpId::Domain(domain),
            rp_id_text: rp_id.to_owned(),
            origins,
        })
    }

    pub fn rp_id(&self) -> &str {
        &self.rp_id_text
    }

    /// Starts registering a passkey for `user_name` (shown as `display_name`). With
    /// `strict_cred_protect` the authenticator must enforce user verification for the
    /// credential (CTAP `credProtect`, which the wallets' platform authenticators do);
    /// without it the policy is only asked for (`enforceCredentialProtectionPolicy`
    /// false), as browsers' authenticators often lack the extension and the browser
    /// would refuse the ceremony; user verification is still required at every assertion.
    pub fn start_registration(
        &self,
        user_name: &str,
        display_name: &str,
        strict_cred_protect: bool,
    ) -> Result<Started, WebauthnError> {
        let handle = UserHandle16::new();
        let name = Username::try_from(user_name)
            .map_err(|e| WebauthnError::State(format!("user name: {e:?}")))?;
        let display = Nickname::try_from(display_name).ok();
        let user = PublicKeyCredentialUserEntity {
            name,
            id: &handle,
            display_name: display,
        };
        let mut options =
            PublicKeyCredentialCreationOptions::passkey(&self.rp_id, user, Vec::new());
        if !strict_cred_protect {
            options.extensions.cred_protect =
                CredProtect::UserVerificationRequired(ExtensionInfo::AllowDontEnforceValue);
        }
        let (server, client) = options
            .start_ceremony()
            .map_err(|e| WebauthnError::State(format!("creation options: {e:?}")))?;
        let state = server
            .encode()
            .map_err(|e| state_err("registration state")(e.to_string()))?;
        started(&client, state)
    }

    /// Verifies a registration response against the ceremony's `state`.
    pub fn finish_registration(
        &self,
        state: &str,
        response: &Value,
    ) -> Result<StoredPasskey, WebauthnError> {
        let server = RegistrationServerState::<16>::decode(decode_b64(state, "state")?.as_slice())
            .map_err(|e| WebauthnError::State(format!("registration state: {e:?}")))?;
        let registration: Registration = serde_json::from_value(response.clone())
            .map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        let origins: Vec<&str> = self.origins.iter().map(String::as_str).collect();
        let options = RegistrationVerificationOptions::<&str, &str> {
            allowed_origins: &origins,
            ..RegistrationVerificationOptions::default()
        };
        let credential = server
            .verify(&self.rp_id, &registration, &options)
            .map_err(|e| WebauthnError::Rejected(e.to_string()))?;
        let (id, transports, user, static_state, dynamic_state, _metadata) =
            credential.into_parts();
        let encode_err = |e: String| WebauthnError::State(format!("encoding the passkey: {e}"));
        Ok(StoredPasskey {
            id: b64url_encode(id.encode().map_err(|e| encode_err(format!("{e:?}")))?),
            user: b64url_encode(user.encode().map_err(|e| encode_err(format!("{e:?}")))?),
            static_state: b64url_encode(
                static_state
                    .encode()
                    .map_err(|e| encode_err(format!("{e:?}")))?,
            ),
            dynamic_state: b64url_encode(
                dynamic_state
                    .encode()
                    .map_err(|e| encode_err(format!("{e:?}")))?,
            ),
            transports: i64::from(
                transports
                    .encode()
                    .map_err(|e| encode_err(format!("{e:?}")))?,
            ),
        })
    }

    /// Starts an assertion by `passkey`, user verification required.
    pub fn start_assertion(&self, passkey: &StoredPasskey) -> Result<Started, WebauthnError> {
        let id = CredentialId::<Vec<u8>>::decode(decode_b64(&passkey.id, "passkey id")?)
            .map_err(|e| WebauthnError::State(format!("passkey id: {e:?}")))?;
        let transports = AuthTransports::decode(
            u8::try_from(passkey.transports)
                .map_err(|_| WebauthnError::State("transports".into()))?,
        )
        .map_err(|e| WebauthnError::State(format!("transports: {e:?}")))?;
        let mut allowed = AllowedCredentials::with_capacity(1);
        allowed.push(PublicKeyCredentialDescriptor { id, transports }.into());
        let mut request =
            NonDiscoverableCredentialRequestOptions::second_factor(&self.rp_id, allowed)
                .map_err(|e| WebauthnError::State(format!("request options: {e:?}")))?;
        request.options().user_verification = UserVerificationRequirement::Required;
        let (server, client) = request
            .start_ceremony()
            .map_err(|e| WebauthnError::State(format!("request options: {e:?}")))?;
        let state = server
            .encode()
            .map_err(|e| WebauthnError::State(format!("assertion state: {e:?}")))?;
        started(&client, state)
    }

    /// Verifies an assertion by `passkey` against the ceremony's `state`; returns the
    /// passkey's new dynamic state (signature counter, flags) to store.
    pub fn finish_assertion(
        &self,
        state: &str,
        response: &Value,
        passkey: &StoredPasskey,
    ) -> Result<String, WebauthnError> {
        let server = NonDiscoverableAuthenticationServerState::decode(
            decode_b64(state, "state")?.as_slice(),
        )
        .map_err(|e| WebauthnError::State(format!("assertion state: {e:?}")))?;
        let assertion: NonDiscoverableAuthentication16 =
            serde_json::from_value(response.clone())
                .map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        self.verify_assertion(passkey, |rp_id, credential, options| {
            server
                .verify(rp_id, &assertion, credential, options)
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }

    /// Starts an assertion by whichever passkey of this RP the user picks (discoverable
    /// credentials, no `allowCredentials`), user verification required: signing in
    /// without typing a name.
    pub fn start_discoverable_assertion(&self) -> Result<Started, WebauthnError> {
        let (server, client) = DiscoverableCredentialRequestOptions::passkey(&self.rp_id)
            .start_ceremony()
            .map_err(|e| WebauthnError::State(format!("request options: {e:?}")))?;
        let state = server
            .encode()
            .map_err(|e| WebauthnError::State(format!("assertion state: {e:?}")))?;
        started(&client, state)
    }

    /// Verifies a discoverable assertion by `passkey` (the one its `rawId` names) against
    /// the ceremony's `state`; returns the passkey's new dynamic state to store.
    pub fn finish_discoverable_assertion(
        &self,
        state: &str,
        response: &Value,
        passkey: &StoredPasskey,
    ) -> Result<String, WebauthnError> {
        let server =
            DiscoverableAuthenticationServerState::decode(decode_b64(state, "state")?.as_slice())
                .map_err(|e| WebauthnError::State(format!("assertion state: {e:?}")))?;
        let assertion: DiscoverableAuthentication16 = serde_json::from_value(response.clone())
            .map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        self.verify_assertion(passkey, |rp_id, credential, options| {
            server
                .verify(rp_id, &assertion, credential, options)
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }

    /// Checks an assertion by `passkey` with `verify` (the ceremony's server state, with
    /// this RP's ID and origins); returns the passkey's new dynamic state (signature
    /// counter, flags) to store.
    fn verify_assertion(
        &self,
        passkey: &StoredPasskey,
        verify: impl FnOnce(
            &RpId,
            &mut AuthenticatedCredential<'_, '_, 16, PubKey>,
            &AuthenticationVerificationOptions<'_, '_, &str, &str>,
        ) -> Result<(), String>,
    ) -> Result<String, WebauthnError> {
        let (id, user, static_state, dynamic_state) = stored_parts(passkey)?;
        let mut credential =
            AuthenticatedCredential::new((&id).into(), &user, static_state, dynamic_state)
                .map_err(|e| WebauthnError::State(format!("stored passkey: {e:?}")))?;
        let origins: Vec<&str> = self.origins.iter().map(String::as_str).collect();
        let options = AuthenticationVerificationOptions::<&str, &str> {
            allowed_origins: &origins,
            ..AuthenticationVerificationOptions::default()
        };
        verify(&self.rp_id, &mut credential, &options).map_err(WebauthnError::Rejected)?;
        let updated = credential
            .dynamic_state()
            .encode()
            .map_err(|e| WebauthnError::State(format!("dynamic state: {e:?}")))?;
        Ok(b64url_encode(updated))
    }
}
