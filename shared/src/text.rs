//! Text a person is shown to decide on (binding messages, the action's fields, names): it
//! must read the same on every screen. Bidirectional controls reorder what follows them
//! (an amount or a vendor can be made to display as something else, CVE-2021-42574
//! "Trojan Source"), and zero-width characters make two different strings look identical.
//! Both are refused wherever such text enters, on the server and again in the wallet.

/// The first character of `s` that hides or reorders text, if any.
pub fn deceptive(s: &str) -> Option<char> {
    s.chars().find(|c| is_deceptive(*c))
}

/// Bidirectional embeddings, overrides, isolates and marks; zero-width spaces, joiners and
/// non-joiners; the word joiner and invisible operators; the byte-order mark; and the
/// Mongolian vowel separator, which renders as nothing.
pub fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_and_invisible_characters_are_found() {
        for s in [
            "pay \u{202E}0021$",
            "Ac\u{200B}me",
            "Ac\u{200D}me",
            "\u{2066}x\u{2069}",
            "\u{200F}",
            "\u{061C}",
            "\u{FEFF}Acme",
            "a\u{2060}b",
            "a\u{180E}b",
        ] {
            assert!(deceptive(s).is_some(), "{s:?}");
        }
        for s in ["Acme GmbH", "Größe ✓", "日本語", "مرحبا", "עברית", "👩‍"] {
            // The last one is a woman emoji followed by a zero-width joiner: refused too.
            assert_eq!(deceptive(s).is_some(), s.contains('\u{200D}'), "{s:?}");
        }
    }
}
