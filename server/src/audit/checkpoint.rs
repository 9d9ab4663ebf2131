//! Signed checkpoints of the audit trail. The chain alone shows an edited, inserted,
//! reordered or deleted event, but someone who can write the database could cut off the
//! newest events and rewrite the head row to match. A checkpoint is the server's signed
//! statement of the trail's Merkle tree (`super::log`) at some size, taken periodically
//! and handed out of the database (`super::sinks`); `audit verify` checks the ones kept
//! in the database, and `audit verify --checkpoint` one held anywhere else.
//!
//! Checkpoints written before the trail was a Merkle log are JWS over `{seq, hash}` by
//! the server's credential key (`audit-checkpoint+jwt`); they are still checked.

use countersign_jose::{JwkSet, UnverifiedJws};
use countersign_tlog::checkpoint::Checkpoint;
use countersign_tlog::merkle::Frontier;
use countersign_tlog::note::{self, NoteVerifier};
use serde::{Deserialize, Serialize};

use super::log::{AuditLog, LogError, b64, leaf_of};
use super::sinks::Publishing;
use crate::store::log_checkpoints::LogCheckpointRecord;
use crate::store::{Store, StoreError};

pub const CHECKPOINT_TYP: &str = "audit-checkpoint+jwt";

/// The claims of a legacy JWS checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointClaims {
    pub iss: String,
    pub seq: i64,
    pub hash: String,
    pub iat: i64,
}

/// Signs a checkpoint of the trail if it grew since the last one and hands it to the
/// configured sinks; returns its size when one was written.
pub async fn sign_head(log: &AuditLog, to: &Publishing<'_>) -> Result<Option<i64>, LogError> {
    let Some(record) = log.sign(to.store, to.clock.now_ms()).await? else {
        return Ok(None);
    };
    super::sinks::publish(to, &record).await;
    Ok(Some(record.size))
}

/// Checks the log checkpoints kept in the database as the trail is read: each is signed
/// by the log's key and its root is the tree of the trail's first `size` events.
pub struct LogCheckpointCheck {
    checkpoints: Vec<LogCheckpointRecord>,
    next: usize,
    frontier: Frontier,
    origin: String,
    pub verified: i64,
    /// The first checkpoint the trail contradicts (its size), and why.
    pub broken: Option<(i64, String)>,
}

impl LogCheckpointCheck {
    pub async fn new(store: &Store, origin: &str) -> Result<Self, StoreError> {
        Ok(Self {
            checkpoints: store.log_checkpoints().await?,
            next: 0,
            frontier: Frontier::new(),
            origin: origin.to_owned(),
            verified: 0,
            broken: None,
        })
    }

    /// Signatures first (they need no trail).
    pub fn check_signatures(&mut self, verifier: &NoteVerifier) {
        for c in &self.checkpoints {
            let signed = note::open(&c.note, std::slice::from_ref(verifier))
                .ok()
                .and_then(|o| Checkpoint::parse(&o.text).ok());
            let ok = signed.is_some_and(|cp| {
                cp.origin == self.origin
                    && i64::try_from(cp.size).ok() == Some(c.size)
                    && b64(&cp.root) == c.root
            });
            if !ok {
                self.broken.get_or_insert((
                    c.size,
                    format!(
                        "log checkpoint {} is not signed by this log's key as stored",
                        c.size
                    ),
                ));
            }
        }
    }

    /// The trail's next event (`seq`, chain hash `hash`).
    pub fn see(&mut self, seq: i64, hash: &str) {
        if self.broken.is_some() {
            return;
        }
        let pushed = leaf_of(hash).ok().and_then(|l| self.frontier.push(l).ok());
        if pushed.is_none() || i64::try_from(self.frontier.size()).ok() != Some(seq) {
            self.broken = Some((seq, format!("event {seq} cannot be read as a log leaf")));
            return;
        }
        while let Some(c) = self.checkpoints.get(self.next).filter(|c| c.size == seq) {
            if b64(&self.frontier.root()) == c.root {
                self.verified += 1;
            } else {
                self.broken = Some((
                    c.size,
                    format!(
                        "the trail's first {} events differ from the signed log checkpoint",
                        c.size
                    ),
                ));
            }
            self.next += 1;
        }
    }

    /// After the whole trail was seen: checkpoints past its end mean events were cut off.
    pub fn finish(&mut self, events: i64) {
        if let Some(c) = self.checkpoints.iter().find(|c| c.size > events) {
            self.broken.get_or_insert((
                events + 1,
                format!(
                    "a signed log checkpoint commits to {} events but the trail holds {events}",
                    c.size
                ),
            ));
        }
    }
}

/// What checking the checkpoints found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointCheck {
    pub verified: i64,
    /// Signed by a key the server no longer publishes.
    pub unverifiable: i64,
    /// The first checkpoint the trail contradicts, and why.
    pub broken: Option<(i64, String)>,
}

/// Checks every checkpoint against `hash_at` (the trail's hash of event `seq`, `None` when
/// the trail has no such event), with the signatures checked against `jwks`.
pub async fn check(
    store: &Store,
    jwks: &JwkSet,
    hash_at: impl Fn(i64) -> Option<String>,
) -> Result<CheckpointCheck, StoreError> {
    let mut out = CheckpointCheck::default();
    for c in store.audit_checkpoints().await? {
        let Ok(jws) = UnverifiedJws::parse(&c.jws) else {
            out.broken
                .get_or_insert((c.seq, "a checkpoint is not a JWS".into()));
            continue;
        };
        let known = jws
            .header
            .kid
            .as_ref()
            .is_some_and(|kid| jwks.keys.iter().any(|k| k.kid.as_ref() == Some(kid)));
        if !known {
            out.unverifiable += 1;
            continue;
        }
        let claims: CheckpointClaims = match jws.verify_with_set(jwks) {
            Ok(claims) => claims,
            Err(e) => {
                out.broken
                    .get_or_insert((c.seq, format!("checkpoint {}'s signature: {e}", c.seq)));
                continue;
            }
        };
        if claims.seq != c.seq || claims.hash != c.hash {
            out.broken.get_or_insert((
                c.seq,
                format!("checkpoint {} was altered after signing", c.seq),
            ));
            continue;
        }
        match hash_at(c.seq) {
            Some(h) if h == claims.hash => out.verified += 1,
            Some(_) => {
                out.broken.get_or_insert((
                    c.seq,
                    format!("event {} differs from the signed checkpoint", c.seq),
                ));
            }
            None => {
                out.broken.get_or_insert((
                    c.seq,
                    format!(
                        "event {} was signed in a checkpoint but is no longer in the trail",
                        c.seq
                    ),
                ));
            }
        }
    }
    Ok(out)
}
