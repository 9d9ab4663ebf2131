use ring::signature::Ed25519KeyPair;

use super::*;

/// golang.org/x/mod sumdb/note `note_test.go`: keys and signatures made by the Go
/// implementation.
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
/// Go's signer key for `PETER_VKEY`: `PRIVATE+KEY+PeterNeumann+c74f20a3+` and this
/// base64 of `0x01 || Ed25519 seed`.
const PETER_SKEY_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter() -> NoteVerifier {
    NoteVerifier::parse(PETER_VKEY).unwrap()
}

fn enoch() -> NoteVerifier {
    NoteVerifier::parse(ENOCH_VKEY).unwrap()
}

/// `sig` with "ABCD" spliced into its base64 at byte 60 (Go's corrupted signature).
fn corrupt(sig: &str) -> String {
    format!("{}ABCD{}", &sig[..60], &sig[60..])
}

/// The example of c2sp.org/signed-note §"Verifier keys".
#[test]
fn spec_example_verifies() {
    let v = NoteVerifier::parse(
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    )
    .unwrap();
    assert_eq!((v.name(), v.key_id()), ("example.com/foo", 0x530d_903a));
    assert_eq!(v.signature_type(), SignatureType::Ed25519);
    let note = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    let opened = open(note, std::slice::from_ref(&v)).unwrap();
    assert_eq!(opened.text, "This is an example message.\n");
    assert_eq!(opened.verified.len(), 1);
    assert_eq!(opened.verified[0].line, &note[29..]);
    assert_eq!(opened.unknown, 0);
    // One changed byte of text, and the same signature fails.
    let tampered = note.replacen("example message", "example massage", 1);
    assert!(matches!(
        open(&tampered, &[v]),
        Err(Error::InvalidSignature { .. })
    ));
}

/// Go's `TestSign`/`ExampleSign`: the same seed and text give the same bytes (Ed25519 is
/// deterministic), so our key ID, base64 and line layout equal Go's.
#[test]
fn signing_matches_go_byte_for_byte() {
    let skey = b64_decode(PETER_SKEY_B64, 100).unwrap();
    assert_eq!(skey[0], 0x01);
    let key = Ed25519KeyPair::from_seed_unchecked(&skey[1..]).unwrap();
    let signer = NoteSigner::from_keypair("PeterNeumann", key).unwrap();
    assert_eq!(signer.key_id(), 0xc74f_20a3);
    assert_eq!(signer.verifier().to_string(), PETER_VKEY);
    assert_eq!(signer.sign(TEXT).unwrap(), format!("{TEXT}\n{PETER_SIG}"));
    assert!(format!("{signer:?}").contains("***"));
}

/// A key ID computed over other bytes than `name || 0x0A || type || key` would not give
/// Go's IDs.
#[test]
fn key_id_covers_name_newline_type_and_key() {
    let v = peter();
    let key = v.public_key();
    assert_eq!(key_id("PeterNeumann", 0x01, key), 0xc74f_20a3);
    assert_eq!(key_id("EnochRoot", 0x01, enoch().public_key()), 0xaf0c_fe78);
    let wrong = [
        key_id("PeterNeumann", 0x04, key),
        key_id("PeterNeumann\n", 0x01, key),
        key_id("PeterNeumann", b'\n', key),
        key_id("peterneumann", 0x01, key),
        key_id("", 0x01, key),
    ];
    assert!(!wrong.contains(&0xc74f_20a3));
    let mut plain = Vec::from(*b"PeterNeumann\x01");
    plain.extend_from_slice(key);
    let digest = Sha256::digest(&plain);
    assert_ne!(&digest[..4], &0xc74f_20a3_u32.to_be_bytes());
}

/// Go's `TestOpen`, with its notes and keys.
#[test]
fn open_matches_go_semantics() {
    let note = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let one = open(&note, &[peter()]).unwrap();
    assert_eq!(one.text, TEXT);
    assert_eq!(one.verified.len(), 1);
    assert_eq!(one.verified[0].name, "PeterNeumann");
    assert_eq!(one.verified[0].key_id, 0xc74f_20a3);
    assert_eq!(one.verified[0].timestamp, None);
    assert_eq!(one.verified[0].line, PETER_SIG);
    assert_eq!(one.unknown, 1);

    let both = open(&note, &[peter(), enoch()]).unwrap();
    let names: Vec<&str> = both.verified.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["PeterNeumann", "EnochRoot"]);
    assert_eq!(both.unknown, 0);

    assert_eq!(
        open(&note, &[]),
        Err(Error::NoKnownSignature { unknown: 2 })
    );

    // A verifier listed twice is not ambiguous; two keys with one name and ID are.
    assert!(open(&note, &[enoch(), peter(), enoch()]).is_ok());
    let mut impostor = enoch();
    impostor.public_key = *peter().public_key();
    assert_eq!(
        open(
            &format!("{TEXT}\n{PETER_SIG}"),
            &[enoch(), peter(), impostor]
        ),
        Err(Error::AmbiguousVerifier {
            name: "EnochRoot".into(),
            key_id: 0xaf0c_fe78
        })
    );

    // Too many signatures, verifiable or not.
    let many = format!("{TEXT}\n{}", PETER_SIG.repeat(101));
    assert!(open(&many, &[peter()]).is_err());
    assert!(open(&many, &[]).is_err());
    let hundred = format!("{TEXT}\n{}", PETER_SIG.repeat(100));
    assert_eq!(open(&hundred, &[peter()]).unwrap().verified.len(), 1);

    // A known key's bad signature rejects the note.
    let bad = format!("{TEXT}\n{}", corrupt(PETER_SIG));
    assert_eq!(
        open(&bad, &[peter()]),
        Err(Error::InvalidSignature {
            name: "PeterNeumann".into(),
            key_id: 0xc74f_20a3
        })
    );
    // ... even when a valid one by the same key came first (Go skips repeats; the spec
    // says a known key's signature MUST be verified).
    let repeated_bad = format!("{TEXT}\n{PETER_SIG}{}", corrupt(PETER_SIG));
    assert!(matches!(
        open(&repeated_bad, &[peter()]),
        Err(Error::InvalidSignature { .. })
    ));
    // Unknown keys' lines are ignored, even corrupted, and repeats counted.
    let mixed = format!(
        "{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{}",
        corrupt(ENOCH_SIG)
    );
    let opened = open(&mixed, &[peter()]).unwrap();
    assert_eq!((opened.verified.len(), opened.unknown), (1, 3));

    // Go's malformed notes.
    for bad in [
        TEXT.to_owned(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!(
            "{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        ),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
    ] {
        assert!(open(&bad, &[peter()]).is_err(), "{bad:?}");
    }
}

/// A name or ID matching a known key, but not both, is somebody else's key.
#[test]
fn signatures_sharing_only_name_or_id_are_unknown() {
    let renamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego");
    let reid = PETER_SIG.replace("x08g", "xxxx");
    for sig in [renamed, reid] {
        let note = format!("{TEXT}\n{sig}{ENOCH_SIG}");
        let opened = open(&note, &[peter(), enoch()]).unwrap();
        assert_eq!((opened.verified.len(), opened.unknown), (1, 1));
    }
}

/// Go's `TestNewVerifier`: every truncation and every one-byte change of a vkey is refused.
#[test]
fn mangled_verifier_keys_are_refused() {
    assert_eq!(peter().to_string(), PETER_VKEY);
    assert_eq!(PETER_VKEY.parse::<NoteVerifier>().unwrap(), peter());
    let b = PETER_VKEY.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if (i, j) != (0, b.len()) {
                let s = std::str::from_utf8(&b[i..j]).unwrap();
                assert!(NoteVerifier::parse(s).is_err(), "{s:?}");
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let s = String::from_utf8(m).unwrap();
        assert!(NoteVerifier::parse(&s).is_err(), "{s:?}");
    }
    // Wrong key length and unknown algorithm, each with a key ID that matches.
    assert!(matches!(
        NoteVerifier::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        ),
        Err(Error::MalformedVerifierKey(_))
    ));
    assert_eq!(
        NoteVerifier::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(Error::UnsupportedSignatureType(0x65))
    );
    // Upper-case hex is not the spec's encoding.
    assert!(NoteVerifier::parse(&PETER_VKEY.replace("c74f20a3", "C74F20A3")).is_err());
}

#[test]
fn key_names_follow_the_spec() {
    for good in [
        "a",
        "example.com/log42",
        "sum.golang.org",
        "oid/1.3.6.1.4.1",
        "é",
    ] {
        check_key_name(good).unwrap();
    }
    let long = "x".repeat(MAX_KEY_NAME_LEN + 1);
    for bad in [
        "",
        "a b",
        "a+b",
        "a\tb",
        "a\u{a0}b",
        "a\u{2003}b",
        "a\u{3000}b",
        "a\u{7f}",
        &long,
    ] {
        assert!(check_key_name(bad).is_err(), "{bad:?}");
    }
    let key = generate_pkcs8().unwrap();
    assert!(NoteSigner::from_pkcs8("a b", key.as_bytes()).is_err());
    assert!(NoteVerifier::new("a+b", SignatureType::Ed25519, [0; 32]).is_err());
}

#[test]
fn generated_keys_sign_and_verify() {
    let key = NoteSigner::generate().unwrap();
    assert_eq!(format!("{key:?}"), "Pkcs8Key(***)");
    let signer = NoteSigner::from_pkcs8("example.com/log", key.as_bytes()).unwrap();
    let vkey = signer.verifier().to_string();
    let verifier = NoteVerifier::parse(&vkey).unwrap();
    assert_eq!(verifier, signer.verifier());
    for text in [
        "a\n",
        "\n",
        "two\n\nparagraphs\n",
        "ends in a blank line\n\n",
        "— dash\n",
    ] {
        let note = signer.sign(text).unwrap();
        assert_eq!(
            open(&note, std::slice::from_ref(&verifier)).unwrap().text,
            text
        );
    }
    for bad in ["no newline", "tab\there\n", "cr\r\n", ""] {
        assert!(signer.sign(bad).is_err(), "{bad:?}");
    }
    assert!(NoteSigner::from_pkcs8("a", b"not a key").is_err());
    let big = "x".repeat(MAX_NOTE_LEN) + "\n";
    assert!(matches!(signer.sign(&big), Err(Error::TooLarge { .. })));
    assert!(matches!(
        open(&format!("{big}\n{PETER_SIG}"), &[peter()]),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn signature_lines_are_parsed_strictly() {
    let sig = Signature::parse_line(PETER_SIG).unwrap();
    assert_eq!(
        (sig.name.as_str(), sig.key_id),
        ("PeterNeumann", 0xc74f_20a3)
    );
    assert_eq!(sig.signature.len(), 64);
    assert_eq!(sig.to_line(), PETER_SIG);
    let long = format!("— a {}", "A".repeat(MAX_SIGNATURE_LINE_LEN));
    for bad in [
        "- PeterNeumann x08go/ZJ=",       // hyphen, not em dash
        "—PeterNeumann x08go/ZJ=",        // no space
        "— PeterNeumann",                 // no signature
        "— PeterNeumann ",                // empty signature
        "— PeterNeumann AAAAAA==",        // 4 bytes: a key ID and no signature
        "— PeterNeumann  x08go/ZJkuBS9U", // double space
        "— Peter+Neumann x08go/ZJkuBS9UG/Sffc",
        &long,
    ] {
        assert!(Signature::parse_line(bad).is_err(), "{bad:?}");
    }
}
