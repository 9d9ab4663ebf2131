use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::note::{NoteSigner, open};

/// The checkpoint of the c2sp.org/tlog-checkpoint and tlog-cosignature examples.
const BODY: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
/// The spec's example time (its signed-message example and its cosignature's timestamp).
const TIME: u64 = 1_679_315_147;

/// An independent implementation's output: Python `cryptography` (OpenSSL's Ed25519)
/// with the seed `[0x42; 32]`, following tlog-cosignature by hand. It gave the PKCS#8 v1
/// key, the vkey and the cosignature line for `BODY` at `TIME`.
const PY_PKCS8: &str = "MC4CAQAwBQYDK2VwBCIEIEJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC";
const PY_VKEY: &str = "witness.example/w1+f1ed8c47+BCFS+NGbeR0kRTJC4V8uq2y3z/p7al7TAJeWDgaYgdsS";
const PY_LINE: &str = "— witness.example/w1 8e2MRwAAAABkGFDLEqgtDUsneMqeLcGMqk8Xx08OQIVxF72ZJmEtUU5sbo5WiTljN+UF1cQ+vSoh1gRQ0wV3Nz9m8DFvjwHDTDcQBA==\n";

fn checkpoint() -> Checkpoint {
    Checkpoint::parse(BODY).unwrap()
}

fn py_cosigner() -> Cosigner {
    let pkcs8 = STANDARD.decode(PY_PKCS8).unwrap();
    Cosigner::from_pkcs8("witness.example/w1", &pkcs8).unwrap()
}

#[test]
fn signed_message_is_the_spec_example() {
    assert_eq!(
        signed_message(TIME, BODY).unwrap(),
        "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    );
    assert_eq!(
        signed_message(0, "x\n").unwrap(),
        "cosignature/v1\ntime 0\nx\n"
    );
    assert_eq!(
        signed_message(MAX_TIMESTAMP + 1, BODY),
        Err(Error::TimestampOutOfRange(MAX_TIMESTAMP + 1))
    );
}

/// Our cosigner reproduces the independent implementation's vkey and line byte for byte,
/// and our verifier accepts that line.
#[test]
fn matches_an_independent_implementation() {
    let cosigner = py_cosigner();
    assert_eq!(cosigner.verifier().to_string(), PY_VKEY);
    assert_eq!(cosigner.key_id(), 0xf1ed_8c47);
    assert_eq!(cosigner.cosign(&checkpoint(), TIME).unwrap(), PY_LINE);
    let witness = NoteVerifier::parse(PY_VKEY).unwrap();
    assert_eq!(witness.signature_type(), SignatureType::CosignatureV1);
    assert_eq!(verify(PY_LINE, &checkpoint(), &witness), Ok(TIME));

    // Through note::open, as a log client reads a cosigned checkpoint.
    let opened = open(&format!("{BODY}\n{PY_LINE}"), &[witness]).unwrap();
    assert_eq!(opened.verified[0].timestamp, Some(TIME));
    assert_eq!(opened.verified[0].line, PY_LINE);
}

/// Timestamps read from published cosignatures: the tlog-cosignature spec's example line
/// and transparency-dev/formats `note/note_cosigv1_test.go` (`TestCoSigV1Timestamp`).
#[test]
fn timestamps_of_published_cosignatures() {
    let spec = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==";
    let sig = Signature::parse_line(spec).unwrap();
    assert_eq!(sig.key_id, 0x8d66_cf3f);
    assert_eq!(timestamp(&sig.signature), Ok(TIME));

    let raw = |b64: &str| STANDARD.decode(b64).unwrap()[4..].to_vec();
    let formats = raw(
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==",
    );
    assert_eq!(timestamp(&formats), Ok(1_727_964_367));
    // A plain Ed25519 note signature is not a cosignature.
    let plain = raw(
        "eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=",
    );
    assert!(matches!(
        timestamp(&plain),
        Err(Error::MalformedCosignature(_))
    ));
    assert!(timestamp(&[0; 7]).is_err());
    let mut too_late = vec![0x80];
    too_late.extend([0; 71]);
    assert_eq!(
        timestamp(&too_late),
        Err(Error::TimestampOutOfRange(1 << 63))
    );
}

/// Published witness vkeys of type 0x04 (transparency-dev/formats
/// `TestCoSigV1NewVerifier`): their key IDs check out only if the type byte is hashed.
#[test]
fn published_cosigner_vkeys_parse() {
    let remora =
        NoteVerifier::parse("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
            .unwrap();
    assert_eq!(remora.signature_type(), SignatureType::CosignatureV1);
    let test =
        NoteVerifier::parse("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6").unwrap();
    assert_eq!(test.signature_type(), SignatureType::Ed25519);
    // The same key as a cosigner has another ID.
    let as_cosigner =
        NoteVerifier::new("TEST", SignatureType::CosignatureV1, *test.public_key()).unwrap();
    assert_ne!(as_cosigner.key_id(), test.key_id());
}

#[test]
fn tampered_cosignatures_fail() {
    let cosigner = py_cosigner();
    let witness = cosigner.verifier();
    let cp = checkpoint();
    let line = cosigner.cosign(&cp, TIME).unwrap();

    // Another checkpoint, and an extension line added: the signature covers them.
    let mut other = cp.clone();
    other.size += 1;
    assert!(matches!(
        verify(&line, &other, &witness),
        Err(Error::InvalidSignature { .. })
    ));
    let mut extended = cp.clone();
    extended.extensions.push("extra".into());
    assert!(verify(&line, &extended, &witness).is_err());
    let ext_line = cosigner.cosign(&extended, TIME).unwrap();
    assert_eq!(verify(&ext_line, &extended, &witness), Ok(TIME));
    assert!(verify(&ext_line, &cp, &witness).is_err());

    // Another timestamp in the line than the one signed.
    let mut sig = Signature::parse_line(&line).unwrap();
    sig.signature[7] ^= 1;
    assert!(verify(&sig.to_line(), &cp, &witness).is_err());
    assert!(matches!(
        open(
            &format!("{BODY}\n{}", sig.to_line()),
            std::slice::from_ref(&witness)
        ),
        Err(Error::InvalidSignature { .. })
    ));

    // The same Ed25519 key as a note key: another ID, so another key.
    let as_note_key = NoteVerifier::new(
        witness.name(),
        SignatureType::Ed25519,
        *witness.public_key(),
    )
    .unwrap();
    assert!(matches!(
        verify(&line, &cp, &as_note_key),
        Err(Error::WrongKey { .. })
    ));
    assert_eq!(
        open(&format!("{BODY}\n{line}"), &[as_note_key]),
        Err(Error::NoKnownSignature { unknown: 1 })
    );
    let other_witness =
        Cosigner::from_pkcs8("w2", crate::note::generate_pkcs8().unwrap().as_bytes())
            .unwrap()
            .verifier();
    assert!(matches!(
        verify(&line, &cp, &other_witness),
        Err(Error::WrongKey { .. })
    ));

    assert_eq!(
        cosigner.cosign(&cp, MAX_TIMESTAMP + 1),
        Err(Error::TimestampOutOfRange(MAX_TIMESTAMP + 1))
    );
    assert!(cosigner.cosign(&cp, MAX_TIMESTAMP).is_ok());
}

/// A log key and a witness key over one checkpoint: each verifier sees only its own.
#[test]
fn log_signature_and_cosignature_on_one_note() {
    let log = NoteSigner::from_pkcs8(
        "example.com/behind-the-sofa",
        crate::note::generate_pkcs8().unwrap().as_bytes(),
    )
    .unwrap();
    let witness = py_cosigner();
    let cosigned = format!(
        "{}{}",
        log.sign(BODY).unwrap(),
        witness.cosign(&checkpoint(), TIME).unwrap()
    );
    let by_log = open(&cosigned, &[log.verifier()]).unwrap();
    assert_eq!((by_log.verified.len(), by_log.unknown), (1, 1));
    let by_witness = open(&cosigned, &[witness.verifier()]).unwrap();
    assert_eq!(by_witness.verified[0].timestamp, Some(TIME));
    let both = open(&cosigned, &[log.verifier(), witness.verifier()]).unwrap();
    assert_eq!(both.verified.len(), 2);
}
