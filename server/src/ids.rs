//! Identifiers of rows written on every request (authentication requests, decisions,
//! credentials): unguessable, and ordered by creation time.
//!
//! They are keys of indexes written with every request (the request's primary key, its
//! approvers, the trace's subject index, the credential's `jti`). A purely random key
//! lands on a random leaf of each of those B-trees, so every commit dirtied (and wrote to
//! the WAL) one page per index per request, and a long run missed SQLite's page cache on
//! each; a key that starts with the time lands on the rightmost leaves, which a batch of
//! requests shares (docs/benchmarks.md, "Decide at machine speed").

/// `prefix`, then the time in milliseconds as 12 lower-case hex digits (sorting as the
/// time until the year 10889), then `random_bytes` random bytes in base64url.
pub fn sortable(prefix: &str, now_ms: i64, random_bytes: usize) -> String {
    format!(
        "{prefix}{:012x}{}",
        now_ms.max(0),
        countersign_jose::random_b64url(random_bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_ids_sort_after_earlier_ones_and_never_repeat() {
        let a = sortable("dec_", 1_796_665_432_088, 16);
        let b = sortable("dec_", 1_796_665_432_089, 16);
        assert!(a < b, "{a} < {b}");
        assert!(a.starts_with("dec_01a2"));
        assert_eq!(a.len(), 4 + 12 + 22);
        assert_ne!(sortable("", 5, 16), sortable("", 5, 16));
        // Still sorted across a change in the number of digits the time needs.
        assert!(sortable("", 0xfff, 16) < sortable("", 0x1000, 16));
    }
}
