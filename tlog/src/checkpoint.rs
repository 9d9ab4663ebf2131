//! c2sp.org/tlog-checkpoint: the note text a log signs for each tree head.
//!
//! ```text
//! <origin>\n
//! <tree size, decimal>\n
//! <root hash, standard base64>\n
//! [<extension line>\n ...]
//! ```
//!
//! A checkpoint is only meaningful once its note is [opened](crate::note::open) with the
//! log's key, and its `origin` checked to be the log the reader expects (the log's key
//! name should be the origin).

use crate::Error;
use crate::encoding::{b64_encode, b64_hash, parse_decimal};
use crate::merkle::Hash;

/// Largest checkpoint body accepted.
pub const MAX_BODY_LEN: usize = 8 * 1024;
/// Longest origin accepted (the limit ML-DSA cosignatures put on it: 255 bytes).
pub const MAX_ORIGIN_LEN: usize = 255;

/// A log's tree head: which log (`origin`), how many leaves (`size`) and their Merkle
/// root (`root`), with optional opaque `extensions` (not recommended by the spec: monitors
/// cannot audit them).
///
/// The fields are public for convenience; [`to_body`](Self::to_body) checks them, so a
/// body this crate writes always parses back to the same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Unique name of the log, e.g. `example.com/log42`.
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// RFC 9162 Merkle tree hash of those leaves.
    pub root: Hash,
    /// Extension lines, without their newlines; each non-empty.
    pub extensions: Vec<String>,
}

/// Checks one line of a checkpoint: non-empty, and no control character (so no newline;
/// signed notes allow no other control character either).
fn check_line(line: &str, empty: &'static str, control: &'static str) -> Result<(), Error> {
    if line.is_empty() {
        return Err(Error::MalformedCheckpoint(empty));
    }
    if line.chars().any(|c| c < ' ') {
        return Err(Error::MalformedCheckpoint(control));
    }
    Ok(())
}

fn check_origin(origin: &str) -> Result<(), Error> {
    check_line(
        origin,
        "origin is empty",
        "origin contains a control character",
    )?;
    if origin.len() > MAX_ORIGIN_LEN {
        return Err(Error::MalformedCheckpoint("origin is too long"));
    }
    Ok(())
}

impl Checkpoint {
    /// A checkpoint without extension lines, with its origin checked.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Result<Self, Error> {
        let origin = origin.into();
        check_origin(&origin)?;
        Ok(Self {
            origin,
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// The note text to sign: origin, size, base64 root and extension lines, each ending
    /// in a newline.
    pub fn to_body(&self) -> Result<String, Error> {
        check_origin(&self.origin)?;
        for line in &self.extensions {
            check_line(
                line,
                "extension line is empty",
                "extension line contains a control character",
            )?;
        }
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            b64_encode(&self.root)
        );
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        if body.len() > MAX_BODY_LEN {
            return Err(Error::TooLarge {
                len: body.len(),
                max: MAX_BODY_LEN,
            });
        }
        Ok(body)
    }

    /// Parses a checkpoint body (the text of an opened note), strictly: size without
    /// leading zeroes, root exactly 32 bytes of canonical base64, every line non-empty and
    /// newline-terminated.
    ///
    /// It does not check that a size-0 checkpoint carries [`EMPTY_ROOT`](crate::merkle::EMPTY_ROOT):
    /// a witness answers that with 422, not 400, and
    /// [`verify_consistency`](crate::merkle::verify_consistency) catches it.
    pub fn parse(body: &str) -> Result<Self, Error> {
        if body.len() > MAX_BODY_LEN {
            return Err(Error::TooLarge {
                len: body.len(),
                max: MAX_BODY_LEN,
            });
        }
        let Some(body) = body.strip_suffix('\n') else {
            return Err(Error::MalformedCheckpoint("does not end with a newline"));
        };
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        check_origin(origin)?;
        let size = lines
            .next()
            .ok_or(Error::MalformedCheckpoint("no tree size line"))?;
        let size = parse_decimal(size).ok_or(Error::MalformedCheckpoint(
            "tree size is not a decimal without leading zeroes",
        ))?;
        let root = lines
            .next()
            .ok_or(Error::MalformedCheckpoint("no root hash line"))?;
        let root = b64_hash(root).ok_or(Error::MalformedCheckpoint(
            "root hash is not 32 bytes of standard base64",
        ))?;
        let extensions = lines
            .map(|line| {
                check_line(
                    line,
                    "extension line is empty",
                    "extension line contains a control character",
                )
                .map(|()| line.to_owned())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;

    /// golang.org/x/mod sumdb/tlog `note_test.go` (`TestFormatTree`): the go.sum database
    /// tree head format is a checkpoint, and its root there is `RecordHash("hello world")`,
    /// which is RFC 6962's leaf hash.
    #[test]
    fn go_sumdb_tree_golden() {
        let golden =
            "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
        let c = Checkpoint::parse(golden).unwrap();
        assert_eq!(c.origin, "go.sum database tree");
        assert_eq!(c.size, 123_456_789_012);
        assert_eq!(c.root, leaf_hash(b"hello world"));
        assert!(c.extensions.is_empty());
        assert_eq!(c.to_body().unwrap(), golden);
        let built = Checkpoint::new(
            "go.sum database tree",
            123_456_789_012,
            leaf_hash(b"hello world"),
        );
        assert_eq!(built.unwrap().to_body().unwrap(), golden);
    }

    /// The example of c2sp.org/tlog-checkpoint, with an extension line added.
    #[test]
    fn spec_example_and_extensions_round_trip() {
        let body =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let c = Checkpoint::parse(body).unwrap();
        assert_eq!(
            (c.origin.as_str(), c.size),
            ("example.com/behind-the-sofa", 20_852_163)
        );
        let extended = format!("{body}ext one\n— looks like a signature\n");
        let c = Checkpoint::parse(&extended).unwrap();
        assert_eq!(c.extensions, ["ext one", "— looks like a signature"]);
        assert_eq!(c.to_body().unwrap(), extended);
        let empty = Checkpoint::new("o", 0, crate::merkle::EMPTY_ROOT).unwrap();
        assert_eq!(
            empty.to_body().unwrap(),
            "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
        );
        let max = Checkpoint::new("o", u64::MAX, [7; 32]).unwrap();
        assert_eq!(Checkpoint::parse(&max.to_body().unwrap()).unwrap(), max);
    }

    #[test]
    fn malformed_bodies_are_rejected() {
        let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
        let bad = [
            format!("o\n1\n{root}"),                      // no final newline
            format!("\n1\n{root}\n"),                     // empty origin
            format!("o\r\n1\n{root}\n"),                  // CR in origin
            format!("o\n01\n{root}\n"),                   // leading zero
            format!("o\n+1\n{root}\n"),                   // sign
            format!("o\n-1\n{root}\n"),                   // negative
            format!("o\n 1\n{root}\n"),                   // space
            format!("o\n18446744073709551616\n{root}\n"), // u64 overflow
            format!("o\n1\n{root}\n\n"),                  // empty extension line
            format!("o\n1\n{root}\next\x01\n"),           // control character
            format!("o\n1\n{root} \n"),                   // trailing space
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n".into(), // 31 bytes
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA\n".into(), // 33 bytes
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".into(), // stray bits
            "o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n".into(), // URL alphabet
            "o\n1\n".into(),
            "o\n".into(),
            String::new(),
            format!("{}\n1\n{root}\n", "o".repeat(MAX_ORIGIN_LEN + 1)),
            format!("o\n1\n{root}\n{}\n", "x".repeat(MAX_BODY_LEN)),
        ];
        for body in &bad {
            assert!(Checkpoint::parse(body).is_err(), "{body:?}");
        }
        assert!(Checkpoint::new("", 1, [0; 32]).is_err());
        assert!(Checkpoint::new("a\nb", 1, [0; 32]).is_err());
        let mut c = Checkpoint::new("o", 1, [0; 32]).unwrap();
        c.extensions.push("two\nlines".into());
        assert!(c.to_body().is_err());
        c.extensions = vec![String::new()];
        assert!(c.to_body().is_err());
    }
}
