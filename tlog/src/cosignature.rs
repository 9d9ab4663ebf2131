//! c2sp.org/tlog-cosignature, the Ed25519 `cosignature/v1` type (signature type `0x04`).
//!
//! A cosignature is a note signature line on a checkpoint by a witness (cosigner). Its
//! bytes after the key ID are `timestamp (u64, big-endian) || Ed25519 signature (64)`, and
//! the signed message is
//!
//! ```text
//! cosignature/v1\n
//! time <timestamp, decimal>\n
//! <the checkpoint body, extension lines included>
//! ```
//!
//! It states that, at that time, this checkpoint was the largest consistent tree head the
//! witness had seen for the origin. The message does not commit to the cosigner's name, so
//! one Ed25519 key must serve one cosigner only. The key ID is computed with type `0x04`,
//! so the same key used as a `0x01` note key has another ID.
//!
//! The ML-DSA-44 (`0x06`, subtree) cosignature type is not implemented: such lines are
//! unknown signatures to [`note::open`](crate::note::open).

use std::fmt;

use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};

use crate::Error;
use crate::checkpoint::Checkpoint;
use crate::note::{
    NoteVerifier, Signature, SignatureType, check_text, format_signature_line, keypair_from_pkcs8,
    public_key_of,
};

/// The first line of the signed message (without its newline).
pub const HEADER: &str = "cosignature/v1";
/// Largest timestamp allowed: 2^63 - 1.
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;
/// Bytes of a cosignature after the key ID.
const SIGNATURE_LEN: usize = 8 + 64;

/// The message a cosigner signs for `text` (a checkpoint body) at `timestamp`.
pub fn signed_message(timestamp: u64, text: &str) -> Result<String, Error> {
    if timestamp > MAX_TIMESTAMP {
        return Err(Error::TimestampOutOfRange(timestamp));
    }
    Ok(format!("{HEADER}\ntime {timestamp}\n{text}"))
}

/// The timestamp of a cosignature: its bytes after the key ID.
pub fn timestamp(signature: &[u8]) -> Result<u64, Error> {
    let Some((ts, sig)) = signature.split_first_chunk::<8>() else {
        return Err(Error::MalformedCosignature("shorter than 8 bytes"));
    };
    if sig.len() != 64 {
        return Err(Error::MalformedCosignature(
            "not an 8-byte timestamp and a 64-byte Ed25519 signature",
        ));
    }
    let ts = u64::from_be_bytes(*ts);
    if ts > MAX_TIMESTAMP {
        return Err(Error::TimestampOutOfRange(ts));
    }
    Ok(ts)
}

/// Verifies cosignature bytes (after the key ID) over `text` with an Ed25519 public key,
/// returning the timestamp.
pub(crate) fn verify_signature(
    public_key: &[u8; 32],
    text: &str,
    signature: &[u8],
) -> Result<u64, Error> {
    let ts = timestamp(signature)?;
    let message = signed_message(ts, text)?;
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message.as_bytes(), &signature[8..])
        .map_err(|_| Error::MalformedCosignature("signature does not verify"))?;
    Ok(ts)
}

/// Checks one cosignature line (as a witness returns it) on `checkpoint` against the
/// witness key `witness` (a [`SignatureType::CosignatureV1`] verifier), returning its
/// timestamp. A line by another key is [`Error::WrongKey`]; a line by this key that does
/// not verify is [`Error::InvalidSignature`].
pub fn verify(line: &str, checkpoint: &Checkpoint, witness: &NoteVerifier) -> Result<u64, Error> {
    let sig = Signature::parse_line(line)?;
    if witness.signature_type() != SignatureType::CosignatureV1
        || sig.name != witness.name()
        || sig.key_id != witness.key_id()
    {
        return Err(Error::WrongKey {
            name: witness.name().to_owned(),
            key_id: witness.key_id(),
        });
    }
    let body = checkpoint.to_body()?;
    witness
        .verify(&body, &sig.signature)?
        .ok_or(Error::MalformedCosignature("not a cosignature key"))
}

/// A witness's signing key (for a test witness, or a log that is its own witness).
pub struct Cosigner {
    verifier: NoteVerifier,
    key: Ed25519KeyPair,
}

impl fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cosigner({}+{:08x}, ***)", self.name(), self.key_id())
    }
}

impl Cosigner {
    /// A cosigner named `name` with a PKCS#8 Ed25519 key (see
    /// [`note::generate_pkcs8`](crate::note::generate_pkcs8)). Use a key of its own: not
    /// one that also signs notes or serves another cosigner.
    pub fn from_pkcs8(name: &str, pkcs8: &[u8]) -> Result<Self, Error> {
        Self::from_keypair(name, keypair_from_pkcs8(pkcs8)?)
    }

    pub(crate) fn from_keypair(name: &str, key: Ed25519KeyPair) -> Result<Self, Error> {
        let verifier = NoteVerifier::new(name, SignatureType::CosignatureV1, public_key_of(&key))?;
        Ok(Self { verifier, key })
    }

    /// The cosigner's name.
    pub fn name(&self) -> &str {
        self.verifier.name()
    }

    /// The key ID (type `0x04`).
    pub fn key_id(&self) -> u32 {
        self.verifier.key_id()
    }

    /// The verifier to give log clients (its vkey via `to_string()`).
    pub fn verifier(&self) -> NoteVerifier {
        self.verifier.clone()
    }

    /// The cosignature line (ending in a newline) for `checkpoint` at `timestamp` (Unix
    /// seconds, not 0 in a witness response).
    pub fn cosign(&self, checkpoint: &Checkpoint, timestamp: u64) -> Result<String, Error> {
        let body = checkpoint.to_body()?;
        check_text(&body)?;
        let message = signed_message(timestamp, &body)?;
        let sig = self.key.sign(message.as_bytes());
        let mut bytes = Vec::with_capacity(SIGNATURE_LEN);
        bytes.extend_from_slice(&timestamp.to_be_bytes());
        bytes.extend_from_slice(sig.as_ref());
        Ok(format_signature_line(self.name(), self.key_id(), &bytes))
    }
}

#[cfg(test)]
mod tests;
