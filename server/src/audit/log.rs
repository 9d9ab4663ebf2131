//! The audit trail as a transparency log. The hash chain shows any edit inside the trail,
//! but whoever can write the database can cut off its newest events and rewrite the head
//! (and any checkpoint kept in the same database) to match. So the trail is also a Merkle
//! tree (RFC 9162 hashing): leaf `i` is event `seq = i + 1`, its leaf data the event's
//! chain hash (32 bytes, which commits to every field and to the event before). The
//! server signs checkpoints of the tree (c2sp.org/tlog-checkpoint, as Ed25519 signed
//! notes) and hands them out of the database: served at a well-known URL, pushed to
//! configured sinks (a file, syslog, HTTP witnesses). Against any checkpoint held
//! elsewhere, `countersign audit verify --checkpoint` proves the current trail extends it
//! (a consistency proof), and `countersign audit prove` gives an auditor an inclusion
//! proof of one event, checkable offline.

use countersign_tlog::checkpoint::Checkpoint;
use countersign_tlog::merkle::{self, Frontier, Hash};
use countersign_tlog::note::{self, NoteSigner, NoteVerifier, Pkcs8Key};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::log_checkpoints::LogCheckpointRecord;
use crate::store::{Store, StoreError};

/// Events read per page while building the tree.
const PAGE: i64 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The trail cannot be read as a log (a missing event, a hash that is not one).
    #[error("the audit trail is not a well-formed log: {0}")]
    Malformed(String),
    /// A checkpoint, note or proof is not what it claims to be.
    #[error("{0}")]
    Refused(String),
    /// No signed checkpoint covers what was asked for yet.
    #[error("{0}")]
    NotYet(String),
}

impl From<countersign_tlog::Error> for LogError {
    fn from(e: countersign_tlog::Error) -> Self {
        LogError::Refused(e.to_string())
    }
}

/// The log's identity (its origin, which is also its key's name) and signing key, and the
/// tree of the events this process has read so far.
pub struct AuditLog {
    signer: NoteSigner,
    frontier: tokio::sync::Mutex<Frontier>,
}

/// The log's origin for `issuer`: the issuer without its scheme, plus `/audit`
/// (`https://auth.example.com` → `auth.example.com/audit`).
pub fn origin_of(issuer: &str) -> String {
    let bare = issuer
        .split_once("://")
        .map_or(issuer, |(_, rest)| rest)
        .trim_end_matches('/');
    format!("{bare}/audit")
}

impl AuditLog {
    /// The log named `origin` (see [`origin_of`]), signing with `key`.
    pub fn new(origin: &str, key: &Pkcs8Key) -> Result<Self, String> {
        let signer = NoteSigner::from_pkcs8(origin, key.as_bytes())
            .map_err(|e| format!("the audit log key: {e}"))?;
        Ok(Self {
            signer,
            frontier: tokio::sync::Mutex::new(Frontier::new()),
        })
    }

    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// The key auditors and witnesses verify checkpoints with.
    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    /// Signs a checkpoint of the whole trail when it grew since the newest one; returns
    /// it when one was written.
    pub async fn sign(
        &self,
        store: &Store,
        now_ms: i64,
    ) -> Result<Option<LogCheckpointRecord>, LogError> {
        let head = store.audit_head().await?;
        let size = u64::try_from(head.seq).unwrap_or_default();
        if size == 0 {
            return Ok(None);
        }
        if store
            .latest_log_checkpoint()
            .await?
            .is_some_and(|c| c.size >= head.seq)
        {
            return Ok(None);
        }
        let mut frontier = self.frontier.lock().await;
        if frontier.size() > size {
            // The trail is shorter than what this process read: start over from it
            // (what it holds now is what gets signed, and what witnesses will refuse).
            *frontier = Frontier::new();
        }
        extend(store, &mut frontier, size).await?;
        let checkpoint = Checkpoint::new(self.origin(), size, frontier.root())?;
        let note = self.signer.sign(&checkpoint.to_body()?)?;
        let record = LogCheckpointRecord {
            size: head.seq,
            root: b64(&checkpoint.root),
            at: now_ms,
            note,
        };
        store.insert_log_checkpoint(&record).await?;
        Ok(Some(record))
    }
}

/// The leaf hash of an event whose chain hash is `hex`.
pub fn leaf_of(hex: &str) -> Result<Hash, LogError> {
    let bytes = decode_hex(hex)
        .ok_or_else(|| LogError::Malformed(format!("{hex:?} is not a SHA-256 hash")))?;
    Ok(merkle::leaf_hash(&bytes))
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

pub fn b64(hash: &Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(hash)
}

fn unb64(text: &str) -> Result<Hash, LogError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .and_then(|b| Hash::try_from(b.as_slice()).ok())
        .ok_or_else(|| LogError::Refused(format!("{text:?} is not a base64 SHA-256 hash")))
}

/// Reads events after the frontier's size up to `size` into it.
async fn extend(store: &Store, frontier: &mut Frontier, size: u64) -> Result<(), LogError> {
    while frontier.size() < size {
        let after = i64::try_from(frontier.size()).unwrap_or(i64::MAX);
        let want = i64::try_from(size - frontier.size())
            .unwrap_or(PAGE)
            .min(PAGE);
        let page = store.audit_hashes_after(after, want).await?;
        if page.is_empty() {
            return Err(LogError::Malformed(format!(
                "the trail ends at event {after}, before {size}"
            )));
        }
        for (seq, hash) in page {
            let expected = frontier.size() + 1;
            if u64::try_from(seq).ok() != Some(expected) {
                return Err(LogError::Malformed(format!("event {expected} is missing")));
            }
            frontier.push(leaf_of(&hash)?)?;
        }
    }
    Ok(())
}

/// The leaf hashes of the first `size` events.
pub async fn leaves(store: &Store, size: u64) -> Result<Vec<Hash>, LogError> {
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
    let mut after = 0i64;
    while (out.len() as u64) < size {
        let want = i64::try_from(size - out.len() as u64)
            .unwrap_or(PAGE)
            .min(PAGE);
        let page = store.audit_hashes_after(after, want).await?;
        if page.is_empty() {
            break;
        }
        for (seq, hash) in page {
            if seq != after + 1 {
                return Err(LogError::Malformed(format!(
                    "event {} is missing",
                    after + 1
                )));
            }
            out.push(leaf_of(&hash)?);
            after = seq;
        }
    }
    Ok(out)
}

/// Whether the current trail extends a checkpoint held elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Extension {
    /// True when the checkpoint is signed by this log and the trail extends it.
    pub extends: bool,
    pub checkpoint_size: u64,
    /// Base64, as in the checkpoint.
    pub checkpoint_root: String,
    pub log_size: u64,
    pub log_root: String,
    /// RFC 9162 consistency proof from the checkpoint's tree to the current one (base64
    /// hashes); empty when the trail does not extend it.
    pub consistency_proof: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Checks that the trail now in `store` extends the checkpoint `note`, which must be
/// signed by one of `verifiers` (the log's key): it has at least as many events, the tree
/// of its first `size` events has the checkpoint's root, and a consistency proof from
/// that tree to the current one verifies.
pub async fn extends(
    store: &Store,
    origin: &str,
    note: &str,
    verifiers: &[NoteVerifier],
) -> Result<Extension, LogError> {
    let opened = note::open(note, verifiers)
        .map_err(|e| LogError::Refused(format!("the checkpoint's signature: {e}")))?;
    let checkpoint = Checkpoint::parse(&opened.text)?;
    if checkpoint.origin != origin {
        return Err(LogError::Refused(format!(
            "the checkpoint is of log {:?}, not this one ({origin:?})",
            checkpoint.origin
        )));
    }
    let head = store.audit_head().await?;
    let all = leaves(store, u64::try_from(head.seq).unwrap_or_default()).await?;
    let log_size = all.len() as u64;
    let log_root = merkle::root(&all);
    let mut report = Extension {
        extends: false,
        checkpoint_size: checkpoint.size,
        checkpoint_root: b64(&checkpoint.root),
        log_size,
        log_root: b64(&log_root),
        consistency_proof: Vec::new(),
        reason: None,
    };
    if log_size < checkpoint.size {
        report.reason = Some(format!(
            "the trail holds {log_size} events but a checkpoint held elsewhere commits to {}: events were removed",
            checkpoint.size
        ));
        return Ok(report);
    }
    let size = usize::try_from(checkpoint.size).unwrap_or(usize::MAX);
    let old_root = merkle::root(all.get(..size).unwrap_or(&all));
    if old_root != checkpoint.root {
        report.reason = Some(format!(
            "the first {} events are not those the checkpoint signed: the trail was rewritten (or forked)",
            checkpoint.size
        ));
        return Ok(report);
    }
    let proof = merkle::consistency_proof(&all, checkpoint.size, log_size)?;
    merkle::verify_consistency(
        checkpoint.size,
        log_size,
        &checkpoint.root,
        &log_root,
        &proof,
    )?;
    report.consistency_proof = proof.iter().map(b64).collect();
    report.extends = true;
    Ok(report)
}

/// One event, as stored and hashed (its `detail` the exact JSON text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProvenEvent {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// That an event is in the log: everything an auditor needs to check it offline with the
/// log's verifier key alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InclusionProof {
    pub event: ProvenEvent,
    /// `seq - 1`.
    pub leaf_index: u64,
    pub tree_size: u64,
    /// Base64 root of the tree the proof is for.
    pub root: String,
    /// RFC 9162 audit path, base64.
    pub proof: Vec<String>,
    /// The signed checkpoint of that tree (signed note).
    pub checkpoint: String,
    /// The log's verifier key (c2sp.org/signed-note vkey), for convenience: an auditor
    /// should use a copy obtained independently.
    pub verifier_key: String,
}

/// An inclusion proof of event `seq` in the smallest signed checkpoint covering it.
pub async fn prove(store: &Store, log: &AuditLog, seq: i64) -> Result<InclusionProof, LogError> {
    let event = store
        .audit_events_after(seq - 1, 1)
        .await?
        .into_iter()
        .find(|e| e.seq == seq)
        .ok_or_else(|| LogError::NotYet(format!("event {seq} is not in the trail")))?;
    let checkpoint = store.log_checkpoint_covering(seq).await?.ok_or_else(|| {
        LogError::NotYet(format!(
            "no signed checkpoint covers event {seq} yet (run `countersign audit checkpoint`)"
        ))
    })?;
    let size = u64::try_from(checkpoint.size).unwrap_or_default();
    let all = leaves(store, size).await?;
    let index = u64::try_from(seq - 1).unwrap_or_default();
    let proof = merkle::inclusion_proof(&all, index, size)?;
    Ok(InclusionProof {
        event: ProvenEvent {
            seq: event.seq,
            at: event.at,
            actor: event.actor,
            kind: event.kind,
            subject: event.subject,
            detail: event.detail,
            prev_hash: event.prev_hash,
            hash: event.hash,
        },
        leaf_index: index,
        tree_size: size,
        root: checkpoint.root,
        proof: proof.iter().map(b64).collect(),
        checkpoint: checkpoint.note,
        verifier_key: log.verifier().to_string(),
    })
}

/// Checks `proof` offline with the log's verifier key `vkey`: the checkpoint is signed by
/// it and names the proof's tree, the event's fields hash to its hash, and the audit path
/// leads from its leaf to the signed root.
pub fn check_inclusion(proof: &InclusionProof, vkey: &str) -> Result<(), LogError> {
    let verifier = NoteVerifier::parse(vkey)?;
    let opened = note::open(&proof.checkpoint, &[verifier])
        .map_err(|e| LogError::Refused(format!("the checkpoint's signature: {e}")))?;
    let checkpoint = Checkpoint::parse(&opened.text)?;
    if checkpoint.size != proof.tree_size || b64(&checkpoint.root) != proof.root {
        return Err(LogError::Refused(
            "the proof is not for the tree its checkpoint signs".into(),
        ));
    }
    let e = &proof.event;
    let hash = crate::store::audit::event_hash(
        e.seq,
        e.at,
        &e.actor,
        &e.kind,
        &e.subject,
        &e.detail,
        &e.prev_hash,
    );
    if hash != e.hash {
        return Err(LogError::Refused(
            "the event's fields do not hash to its hash".into(),
        ));
    }
    if u64::try_from(e.seq - 1).ok() != Some(proof.leaf_index) {
        return Err(LogError::Refused(
            "the leaf index is not the event's".into(),
        ));
    }
    let path: Vec<Hash> = proof
        .proof
        .iter()
        .map(|h| unb64(h))
        .collect::<Result<_, _>>()?;
    merkle::verify_inclusion(
        &leaf_of(&e.hash)?,
        proof.leaf_index,
        proof.tree_size,
        &path,
        &checkpoint.root,
    )
    .map_err(|e| {
        LogError::Refused(format!(
            "the audit path does not lead to the signed root: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_leaves() {
        assert_eq!(
            origin_of("https://auth.example.com"),
            "auth.example.com/audit"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080/"), "127.0.0.1:8080/audit");
        assert_eq!(
            origin_of("https://x.example/tenant"),
            "x.example/tenant/audit"
        );
        let hex = "ab".repeat(32);
        assert_eq!(leaf_of(&hex).unwrap(), merkle::leaf_hash(&[0xab; 32]));
        for bad in ["ab", "genesis", &"zz".repeat(32)] {
            assert!(leaf_of(bad).is_err(), "{bad}");
        }
    }
}
