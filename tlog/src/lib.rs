//! # countersign-tlog
//!
//! The transparency-log core behind Countersign's audit trail: the trail's entries are
//! the leaves of an append-only Merkle tree, the log signs checkpoints of its root, and
//! independent witnesses cosign each checkpoint after checking it extends the last one
//! they saw, so the log cannot show different histories to different readers.
//!
//! Modules, each after its specification:
//!
//! - [`merkle`]: RFC 9162 §2.1 hashing, the Merkle tree root, inclusion and consistency
//!   proofs and their verification, and the [`merkle::Frontier`] a log appends through.
//! - [`checkpoint`]: the c2sp.org/tlog-checkpoint note body (`origin`, size, root).
//! - [`note`]: c2sp.org/signed-note: Ed25519 signing, verifier keys, and
//!   [`note::open`], which verifies a note against the keys a reader trusts.
//! - [`cosignature`]: c2sp.org/tlog-cosignature `cosignature/v1` (Ed25519, timestamped).
//! - [`witness`]: the c2sp.org/tlog-witness `add-checkpoint` request and responses.
//!
//! The crate does no I/O and keeps no clock: callers pass timestamps and move bytes.
//! Every parser is strict (one accepted spelling per value), bounded in the size it
//! reads, and returns [`Error`] rather than panicking, since its inputs come from peers.
//!
//! ```
//! use countersign_tlog::{checkpoint::Checkpoint, merkle, note};
//!
//! let mut log = merkle::Frontier::new();
//! for entry in [b"first".as_slice(), b"second"] {
//!     log.push(merkle::leaf_hash(entry))?;
//! }
//! let checkpoint = Checkpoint::new("example.com/audit", log.size(), log.root())?;
//! let key = note::generate_pkcs8()?;
//! let signer = note::NoteSigner::from_pkcs8("example.com/audit", key.as_bytes())?;
//! let signed = signer.sign(&checkpoint.to_body()?)?;
//!
//! let opened = note::open(&signed, &[signer.verifier()])?;
//! assert_eq!(Checkpoint::parse(&opened.text)?, checkpoint);
//! # Ok::<(), countersign_tlog::Error>(())
//! ```

pub mod checkpoint;
pub mod cosignature;
mod encoding;
mod error;
pub mod merkle;
pub mod note;
pub mod witness;

pub use error::Error;
