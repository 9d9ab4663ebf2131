//! Strict decoders shared by the text formats: every value has exactly one accepted
//! spelling, so a parsed value re-encodes to the bytes it came from.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::merkle::Hash;

/// Longest decimal `u64` (`18446744073709551615`).
const MAX_DECIMAL_DIGITS: usize = 20;

/// Standard base64 with padding (RFC 4648 §4).
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard padded base64, accepting only the canonical spelling (no missing
/// padding, no stray bits in the last character, no whitespace) and at most `max_len`
/// characters.
pub(crate) fn b64_decode(s: &str, max_len: usize) -> Option<Vec<u8>> {
    if s.len() > max_len {
        return None;
    }
    let bytes = STANDARD.decode(s).ok()?;
    // The engine already refuses non-canonical padding and trailing bits; re-encoding
    // makes "one spelling per value" hold whatever its configuration.
    (STANDARD.encode(&bytes) == s).then_some(bytes)
}

/// Decodes a base64 SHA-256 hash (exactly 32 bytes).
pub(crate) fn b64_hash(s: &str) -> Option<Hash> {
    b64_decode(s, 44)?.try_into().ok()
}

/// Parses an ASCII decimal with no sign, no spaces and no leading zeroes (`0` itself is
/// allowed), as tree sizes, old sizes and timestamps are written.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty()
        || s.len() > MAX_DECIMAL_DIGITS
        || !s.bytes().all(|b| b.is_ascii_digit())
        || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_have_one_spelling() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("10"), Some(10));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "00",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1_000",
            "0x10",
            "18446744073709551616",
            "١",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base64_is_canonical_only() {
        assert_eq!(b64_decode("AAE=", 100), Some(vec![0, 1]));
        // Missing padding, stray trailing bits, whitespace, URL alphabet.
        for bad in ["AAE", "AAF=", "AA E=", "AAE=\n", "-_8=", "AAE==", ""] {
            let decoded = b64_decode(bad, 100);
            assert!(decoded.is_none() || bad.is_empty(), "{bad:?}");
        }
        assert_eq!(b64_decode("", 100), Some(vec![]));
        assert_eq!(b64_decode("AAE=", 3), None);
        assert!(b64_hash("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").is_some());
        assert!(b64_hash("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuA==").is_none());
    }
}
