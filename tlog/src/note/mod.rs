//! c2sp.org/signed-note: text signed by one or more keys.
//!
//! ```text
//! <text, ending in a newline>
//!
//! — <key name> <base64(key ID (4 bytes, big-endian) || signature)>
//! — ...
//! ```
//!
//! A key is identified by its name and a 4-byte key ID,
//! `SHA-256(name || 0x0A || signature type || public key)[:4]`, and published as a
//! verifier key (vkey) `<name>+<hex key ID>+<base64(signature type || public key)>`.
//!
//! Implemented signature types: `0x01` Ed25519 over the text ([`NoteSigner`]) and `0x04`
//! timestamped Ed25519 cosignatures ([`crate::cosignature`]). Signatures of any other type
//! are carried as unknown signatures, never verified.

mod keys;
#[cfg(test)]
mod tests;

use sha2::{Digest, Sha256};

use crate::Error;
use crate::encoding::{b64_decode, b64_encode};

pub use keys::{NoteSigner, NoteVerifier, Pkcs8Key, generate_pkcs8};
pub(crate) use keys::{keypair_from_pkcs8, public_key_of};

/// Largest signed note accepted (text and signatures).
pub const MAX_NOTE_LEN: usize = 256 * 1024;
/// Most signature lines accepted on one note (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;
/// Longest key name accepted.
pub const MAX_KEY_NAME_LEN: usize = 255;
/// Longest signature line accepted: room for post-quantum signatures of nearly 5 kB.
pub const MAX_SIGNATURE_LINE_LEN: usize = 8 * 1024;
/// Start of every signature line: em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// The signature types this crate can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureType {
    /// `0x01`: Ed25519 over the note text (c2sp.org/signed-note).
    Ed25519,
    /// `0x04`: timestamped Ed25519 cosignature (c2sp.org/tlog-cosignature).
    CosignatureV1,
}

impl SignatureType {
    /// The identifier byte of the type.
    pub fn id(self) -> u8 {
        match self {
            Self::Ed25519 => 0x01,
            Self::CosignatureV1 => 0x04,
        }
    }

    /// The type with identifier byte `id`.
    pub fn from_id(id: u8) -> Result<Self, Error> {
        match id {
            0x01 => Ok(Self::Ed25519),
            0x04 => Ok(Self::CosignatureV1),
            other => Err(Error::UnsupportedSignatureType(other)),
        }
    }
}

/// A key's ID: `SHA-256(name || 0x0A || sig_type || public_key)[:4]`, big-endian.
pub fn key_id(name: &str, sig_type: u8, public_key: &[u8]) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', sig_type])
        .chain_update(public_key)
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Checks a key name: non-empty, at most [`MAX_KEY_NAME_LEN`] bytes, no Unicode space and
/// no `+` (nor any other character a signature line or vkey could not carry).
pub fn check_key_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::InvalidKeyName("empty"));
    }
    if name.len() > MAX_KEY_NAME_LEN {
        return Err(Error::InvalidKeyName("longer than 255 bytes"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidKeyName(
            "contains a space or control character",
        ));
    }
    if name.contains('+') {
        return Err(Error::InvalidKeyName("contains '+'"));
    }
    Ok(())
}

/// Checks the text to be signed: at most [`MAX_NOTE_LEN`] bytes, ending in a newline, with
/// no control character but newlines.
pub(crate) fn check_text(text: &str) -> Result<(), Error> {
    if text.len() > MAX_NOTE_LEN {
        return Err(Error::TooLarge {
            len: text.len(),
            max: MAX_NOTE_LEN,
        });
    }
    if !text.ends_with('\n') {
        return Err(Error::MalformedNote("text does not end with a newline"));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(Error::MalformedNote("contains a control character"));
    }
    Ok(())
}

/// One signature line: `— <name> <base64(key ID || signature)>\n`.
pub(crate) fn format_signature_line(name: &str, key_id: u32, signature: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(4 + signature.len());
    bytes.extend_from_slice(&key_id.to_be_bytes());
    bytes.extend_from_slice(signature);
    format!("{SIGNATURE_PREFIX}{name} {}\n", b64_encode(&bytes))
}

/// One signature line, parsed but not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The key name.
    pub name: String,
    /// The key ID.
    pub key_id: u32,
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

impl Signature {
    /// Parses one signature line (with or without its final newline).
    pub fn parse_line(line: &str) -> Result<Self, Error> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        if line.len() > MAX_SIGNATURE_LINE_LEN {
            return Err(Error::TooLarge {
                len: line.len(),
                max: MAX_SIGNATURE_LINE_LEN,
            });
        }
        let Some(rest) = line.strip_prefix(SIGNATURE_PREFIX) else {
            return Err(Error::MalformedNote(
                "signature line does not start with an em dash and a space",
            ));
        };
        let Some((name, b64)) = rest.split_once(' ') else {
            return Err(Error::MalformedNote("signature line has no signature"));
        };
        check_key_name(name)?;
        let bytes = b64_decode(b64, MAX_SIGNATURE_LINE_LEN)
            .ok_or(Error::MalformedNote("signature is not standard base64"))?;
        match bytes.split_first_chunk::<4>() {
            Some((id, signature)) if !signature.is_empty() => Ok(Self {
                name: name.to_owned(),
                key_id: u32::from_be_bytes(*id),
                signature: signature.to_vec(),
            }),
            _ => Err(Error::MalformedNote("signature is shorter than 5 bytes")),
        }
    }

    /// The signature line, ending in a newline.
    pub fn to_line(&self) -> String {
        format_signature_line(&self.name, self.key_id, &self.signature)
    }
}

/// A signature that [`open`] verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The key name.
    pub name: String,
    /// The key ID.
    pub key_id: u32,
    /// For a cosignature, the time the cosigner signed (Unix seconds). The caller may
    /// reject times in the future.
    pub timestamp: Option<u64>,
    /// The signature line as it was in the note (with its newline), to copy into another
    /// note over the same text.
    pub line: String,
}

/// A note whose signatures [`open`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The note text, with its final newline.
    pub text: String,
    /// The valid signatures by the given keys, once per key, in note order.
    pub verified: Vec<VerifiedSignature>,
    /// Signature lines by keys not given (ignored, as the spec requires).
    pub unknown: usize,
}

/// Splits a signed note into its text and its signature lines (without newlines).
pub(crate) fn split_note(note: &str) -> Result<(&str, Vec<&str>), Error> {
    if note.len() > MAX_NOTE_LEN {
        return Err(Error::TooLarge {
            len: note.len(),
            max: MAX_NOTE_LEN,
        });
    }
    if note.chars().any(|c| c < ' ' && c != '\n') {
        return Err(Error::MalformedNote("contains a control character"));
    }
    let Some(split) = note.rfind("\n\n") else {
        return Err(Error::MalformedNote("no blank line before the signatures"));
    };
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    let Some(sigs) = sigs.strip_suffix('\n') else {
        return Err(Error::MalformedNote(
            "no signature, or the last line does not end with a newline",
        ));
    };
    let lines: Vec<&str> = sigs.split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(Error::MalformedNote("more than 100 signatures"));
    }
    Ok((text, lines))
}

/// Opens a signed note: parses it, verifies every signature by a key in `verifiers`, and
/// counts the others as unknown.
///
/// Fails if the note is malformed, if any signature by a known key does not verify
/// (the spec's SHOULD, taken as a MUST), if no known key signed it, or if two different
/// verifiers share a name and key ID. Only then is `text` to be trusted.
pub fn open(note: &str, verifiers: &[NoteVerifier]) -> Result<Opened, Error> {
    for (i, a) in verifiers.iter().enumerate() {
        if let Some(b) = verifiers[i + 1..]
            .iter()
            .find(|b| b.name == a.name && b.key_id == a.key_id)
            && b != a
        {
            return Err(Error::AmbiguousVerifier {
                name: a.name.clone(),
                key_id: a.key_id,
            });
        }
    }
    let (text, lines) = split_note(note)?;
    let mut verified: Vec<VerifiedSignature> = Vec::new();
    let mut unknown = 0;
    for line in lines {
        let sig = Signature::parse_line(line)?;
        let Some(v) = verifiers
            .iter()
            .find(|v| v.name == sig.name && v.key_id == sig.key_id)
        else {
            unknown += 1;
            continue;
        };
        // Every signature by a known key is checked, repeated ones too.
        let timestamp = v.verify(text, &sig.signature)?;
        if !verified
            .iter()
            .any(|s| s.name == sig.name && s.key_id == sig.key_id)
        {
            verified.push(VerifiedSignature {
                name: sig.name,
                key_id: sig.key_id,
                timestamp,
                line: format!("{line}\n"),
            });
        }
    }
    if verified.is_empty() {
        return Err(Error::NoKnownSignature { unknown });
    }
    Ok(Opened {
        text: text.to_owned(),
        verified,
        unknown,
    })
}
