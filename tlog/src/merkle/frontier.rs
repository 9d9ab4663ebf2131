//! The right edge of a Merkle tree: enough to append leaves and compute the root.

use std::fmt;
use std::str::FromStr;

use super::{EMPTY_ROOT, Hash, node_hash};
use crate::Error;
use crate::encoding::{b64_encode, b64_hash, parse_decimal};

/// Longest persisted form: a 20-digit size and 64 base64 hashes, space-separated.
const MAX_ENCODED_LEN: usize = 20 + 64 * 45;

/// The compact range `[0, size)` of a log: the roots of the perfect subtrees that the
/// binary expansion of `size` cuts the tree into, largest (leftmost) first. It holds one
/// hash per set bit of `size`, so at most 64.
///
/// A log appends with [`push`](Self::push), signs [`root`](Self::root) in a checkpoint,
/// and persists the frontier as the short string of its [`Display`](fmt::Display) form
/// (`"<size> <base64 hash> ..."`), read back with [`FromStr`]. After reading it back,
/// compare its root with the last signed checkpoint's before appending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, largest first (one per set bit of [`size`](Self::size)).
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends a leaf (its [`leaf_hash`](super::leaf_hash)) and returns its index.
    pub fn push(&mut self, leaf_hash: Hash) -> Result<u64, Error> {
        let index = self.size;
        let size = index.checked_add(1).ok_or(Error::TreeFull)?;
        // Each trailing one bit of the old size is a subtree of the same height as the
        // node being carried: merge them, as in binary addition.
        let mut carry = leaf_hash;
        let mut bits = index;
        while bits & 1 == 1 {
            let Some(left) = self.nodes.pop() else {
                return Err(Error::MalformedFrontier("fewer nodes than the size needs"));
            };
            carry = node_hash(&left, &carry);
            bits >>= 1;
        }
        self.nodes.push(carry);
        self.size = size;
        Ok(index)
    }

    /// Root of the tree of [`size`](Self::size) leaves ([`EMPTY_ROOT`] when empty).
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return EMPTY_ROOT;
        };
        nodes.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

impl fmt::Display for Frontier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.size)?;
        for node in &self.nodes {
            write!(f, " {}", b64_encode(node))?;
        }
        Ok(())
    }
}

impl FromStr for Frontier {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.len() > MAX_ENCODED_LEN {
            return Err(Error::TooLarge {
                len: s.len(),
                max: MAX_ENCODED_LEN,
            });
        }
        let mut parts = s.split(' ');
        let size = parts
            .next()
            .and_then(parse_decimal)
            .ok_or(Error::MalformedFrontier("size is not a canonical decimal"))?;
        let nodes = parts
            .map(|p| b64_hash(p).ok_or(Error::MalformedFrontier("node is not a base64 hash")))
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.len() != size.count_ones() as usize {
            return Err(Error::MalformedFrontier(
                "number of nodes does not match the size",
            ));
        }
        Ok(Self { size, nodes })
    }
}
