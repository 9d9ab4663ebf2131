//! RFC 9162 §2.1 Merkle tree hashing, inclusion and consistency proofs.
//!
//! Leaves are hashed as `SHA-256(0x00 || data)` and interior nodes as
//! `SHA-256(0x01 || left || right)`; the root of the empty tree is `SHA-256("")`. A tree of
//! `n > 1` leaves splits at `k`, the largest power of two below `n`.
//!
//! Proof generation takes every leaf hash of the tree (`O(n)` hashing per proof); the
//! [`Frontier`] keeps only the right edge (`O(log n)` hashes) so a log can append leaves
//! and sign new roots without holding the tree in memory.

mod frontier;
#[cfg(test)]
mod tests;

use sha2::{Digest, Sha256};

use crate::Error;

pub use frontier::Frontier;

/// A SHA-256 hash: a leaf hash, an interior node or a tree root.
pub type Hash = [u8; 32];

/// Root of the empty tree: `SHA-256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Hash of a leaf's data: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// Hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly below `n` (`n >= 2`): where MTH splits a tree.
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// Merkle Tree Hash (RFC 9162 §2.1.1) over leaf hashes already computed.
pub fn root(leaf_hashes: &[Hash]) -> Hash {
    match leaf_hashes {
        [] => EMPTY_ROOT,
        [only] => *only,
        _ => {
            let k = split(leaf_hashes.len());
            node_hash(&root(&leaf_hashes[..k]), &root(&leaf_hashes[k..]))
        }
    }
}

/// The first `size` leaves, or an error if fewer were given.
fn prefix(leaves: &[Hash], size: u64) -> Result<&[Hash], Error> {
    let available = leaves.len() as u64;
    match usize::try_from(size) {
        Ok(n) if n <= leaves.len() => Ok(&leaves[..n]),
        _ => Err(Error::SizeBeyondLeaves { size, available }),
    }
}

/// Inclusion proof (RFC 9162 §2.1.3.1, `PATH`) of leaf `index` in the tree made of the
/// first `size` of `leaves`, from the leaf's sibling up to the root's child.
pub fn inclusion_proof(leaves: &[Hash], index: u64, size: u64) -> Result<Vec<Hash>, Error> {
    let tree = prefix(leaves, size)?;
    let m = usize::try_from(index)
        .ok()
        .filter(|m| *m < tree.len())
        .ok_or(Error::IndexOutOfRange { index, size })?;
    let mut proof = Vec::with_capacity(inclusion_proof_len(index, size));
    path(m, tree, &mut proof);
    Ok(proof)
}

fn path(m: usize, tree: &[Hash], out: &mut Vec<Hash>) {
    if tree.len() <= 1 {
        return;
    }
    let k = split(tree.len());
    if m < k {
        path(m, &tree[..k], out);
        out.push(root(&tree[k..]));
    } else {
        path(m - k, &tree[k..], out);
        out.push(root(&tree[..k]));
    }
}

/// Consistency proof (RFC 9162 §2.1.4.1, `PROOF(m, D[n])`) that the tree of the first
/// `old` leaves is a prefix of the tree of the first `new`. Empty when `old == new` or
/// `old == 0` (the empty tree is consistent with every tree; c2sp.org/tlog-witness sends
/// no proof from size 0).
pub fn consistency_proof(leaves: &[Hash], old: u64, new: u64) -> Result<Vec<Hash>, Error> {
    if old > new {
        return Err(Error::SizesOutOfOrder { old, new });
    }
    let tree = prefix(leaves, new)?;
    let mut proof = Vec::new();
    if old != 0 && old != new {
        // old < new <= leaves.len(), so old fits in usize.
        subproof(old as usize, tree, true, &mut proof);
    }
    Ok(proof)
}

fn subproof(m: usize, tree: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    if m == tree.len() {
        if !complete {
            out.push(root(tree));
        }
        return;
    }
    let k = split(tree.len());
    if m <= k {
        subproof(m, &tree[..k], complete, out);
        out.push(root(&tree[k..]));
    } else {
        subproof(m - k, &tree[k..], false, out);
        out.push(root(&tree[..k]));
    }
}

/// Hashes on the path of leaf `index` of a tree of `size` leaves below the point where
/// the path leaves the left-aligned part (`inner`), and the border hashes above (`border`).
fn decompose(index: u64, size: u64) -> (usize, usize) {
    let inner = (u64::BITS - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    (inner, border)
}

/// Number of hashes in an inclusion proof for `index < size`.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let (inner, border) = decompose(index, size);
    inner + border
}

/// Number of hashes in a consistency proof for `0 < old < new`.
fn consistency_proof_len(old: u64, new: u64) -> usize {
    let (inner, border) = decompose(old - 1, new);
    let inner = inner.saturating_sub(old.trailing_zeros() as usize);
    inner + border + usize::from(!old.is_power_of_two())
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2): that `leaf` (a leaf hash) is leaf
/// `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), Error> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    let want = inclusion_proof_len(index, size);
    if proof.len() != want {
        return Err(Error::ProofLength {
            got: proof.len(),
            want,
        });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(Error::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && r == *root {
        Ok(())
    } else {
        Err(Error::RootMismatch)
    }
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2): that the tree of `old_size` leaves
/// with root `old_root` is a prefix of the tree of `new_size` leaves with root `new_root`.
///
/// Edge cases, as c2sp.org/tlog-witness needs them: `old_size > new_size` is an error;
/// `old_size == new_size` needs an empty proof and equal roots; `old_size == 0` needs an
/// empty proof and `old_root == EMPTY_ROOT` (and says nothing about `new_root` unless
/// `new_size` is 0 too, when it must also be [`EMPTY_ROOT`]).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), Error> {
    if old_size > new_size {
        return Err(Error::SizesOutOfOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(Error::ProofLength {
                got: proof.len(),
                want: 0,
            });
        }
        let empty_ok = old_size != 0 || *old_root == EMPTY_ROOT;
        let same_ok = old_size != new_size || old_root == new_root;
        return if empty_ok && same_ok {
            Ok(())
        } else {
            Err(Error::RootMismatch)
        };
    }
    let want = consistency_proof_len(old_size, new_size);
    if proof.len() != want {
        return Err(Error::ProofLength {
            got: proof.len(),
            want,
        });
    }
    // When old_size is a power of two its root is a node of the new tree and the proof
    // leaves it out: start from it.
    let (first, rest) = match proof.split_first() {
        Some(_) if old_size.is_power_of_two() => (old_root, proof),
        Some((first, rest)) => (first, rest),
        None => return Err(Error::ProofLength { got: 0, want }),
    };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return Err(Error::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && fr == *old_root && sr == *new_root {
        Ok(())
    } else {
        Err(Error::RootMismatch)
    }
}
