//! Keys: Ed25519 private keys, note signers and verifier keys (vkeys).

use std::fmt;
use std::str::FromStr;

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use super::{
    MAX_KEY_NAME_LEN, MAX_NOTE_LEN, SignatureType, check_key_name, check_text,
    format_signature_line, key_id,
};
use crate::Error;
use crate::cosignature;
use crate::encoding::{b64_decode, b64_encode};

/// Longest verifier key string accepted.
const MAX_VKEY_LEN: usize = MAX_KEY_NAME_LEN + 10 + 4 * 1024;

/// A PKCS#8 Ed25519 private key. Its `Debug` does not show the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs8Key(Vec<u8>);

impl Pkcs8Key {
    /// Wraps PKCS#8 bytes (v1 or v2, as ring and OpenSSL write them).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The PKCS#8 document, to store as a secret.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Pkcs8Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pkcs8Key(***)")
    }
}

/// Generates an Ed25519 private key (PKCS#8 v2) from the system's random source, for a
/// [`NoteSigner`] or a [`Cosigner`](crate::cosignature::Cosigner).
pub fn generate_pkcs8() -> Result<Pkcs8Key, Error> {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| Error::Rng)?;
    Ok(Pkcs8Key(doc.as_ref().to_vec()))
}

pub(crate) fn keypair_from_pkcs8(pkcs8: &[u8]) -> Result<Ed25519KeyPair, Error> {
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
        .map_err(|e| Error::InvalidPrivateKey(e.to_string()))
}

pub(crate) fn public_key_of(key: &Ed25519KeyPair) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(key.public_key().as_ref());
    out
}

/// Signs notes with an Ed25519 key (signature type `0x01`).
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: Ed25519KeyPair,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteSigner({}+{:08x}, ***)", self.name, self.key_id)
    }
}

impl NoteSigner {
    /// Generates a new private key; see [`generate_pkcs8`].
    pub fn generate() -> Result<Pkcs8Key, Error> {
        generate_pkcs8()
    }

    /// A signer named `name` (for a log, its origin) with a PKCS#8 Ed25519 key.
    pub fn from_pkcs8(name: &str, pkcs8: &[u8]) -> Result<Self, Error> {
        Self::from_keypair(name, keypair_from_pkcs8(pkcs8)?)
    }

    pub(crate) fn from_keypair(name: &str, key: Ed25519KeyPair) -> Result<Self, Error> {
        check_key_name(name)?;
        let key_id = key_id(name, SignatureType::Ed25519.id(), &public_key_of(&key));
        Ok(Self {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The verifier for this key, to publish as a vkey (`to_string()`).
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            sig_type: SignatureType::Ed25519,
            public_key: public_key_of(&self.key),
        }
    }

    /// This key's signature line for `text` (ending in a newline), to add to a note.
    pub fn signature_line(&self, text: &str) -> Result<String, Error> {
        check_text(text)?;
        let sig = self.key.sign(text.as_bytes());
        Ok(format_signature_line(&self.name, self.key_id, sig.as_ref()))
    }

    /// The signed note: `text`, a blank line and this key's signature line.
    pub fn sign(&self, text: &str) -> Result<String, Error> {
        let line = self.signature_line(text)?;
        let note = format!("{text}\n{line}");
        if note.len() > MAX_NOTE_LEN {
            return Err(Error::TooLarge {
                len: note.len(),
                max: MAX_NOTE_LEN,
            });
        }
        Ok(note)
    }
}

/// A public key a reader trusts, with its name and key ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    pub(super) name: String,
    pub(super) key_id: u32,
    pub(super) sig_type: SignatureType,
    pub(super) public_key: [u8; 32],
}

impl NoteVerifier {
    /// A verifier for an Ed25519 public key of the given type, its key ID computed.
    pub fn new(name: &str, sig_type: SignatureType, public_key: [u8; 32]) -> Result<Self, Error> {
        check_key_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, sig_type.id(), &public_key),
            sig_type,
            public_key,
        })
    }

    /// Parses a vkey `<name>+<8 lowercase hex digits>+<base64(type || public key)>`,
    /// checking that the key ID is the one the rest gives.
    pub fn parse(vkey: &str) -> Result<Self, Error> {
        if vkey.len() > MAX_VKEY_LEN {
            return Err(Error::TooLarge {
                len: vkey.len(),
                max: MAX_VKEY_LEN,
            });
        }
        // The name has no '+', the hex none, and the base64 may have some.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hex), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::MalformedVerifierKey("not three '+'-separated parts"));
        };
        check_key_name(name)?;
        if hex.len() != 8 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::MalformedVerifierKey(
                "key ID is not 8 lowercase hex digits",
            ));
        }
        let declared = u32::from_str_radix(hex, 16)
            .map_err(|_| Error::MalformedVerifierKey("key ID is not hex"))?;
        let key = b64_decode(key, MAX_VKEY_LEN)
            .ok_or(Error::MalformedVerifierKey("key is not standard base64"))?;
        let Some((&type_id, public_key)) = key.split_first() else {
            return Err(Error::MalformedVerifierKey("key is empty"));
        };
        let computed = key_id(name, type_id, public_key);
        if computed != declared {
            return Err(Error::KeyIdMismatch { declared, computed });
        }
        let sig_type = SignatureType::from_id(type_id)?;
        let public_key = public_key
            .try_into()
            .map_err(|_| Error::MalformedVerifierKey("Ed25519 public key is not 32 bytes"))?;
        Ok(Self {
            name: name.to_owned(),
            key_id: declared,
            sig_type,
            public_key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signature type.
    pub fn signature_type(&self) -> SignatureType {
        self.sig_type
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// Verifies `signature` (without its key ID) over `text`; returns the timestamp of a
    /// cosignature.
    pub(crate) fn verify(&self, text: &str, signature: &[u8]) -> Result<Option<u64>, Error> {
        match self.sig_type {
            SignatureType::Ed25519 => UnparsedPublicKey::new(&ED25519, &self.public_key)
                .verify(text.as_bytes(), signature)
                .map(|()| None)
                .map_err(|_| self.invalid()),
            SignatureType::CosignatureV1 => {
                cosignature::verify_signature(&self.public_key, text, signature)
                    .map(Some)
                    .map_err(|e| match e {
                        Error::TimestampOutOfRange(_) => e,
                        _ => self.invalid(),
                    })
            }
        }
    }

    fn invalid(&self) -> Error {
        Error::InvalidSignature {
            name: self.name.clone(),
            key_id: self.key_id,
        }
    }
}

impl fmt::Display for NoteVerifier {
    /// The vkey string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = Vec::with_capacity(33);
        key.push(self.sig_type.id());
        key.extend_from_slice(&self.public_key);
        write!(f, "{}+{:08x}+{}", self.name, self.key_id, b64_encode(&key))
    }
}

impl FromStr for NoteVerifier {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}
