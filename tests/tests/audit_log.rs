#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The audit trail as a transparency log, against an insider who can write the database.
//! Deleting the newest events, rewriting the head row and every later checkpoint leaves
//! nothing in the database to contradict the trail; a signed checkpoint held elsewhere
//! does (a consistency proof fails). Checkpoints leave the database through the
//! well-known URL and the configured sinks: a file, syslog, and a witness
//! (c2sp.org/tlog-witness) that cosigns only checkpoints consistent with the last one it
//! saw. Any event has an inclusion proof an auditor checks offline.

use countersign_server::audit::{checkpoint, log};
use countersign_server::config::CheckpointSink;
use countersign_tests::fakes::witness::FakeWitness;
use countersign_tests::{Agent, Db, TestServer, both_backends};
use countersign_tlog::note::{self, NoteVerifier};
use serde_json::json;

both_backends!(
    truncation_and_rewriting_are_found_against_an_exported_checkpoint,
    a_witness_cosigns_consistent_checkpoints_and_refuses_a_rewritten_trail,
    checkpoints_reach_the_file_and_syslog_and_events_have_inclusion_proofs,
);

async fn orders(s: &TestServer, agent: &Agent, n: usize) {
    let details =
        json!([{"type": "purchase_order", "vendor": "Acme", "amount": 1200, "currency": "USD"}])
            .to_string();
    for _ in 0..n {
        s.approved_tokens(agent, "alice", &[("authorization_details", &details)], None)
            .await;
    }
}

async fn server(db: Db, sinks: Vec<CheckpointSink>) -> (TestServer, Agent) {
    let s = TestServer::start_with(db, |c| c.audit.sinks = sinks).await;
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    (s, agent)
}

async fn head(s: &TestServer) -> i64 {
    s.state().store.audit_head().await.unwrap().seq
}

async fn sign(s: &TestServer) -> i64 {
    checkpoint::sign_head(&s.state().audit_log, &s.state().publishing())
        .await
        .unwrap()
        .expect("a new checkpoint")
}

/// The log's verifier key as an auditor would fetch it.
async fn vkey(s: &TestServer) -> String {
    let text = s
        .http
        .get(s.url("/.well-known/countersign/audit-log-key"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.trim().to_owned()
}

async fn extends(s: &TestServer, note: &str, vkey: &str) -> log::Extension {
    log::extends(
        &s.state().store,
        s.state().audit_log.origin(),
        note,
        &[NoteVerifier::parse(vkey).unwrap()],
    )
    .await
    .unwrap()
}

async fn truncation_and_rewriting_are_found_against_an_exported_checkpoint(db: Db) {
    let (s, agent) = server(db, vec![]).await;
    orders(&s, &agent, 2).await;
    let exported_size = sign(&s).await;
    // An auditor copies the newest checkpoint off the well-known URL.
    let resp = s
        .http
        .get(s.url("/.well-known/countersign/audit-checkpoint"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    let exported = resp.text().await.unwrap();
    let vkey = vkey(&s).await;
    let opened = note::open(&exported, &[NoteVerifier::parse(&vkey).unwrap()]).unwrap();
    assert!(
        opened.text.contains(&format!("\n{exported_size}\n")),
        "{exported}"
    );

    // The trail grows and is checkpointed again; it extends the exported checkpoint.
    orders(&s, &agent, 2).await;
    sign(&s).await;
    let fine = extends(&s, &exported, &vkey).await;
    assert!(fine.extends, "{fine:?}");
    assert_eq!(fine.checkpoint_size as i64, exported_size);
    assert_eq!(fine.log_size as i64, head(&s).await);
    assert!(!fine.consistency_proof.is_empty());

    // The insider deletes the newest events (some inside the exported checkpoint), makes
    // the head row agree, and deletes every later checkpoint.
    let kept = exported_size - 2;
    s.execute_sql(&format!("DELETE FROM audit_events WHERE seq > {kept}"))
        .await;
    s.execute_sql(&format!(
        "UPDATE audit_head SET seq = {kept}, hash = (SELECT hash FROM audit_events WHERE seq = {kept})"
    ))
    .await;
    s.execute_sql(&format!("DELETE FROM log_checkpoints WHERE size > {kept}"))
        .await;
    // Nothing in the database contradicts the trail any more...
    let report = countersign_server::audit::verify(
        &s.state().store,
        &s.state().keys.jwks(),
        &s.state().audit_log,
    )
    .await
    .unwrap();
    assert!(report.intact, "{report:?}");
    // ...but the checkpoint held elsewhere does.
    let cut = extends(&s, &exported, &vkey).await;
    assert!(!cut.extends);
    assert!(
        cut.reason.as_deref().unwrap().contains("removed"),
        "{cut:?}"
    );

    // Growing the trail back past the exported size with other events does not help:
    // its first events are not the ones the checkpoint signed.
    orders(&s, &agent, 3).await;
    assert!(head(&s).await > exported_size);
    let forked = extends(&s, &exported, &vkey).await;
    assert!(!forked.extends);
    assert!(
        forked.reason.as_deref().unwrap().contains("rewritten"),
        "{forked:?}"
    );

    // A checkpoint not signed by the log's key is refused outright.
    let other = note::NoteSigner::from_pkcs8(
        s.state().audit_log.origin(),
        note::generate_pkcs8().unwrap().as_bytes(),
    )
    .unwrap();
    let forged = other.sign(&opened.text).unwrap();
    assert!(
        log::extends(
            &s.state().store,
            s.state().audit_log.origin(),
            &forged,
            &[NoteVerifier::parse(&vkey).unwrap()],
        )
        .await
        .is_err()
    );
    s.stop().await;
}

async fn a_witness_cosigns_consistent_checkpoints_and_refuses_a_rewritten_trail(db: Db) {
    // The witness must know the log's key before the server starts; a first server with
    // the same keys directory is not needed: the key is created on first start, so start,
    // read it, and restart with the witness configured.
    let (mut s, agent) = server(db, vec![]).await;
    let log_vkey = vkey(&s).await;
    let witness = FakeWitness::start(&log_vkey, 1_796_000_000).await;
    s.reconfigure(|c| {
        c.audit.sinks = vec![CheckpointSink::Witness {
            url: witness.url(),
            key: witness.vkey(),
        }];
    })
    .await;

    orders(&s, &agent, 1).await;
    let first = sign(&s).await;
    assert_eq!(witness.holds() as i64, first);
    orders(&s, &agent, 2).await;
    let second = sign(&s).await;
    assert_eq!(witness.holds() as i64, second, "{:?}", witness.refused());
    assert_eq!(witness.cosigned(), 2);
    // The stored checkpoint now carries the witness's cosignature.
    let stored = s
        .state()
        .store
        .latest_log_checkpoint()
        .await
        .unwrap()
        .unwrap();
    let opened = note::open(
        &stored.note,
        &[NoteVerifier::parse(&log_vkey).unwrap(), witness.verifier()],
    )
    .unwrap();
    assert_eq!(opened.verified.len(), 2, "log signature and cosignature");

    // The insider rewrites the trail and its checkpoints, and more events follow: the
    // next checkpoint is not consistent with the one the witness holds, and it refuses.
    let kept = second - 3;
    s.execute_sql(&format!("DELETE FROM audit_events WHERE seq > {kept}"))
        .await;
    s.execute_sql(&format!(
        "UPDATE audit_head SET seq = {kept}, hash = (SELECT hash FROM audit_events WHERE seq = {kept})"
    ))
    .await;
    s.execute_sql(&format!("DELETE FROM log_checkpoints WHERE size > {kept}"))
        .await;
    orders(&s, &agent, 3).await;
    let third = sign(&s).await;
    assert!(third > second);
    assert_eq!(
        witness.holds() as i64,
        second,
        "the witness kept the old checkpoint"
    );
    let refused = witness.refused();
    assert!(
        refused.iter().any(|(status, _)| *status == 422),
        "{refused:?}"
    );
    let stored = s
        .state()
        .store
        .latest_log_checkpoint()
        .await
        .unwrap()
        .unwrap();
    assert!(
        note::open(&stored.note, &[witness.verifier()]).is_err(),
        "no cosignature on the forked checkpoint"
    );
    witness.stop();
    s.stop().await;
}

async fn checkpoints_reach_the_file_and_syslog_and_events_have_inclusion_proofs(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoint.txt");
    let collector = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sinks = vec![
        CheckpointSink::File { path: file.clone() },
        CheckpointSink::Syslog {
            address: collector.local_addr().unwrap().to_string(),
        },
    ];
    let (s, agent) = server(db, sinks).await;
    orders(&s, &agent, 2).await;
    let size = sign(&s).await;
    let stored = s
        .state()
        .store
        .latest_log_checkpoint()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stored.note);
    let mut buf = vec![0u8; 65_536];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), collector.recv(&mut buf))
        .await
        .expect("a syslog message")
        .unwrap();
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(message.starts_with("<85>1 "), "{message}");
    let note_b64 = message.rsplit_once("note=").unwrap().1;
    use base64::Engine as _;
    let carried = base64::engine::general_purpose::STANDARD
        .decode(note_b64)
        .unwrap();
    assert_eq!(String::from_utf8(carried).unwrap(), stored.note);

    // Every event has an inclusion proof in that checkpoint, checkable with the key alone.
    let vkey = vkey(&s).await;
    for seq in 1..=size {
        let proof = log::prove(&s.state().store, &s.state().audit_log, seq)
            .await
            .unwrap();
        assert_eq!(proof.tree_size as i64, size);
        log::check_inclusion(&proof, &vkey).unwrap();
        // A changed detail, another event's path, or another key: refused.
        let mut edited = proof.clone();
        edited.event.detail = edited.event.detail.replace('1', "2");
        if edited.event.detail != proof.event.detail {
            assert!(log::check_inclusion(&edited, &vkey).is_err());
        }
        let mut moved = proof.clone();
        moved.leaf_index = (proof.leaf_index + 1) % proof.tree_size;
        assert!(log::check_inclusion(&moved, &vkey).is_err());
    }
    let stranger = note::NoteSigner::from_pkcs8(
        s.state().audit_log.origin(),
        note::generate_pkcs8().unwrap().as_bytes(),
    )
    .unwrap();
    let proof = log::prove(&s.state().store, &s.state().audit_log, 1)
        .await
        .unwrap();
    assert!(log::check_inclusion(&proof, &stranger.verifier().to_string()).is_err());
    s.stop().await;
}
