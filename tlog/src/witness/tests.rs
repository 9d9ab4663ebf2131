use super::*;
use crate::checkpoint::Checkpoint;
use crate::cosignature::{self, Cosigner};
use crate::merkle::{self, EMPTY_ROOT, Frontier, leaf_hash};
use crate::note::{NoteSigner, NoteVerifier, generate_pkcs8, open};

/// The example request body of c2sp.org/tlog-witness, byte for byte.
const SPEC_REQUEST: &str = "old 20852014\n\
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n\
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\
\n\
example.com/behind-the-sofa\n\
20852163\n\
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\
\n\
— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n";

/// The example 200 response body of c2sp.org/tlog-witness.
const SPEC_RESPONSE: &str = "— witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n\
— witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==\n\
— witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==\n";

#[test]
fn spec_example_request_round_trips() {
    let req = AddCheckpointRequest::parse(SPEC_REQUEST).unwrap();
    assert_eq!(req.old_size, 20_852_014);
    assert_eq!(req.proof.len(), 4);
    assert!(
        req.checkpoint
            .starts_with("example.com/behind-the-sofa\n20852163\n")
    );
    let (text, sigs) = note::split_note(&req.checkpoint).unwrap();
    assert_eq!(Checkpoint::parse(text).unwrap().size, 20_852_163);
    assert_eq!(sigs.len(), 2);
    assert_eq!(req.to_body().unwrap(), SPEC_REQUEST);

    let sigs = parse_cosignatures(SPEC_RESPONSE).unwrap();
    let names: Vec<&str> = sigs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "witness.example/w1",
            "witness.example/w1",
            "witness.example/w2"
        ]
    );
    let lines: Vec<String> = sigs.iter().map(|s| s.to_line()).collect();
    assert_eq!(format_cosignatures(&lines), SPEC_RESPONSE);
}

#[test]
fn malformed_requests_are_refused() {
    let cp = SPEC_REQUEST
        .split_once("\n\nexample")
        .map(|(_, c)| format!("example{c}"))
        .unwrap();
    let hash = "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=";
    let ok = AddCheckpointRequest::parse(&format!("old 0\n\n{cp}")).unwrap();
    assert!(ok.proof.is_empty());
    // A proof from 0 parses: it is the witness's 422, not a 400.
    assert_eq!(
        AddCheckpointRequest::parse(&format!("old 0\n{hash}\n\n{cp}"))
            .unwrap()
            .proof
            .len(),
        1
    );
    let max = format!(
        "old 1\n{}\n{cp}",
        format!("{hash}\n").repeat(MAX_PROOF_LINES)
    );
    assert_eq!(AddCheckpointRequest::parse(&max).unwrap().proof.len(), 63);
    let over = format!(
        "old 1\n{}\n{cp}",
        format!("{hash}\n").repeat(MAX_PROOF_LINES + 1)
    );
    assert_eq!(
        AddCheckpointRequest::parse(&over),
        Err(Error::TooManyProofLines { got: 64, max: 63 })
    );
    for bad in [
        format!("old 01\n\n{cp}"),
        format!("old -1\n\n{cp}"),
        format!("old  1\n\n{cp}"),
        format!("Old 1\n\n{cp}"),
        format!("old 1\r\n\n{cp}"),
        format!("old 1\n{cp}"),                   // no blank line
        format!("old 1\n{hash}\n{cp}"),           // no blank line
        format!("old 1\n{}\n\n{cp}", &hash[1..]), // not a hash
        format!("old 1\n{hash} \n\n{cp}"),
        "old 1\n\n".to_string(),               // no checkpoint
        format!("old 1\n\n{}", cp.trim_end()), // no final newline
        format!("old 1\n\n{}", cp.split("\n\n").next().unwrap()), // no signatures
        "old 1".into(),
        String::new(),
    ] {
        assert!(AddCheckpointRequest::parse(&bad).is_err(), "{bad:?}");
    }
    let huge = format!("old 1\n\n{}", "x".repeat(MAX_REQUEST_LEN));
    assert!(matches!(
        AddCheckpointRequest::parse(&huge),
        Err(Error::TooLarge { .. })
    ));
    let too_long = AddCheckpointRequest {
        old_size: 1,
        proof: vec![[0; 32]; 64],
        checkpoint: cp.clone(),
    };
    assert!(too_long.to_body().is_err());
    let unsigned = AddCheckpointRequest {
        old_size: 1,
        proof: vec![],
        checkpoint: "o\n1\nAAAA\n".into(),
    };
    assert!(unsigned.to_body().is_err());
}

#[test]
fn size_bodies_and_responses() {
    assert_eq!(SIZE_CONTENT_TYPE, "text/x.tlog.size");
    assert_eq!(format_size_body(20_852_014), "20852014\n");
    assert_eq!(parse_size_body("20852014\n"), Ok(20_852_014));
    assert_eq!(parse_size_body("0\n"), Ok(0));
    for bad in ["", "\n", "12", "012\n", "12\n\n", " 12\n", "12\r\n"] {
        assert!(parse_size_body(bad).is_err(), "{bad:?}");
    }
    for bad in [
        "",
        "\n",
        SPEC_RESPONSE.trim_end(),
        "— w AAAA\n",
        "not a line\n",
    ] {
        assert!(parse_cosignatures(bad).is_err(), "{bad:?}");
    }
}

/// What a witness answers: the status and body the spec prescribes. A sketch of the
/// checks a fake witness makes, in the spec's order, to test the pieces fit together.
fn witness_answers(
    body: &str,
    log_keys: &[NoteVerifier],
    latest: &mut (u64, merkle::Hash),
    cosigner: &Cosigner,
    now: u64,
) -> (u16, String) {
    let Ok(req) = AddCheckpointRequest::parse(body) else {
        return (400, String::new());
    };
    let opened = match open(&req.checkpoint, log_keys) {
        Ok(o) => o,
        Err(_) => return (403, String::new()),
    };
    let Ok(cp) = Checkpoint::parse(&opened.text) else {
        return (400, String::new());
    };
    if req.old_size > cp.size {
        return (400, String::new());
    }
    if req.old_size != latest.0 {
        return (409, format_size_body(latest.0));
    }
    if merkle::verify_consistency(req.old_size, cp.size, &latest.1, &cp.root, &req.proof).is_err() {
        return (422, String::new());
    }
    *latest = (cp.size, cp.root);
    (200, cosigner.cosign(&cp, now).unwrap())
}

/// A log appends, signs checkpoints and gets them cosigned through the wire formats;
/// each misbehaviour gets the spec's status.
#[test]
fn log_and_witness_exchange() {
    let origin = "example.com/countersign-audit";
    let log = NoteSigner::from_pkcs8(origin, generate_pkcs8().unwrap().as_bytes()).unwrap();
    let cosigner =
        Cosigner::from_pkcs8("witness.example/w1", generate_pkcs8().unwrap().as_bytes()).unwrap();
    let log_keys = [log.verifier()];
    let mut state = (0, EMPTY_ROOT);

    let mut leaves = Vec::new();
    let mut frontier = Frontier::new();
    let mut witnessed = 0;
    for round in 1..=6u64 {
        for i in 0..round * 3 {
            let leaf = leaf_hash(format!("entry {round}.{i}").as_bytes());
            leaves.push(leaf);
            frontier.push(leaf).unwrap();
        }
        let cp = Checkpoint::new(origin, frontier.size(), frontier.root()).unwrap();
        let signed = log.sign(&cp.to_body().unwrap()).unwrap();
        let req = AddCheckpointRequest {
            old_size: witnessed,
            proof: merkle::consistency_proof(&leaves, witnessed, cp.size).unwrap(),
            checkpoint: signed.clone(),
        };
        let (status, body) = witness_answers(
            &req.to_body().unwrap(),
            &log_keys,
            &mut state,
            &cosigner,
            1000 + round,
        );
        assert_eq!(status, 200, "round {round}");
        let lines = parse_cosignatures(&body).unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(
            cosignature::verify(&body, &cp, &cosigner.verifier()),
            Ok(1000 + round)
        );
        let cosigned = open(
            &format!("{signed}{body}"),
            &[log.verifier(), cosigner.verifier()],
        )
        .unwrap();
        assert_eq!(cosigned.verified.len(), 2);
        witnessed = cp.size;
    }

    let cp = Checkpoint::new(origin, frontier.size(), frontier.root()).unwrap();
    let signed = log.sign(&cp.to_body().unwrap()).unwrap();
    let ask = |old_size: u64, proof: Vec<merkle::Hash>, checkpoint: &str, state: &mut _| {
        let req = AddCheckpointRequest {
            old_size,
            proof,
            checkpoint: checkpoint.into(),
        };
        witness_answers(&req.to_body().unwrap(), &log_keys, state, &cosigner, 2000)
    };
    // Same checkpoint again: empty proof, 200.
    assert_eq!(ask(witnessed, vec![], &signed, &mut state).0, 200);
    // Stale old size: 409 with the witness's size, which the client reads back.
    let (status, body) = ask(
        3,
        merkle::consistency_proof(&leaves, 3, cp.size).unwrap(),
        &signed,
        &mut state,
    );
    assert_eq!((status, parse_size_body(&body)), (409, Ok(witnessed)));
    // A fork: same size, other root. 422.
    let fork = Checkpoint::new(origin, cp.size, leaf_hash(b"fork")).unwrap();
    assert_eq!(
        ask(
            witnessed,
            vec![],
            &log.sign(&fork.to_body().unwrap()).unwrap(),
            &mut state
        )
        .0,
        422
    );
    // Unsigned by the log's key: 403.
    let stranger = NoteSigner::from_pkcs8(origin, generate_pkcs8().unwrap().as_bytes()).unwrap();
    assert_eq!(
        ask(
            witnessed,
            vec![],
            &stranger.sign(&cp.to_body().unwrap()).unwrap(),
            &mut state
        )
        .0,
        403
    );
    // Old size above the checkpoint's: 400.
    let small = Checkpoint::new(origin, 2, merkle::root(&leaves[..2])).unwrap();
    assert_eq!(
        ask(
            witnessed,
            vec![],
            &log.sign(&small.to_body().unwrap()).unwrap(),
            &mut state
        )
        .0,
        400
    );
    // A rewritten history with a proof that cannot verify: 422; the witness keeps its state.
    leaves.push(leaf_hash(b"next"));
    let mut rewritten = leaves.clone();
    rewritten[0] = leaf_hash(b"rewritten");
    let next = Checkpoint::new(origin, leaves.len() as u64, merkle::root(&rewritten)).unwrap();
    let proof = merkle::consistency_proof(&rewritten, witnessed, next.size).unwrap();
    assert_eq!(
        ask(
            witnessed,
            proof,
            &log.sign(&next.to_body().unwrap()).unwrap(),
            &mut state
        )
        .0,
        422
    );
    assert_eq!(state.0, witnessed);
    // An empty log's checkpoint must carry the empty root.
    let mut fresh = (0, EMPTY_ROOT);
    let empty = Checkpoint::new(origin, 0, EMPTY_ROOT).unwrap();
    assert_eq!(
        ask(
            0,
            vec![],
            &log.sign(&empty.to_body().unwrap()).unwrap(),
            &mut fresh
        )
        .0,
        200
    );
    let bad_empty = Checkpoint::new(origin, 0, [1; 32]).unwrap();
    assert_eq!(
        ask(
            0,
            vec![],
            &log.sign(&bad_empty.to_body().unwrap()).unwrap(),
            &mut fresh
        )
        .0,
        422
    );
}
