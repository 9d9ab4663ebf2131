//! The crate's one error type.

/// Everything that can go wrong in this crate. Each variant names what was wrong with the
/// input (or the call) so the caller can decide: reject a peer's message, fix
/// configuration, or report log misbehaviour.
///
/// The `&'static str` details say which rule an input broke; they never echo the input,
/// so they are safe to log even when the input came from an attacker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An input is longer than this crate accepts. Nothing was parsed.
    #[error("input of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },

    // --- Merkle trees -------------------------------------------------------------
    /// A leaf index is not inside the tree (`index >= size`).
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// A proof was asked for a tree larger than the leaves supplied.
    #[error("tree size {size} exceeds the {available} leaf hashes supplied")]
    SizeBeyondLeaves { size: u64, available: u64 },
    /// A consistency proof was asked for or checked from a larger tree to a smaller one.
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizesOutOfOrder { old: u64, new: u64 },
    /// A proof has the wrong number of hashes for the sizes given: it cannot verify.
    #[error("proof has {got} hashes, {want} expected for these sizes")]
    ProofLength { got: usize, want: usize },
    /// A proof has the right shape but does not lead to the expected root(s): the leaf is
    /// not in the tree, or the two trees are not consistent (possible log misbehaviour).
    #[error("proof does not verify against the given root hash")]
    RootMismatch,
    /// The tree already holds `u64::MAX` leaves.
    #[error("the tree is full")]
    TreeFull,
    /// A persisted frontier string is not one this crate wrote.
    #[error("malformed frontier: {0}")]
    MalformedFrontier(&'static str),

    // --- Checkpoints and signed notes -------------------------------------------------
    /// A checkpoint body breaks c2sp.org/tlog-checkpoint.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
    /// A signed note breaks c2sp.org/signed-note (or this crate's size limits).
    #[error("malformed signed note: {0}")]
    MalformedNote(&'static str),
    /// A key name is empty, too long, or contains a space or `+`.
    #[error("invalid key name: {0}")]
    InvalidKeyName(&'static str),
    /// A verifier key string is not `<name>+<hex key ID>+<base64(type || key)>`.
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(&'static str),
    /// A verifier key's key ID is not the one its name, type and public key give.
    #[error("verifier key ID {declared:08x} does not match the computed {computed:08x}")]
    KeyIdMismatch { declared: u32, computed: u32 },
    /// A verifier key or signer uses a signature type this crate does not implement.
    #[error("unsupported signature type 0x{0:02x}")]
    UnsupportedSignatureType(u8),
    /// Two different keys given as verifiers share a name and key ID, so a signature
    /// cannot be attributed: fix the configuration.
    #[error("two different verifier keys are both named {name}+{key_id:08x}")]
    AmbiguousVerifier { name: String, key_id: u32 },
    /// A signature line names a known key but its signature does not verify. The whole
    /// note must be rejected (a witness answers 403).
    #[error("signature by known key {name}+{key_id:08x} does not verify")]
    InvalidSignature { name: String, key_id: u32 },
    /// No signature from any of the given keys is on the note (unknown ones are ignored).
    #[error("no signature from a known key ({unknown} unknown signatures ignored)")]
    NoKnownSignature { unknown: usize },
    /// A signature line was checked against a key that did not make it.
    #[error("signature line is not from key {name}+{key_id:08x}")]
    WrongKey { name: String, key_id: u32 },
    /// An Ed25519 private key (PKCS#8) was rejected.
    #[error("private key rejected: {0}")]
    InvalidPrivateKey(String),
    /// The system random number generator failed while generating a key.
    #[error("the system random number generator failed")]
    Rng,

    // --- Cosignatures ---------------------------------------------------------------------
    /// A cosignature timestamp is above 2^63 - 1, which c2sp.org/tlog-cosignature forbids.
    #[error("cosignature timestamp {0} exceeds 2^63 - 1")]
    TimestampOutOfRange(u64),
    /// A cosignature's bytes are not `timestamp (8) || Ed25519 signature (64)`.
    #[error("malformed cosignature: {0}")]
    MalformedCosignature(&'static str),

    // --- Witness protocol -------------------------------------------------------------------
    /// An add-checkpoint request or response body breaks c2sp.org/tlog-witness (a witness
    /// answers 400 Bad Request).
    #[error("malformed witness message: {0}")]
    MalformedWitnessMessage(&'static str),
    /// An add-checkpoint request carries more consistency-proof lines than allowed.
    #[error("{got} consistency proof lines, at most {max} allowed")]
    TooManyProofLines { got: usize, max: usize },
}
