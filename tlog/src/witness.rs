//! c2sp.org/tlog-witness: the `add-checkpoint` call a log makes to get cosignatures.
//!
//! # HTTP semantics (as the spec gives them)
//!
//! `POST <submission prefix>/add-checkpoint` with the body of an
//! [`AddCheckpointRequest`]: the size of the checkpoint the witness last cosigned for this
//! log (`old <size>`), a consistency proof from that size to the new checkpoint (at most
//! [`MAX_PROOF_LINES`] base64 hashes, none from size 0), a blank line, and the new signed
//! checkpoint (it may carry several signatures). The witness answers:
//!
//! - **200**: the body is one or more cosignature lines (`— <name> <base64>\n`) on the
//!   submitted checkpoint, with a non-zero timestamp; parse them with
//!   [`parse_cosignatures`]. The client ignores lines from keys it does not know: it may
//!   append the lines to its signed checkpoint and [`open`](crate::note::open) the result
//!   with the witness keys it trusts. The witness persisted the checkpoint first.
//! - **400 Bad Request**: the body is malformed, or the old size is larger than the
//!   checkpoint's size.
//! - **403 Forbidden**: no signature by a key the witness trusts for this origin, or a
//!   signature by such a key does not verify (the note is malformed).
//! - **404 Not Found**: the witness does not know the checkpoint's origin.
//! - **409 Conflict**: the old size is not the size the witness last cosigned for this
//!   origin (0 if never). The body is that size in decimal and a newline, with
//!   `Content-Type: text/x.tlog.size` ([`SIZE_CONTENT_TYPE`], [`format_size_body`],
//!   [`parse_size_body`]); the client retries with that old size and a matching proof. A
//!   client that does not know the witness's size may first send `old 0` to learn it.
//! - **422 Unprocessable Entity**: the consistency proof does not verify, a proof was sent
//!   from size 0, the old and new sizes are equal but the roots differ, or a size-0
//!   checkpoint's root is not the empty tree's
//!   ([`verify_consistency`](crate::merkle::verify_consistency) checks all of these).
//!
//! A witness must check the old size and record the new checkpoint atomically, or two
//! concurrent requests can roll its view of the log back. Requests carry no other
//! authentication than the checkpoint's signature.
//!
//! The optional `sign-subtree` call and the monitoring `GET <prefix>/<origin hash>/checkpoint`
//! are not implemented here.

use crate::Error;
use crate::encoding::{b64_encode, b64_hash, parse_decimal};
use crate::merkle::Hash;
use crate::note::{self, MAX_NOTE_LEN, MAX_SIGNATURES, Signature};

/// Most consistency-proof lines a request may carry.
pub const MAX_PROOF_LINES: usize = 63;
/// Content type of a 409 response's body.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";
/// Largest request body accepted: the old size line, a full proof and a signed note.
pub const MAX_REQUEST_LEN: usize = 32 + MAX_PROOF_LINES * 45 + 1 + MAX_NOTE_LEN;
/// Largest 200 response body accepted.
pub const MAX_RESPONSE_LEN: usize = MAX_NOTE_LEN;

/// The body of an `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpointRequest {
    /// Size of the checkpoint the witness last cosigned for this log (0 if none).
    pub old_size: u64,
    /// Consistency proof from `old_size` to the new checkpoint's size.
    pub proof: Vec<Hash>,
    /// The new checkpoint as a signed note (text, blank line, signature lines). Not
    /// verified by [`parse`](Self::parse): the witness opens it with the log's keys.
    pub checkpoint: String,
}

impl AddCheckpointRequest {
    /// The request body.
    pub fn to_body(&self) -> Result<String, Error> {
        if self.proof.len() > MAX_PROOF_LINES {
            return Err(Error::TooManyProofLines {
                got: self.proof.len(),
                max: MAX_PROOF_LINES,
            });
        }
        // Same checks as on reading, so what we send is what a witness accepts.
        note::split_note(&self.checkpoint)?;
        let mut body = format!("old {}\n", self.old_size);
        for hash in &self.proof {
            body.push_str(&b64_encode(hash));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&self.checkpoint);
        Ok(body)
    }

    /// Parses a request body. Errors here are 400 Bad Request. A non-empty proof from
    /// size 0 parses (it is a 422, found by verifying the proof).
    pub fn parse(body: &str) -> Result<Self, Error> {
        if body.len() > MAX_REQUEST_LEN {
            return Err(Error::TooLarge {
                len: body.len(),
                max: MAX_REQUEST_LEN,
            });
        }
        let malformed = Error::MalformedWitnessMessage;
        let Some((first, mut rest)) = body.split_once('\n') else {
            return Err(malformed("no old size line"));
        };
        let old_size = first
            .strip_prefix("old ")
            .and_then(parse_decimal)
            .ok_or(malformed("first line is not `old <size>`"))?;
        let mut proof = Vec::new();
        loop {
            let Some((line, after)) = rest.split_once('\n') else {
                return Err(malformed("no blank line before the checkpoint"));
            };
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(Error::TooManyProofLines {
                    got: MAX_PROOF_LINES + 1,
                    max: MAX_PROOF_LINES,
                });
            }
            proof.push(b64_hash(line).ok_or(malformed(
                "consistency proof line is not a base64 32-byte hash",
            ))?);
        }
        note::split_note(rest)?;
        Ok(Self {
            old_size,
            proof,
            checkpoint: rest.to_owned(),
        })
    }
}

/// The body of a 409 Conflict response: the witness's latest cosigned size.
pub fn format_size_body(size: u64) -> String {
    format!("{size}\n")
}

/// Parses the body of a 409 Conflict response (`text/x.tlog.size`).
pub fn parse_size_body(body: &str) -> Result<u64, Error> {
    body.strip_suffix('\n')
        .and_then(parse_decimal)
        .ok_or(Error::MalformedWitnessMessage(
            "size body is not a decimal and a newline",
        ))
}

/// Formats a 200 response body from cosignature lines (each ending in a newline, as
/// [`Cosigner::cosign`](crate::cosignature::Cosigner::cosign) returns them).
pub fn format_cosignatures(lines: &[String]) -> String {
    lines.concat()
}

/// Parses a 200 response body: one or more signature lines, each ending in a newline.
/// The signatures are not verified: see [`cosignature::verify`](crate::cosignature::verify)
/// or append the lines to the checkpoint and [`open`](crate::note::open) it.
pub fn parse_cosignatures(body: &str) -> Result<Vec<Signature>, Error> {
    if body.len() > MAX_RESPONSE_LEN {
        return Err(Error::TooLarge {
            len: body.len(),
            max: MAX_RESPONSE_LEN,
        });
    }
    let Some(body) = body.strip_suffix('\n') else {
        return Err(Error::MalformedWitnessMessage(
            "response is empty or does not end with a newline",
        ));
    };
    let lines: Vec<&str> = body.split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(Error::MalformedWitnessMessage("more than 100 cosignatures"));
    }
    lines.into_iter().map(Signature::parse_line).collect()
}

#[cfg(test)]
mod tests;
