//! Getting each signed checkpoint out of the database, where whoever rewrites the trail
//! cannot reach it: a file, a syslog collector, HTTP witnesses (c2sp.org/tlog-witness).
//! A sink that fails is logged and tried again with the next checkpoint; it never holds
//! up the trail. A witness is only ever asked to cosign a checkpoint consistent with the
//! last one it cosigned, so a witness that holds a checkpoint is a check against forks
//! and truncation as well as a copy.

use countersign_tlog::checkpoint::Checkpoint;
use countersign_tlog::note::NoteVerifier;
use countersign_tlog::witness::{self, AddCheckpointRequest};
use countersign_tlog::{cosignature, merkle};

use super::log::{LogError, leaves};
use crate::clock::Clock;
use crate::config::CheckpointSink;
use crate::store::Store;
use crate::store::log_checkpoints::LogCheckpointRecord;

/// What handing checkpoints out works with: the configured sinks, the store (witnesses'
/// sizes and cosigned notes), the issuer (the syslog host name) and the clock.
pub struct Publishing<'a> {
    pub sinks: &'a [CheckpointSink],
    pub store: &'a Store,
    pub issuer: &'a str,
    pub clock: &'a dyn Clock,
}

/// Hands `record` to every configured sink.
pub async fn publish(state: &Publishing<'_>, record: &LogCheckpointRecord) {
    for sink in state.sinks {
        let sent = match sink {
            CheckpointSink::File { path } => to_file(path, &record.note).await,
            CheckpointSink::Syslog { address } => to_syslog(state, address, record).await,
            CheckpointSink::Witness { url, key } => to_witness(state, url, key, record).await,
        };
        match sent {
            Ok(()) => tracing::debug!(size = record.size, ?sink, "audit checkpoint sent"),
            Err(e) => {
                metrics::counter!("countersign_audit_sink_failures_total").increment(1);
                tracing::warn!(size = record.size, ?sink, error = %e, "sending an audit checkpoint failed; the next one will be sent");
            }
        }
    }
}

/// Replaces `path` with `note` (write beside it, then rename: a reader never sees half).
async fn to_file(path: &std::path::Path, note: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, note)
        .await
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// An RFC 5424 message (facility `authpriv`, severity `notice`) carrying the note in
/// base64 on one line, so a collector keeps it intact.
pub fn syslog_message(hostname: &str, at_rfc3339: &str, record: &LogCheckpointRecord) -> String {
    use base64::Engine as _;
    let note = base64::engine::general_purpose::STANDARD.encode(&record.note);
    // PRI = facility 10 (authpriv) * 8 + severity 5 (notice) = 85.
    format!(
        "<85>1 {at_rfc3339} {hostname} countersign - audit-checkpoint - size={} root={} note={note}",
        record.size, record.root
    )
}

async fn to_syslog(
    state: &Publishing<'_>,
    address: &str,
    record: &LogCheckpointRecord,
) -> Result<(), String> {
    let at = crate::clock::rfc3339(record.at.div_euclid(1000));
    let host = super::log::origin_of(state.issuer);
    let host = host.split(['/', ':']).next().unwrap_or("-");
    let message = syslog_message(host, &at, record);
    let socket = tokio::net::UdpSocket::bind(if address.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    })
    .await
    .map_err(|e| e.to_string())?;
    socket
        .send_to(message.as_bytes(), address)
        .await
        .map(|_| ())
        .map_err(|e| format!("{address}: {e}"))
}

/// Asks the witness at `url` to cosign `record`, from the size it last cosigned; on 409 it
/// learns the witness's size and tries once more.
async fn to_witness(
    state: &Publishing<'_>,
    url: &str,
    key: &str,
    record: &LogCheckpointRecord,
) -> Result<(), String> {
    let verifier = NoteVerifier::parse(key).map_err(|e| e.to_string())?;
    let text = record
        .note
        .split_once("\n\n")
        .map(|(text, _)| format!("{text}\n"))
        .ok_or("the stored note has no signature")?;
    let checkpoint = Checkpoint::parse(&text).map_err(|e| e.to_string())?;
    let mut old = u64::try_from(
        state
            .store
            .witness_size(url)
            .await
            .map_err(|e| e.to_string())?,
    )
    .unwrap_or_default();
    for _ in 0..2 {
        match submit(state, url, old, &checkpoint, record)
            .await
            .map_err(|e| e.to_string())?
        {
            Answer::Cosigned(body) => {
                let mut note = record.note.clone();
                for sig in witness::parse_cosignatures(&body).map_err(|e| e.to_string())? {
                    let line = sig.to_line();
                    cosignature::verify(&line, &checkpoint, &verifier)
                        .map_err(|e| format!("the witness's cosignature: {e}"))?;
                    note.push_str(&line);
                }
                let store = &state.store;
                store
                    .update_log_checkpoint_note(record.size, &note)
                    .await
                    .map_err(|e| e.to_string())?;
                store
                    .set_witness_size(url, record.size, state.clock.now_ms())
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(());
            }
            Answer::Holds(size) if size > checkpoint.size => {
                return Err(format!(
                    "the witness holds a checkpoint of {size} events, more than this log's {}: the trail was cut or forked",
                    checkpoint.size
                ));
            }
            Answer::Holds(size) => {
                state
                    .store
                    .set_witness_size(
                        url,
                        i64::try_from(size).unwrap_or(i64::MAX),
                        state.clock.now_ms(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                old = size;
            }
            Answer::Refused(status, body) => {
                return Err(format!("the witness answered {status}: {body}"));
            }
        }
    }
    Err("the witness's size kept changing".into())
}

enum Answer {
    Cosigned(String),
    /// 409: the size of the checkpoint the witness holds.
    Holds(u64),
    Refused(u16, String),
}

async fn submit(
    state: &Publishing<'_>,
    url: &str,
    old: u64,
    checkpoint: &Checkpoint,
    record: &LogCheckpointRecord,
) -> Result<Answer, LogError> {
    let proof = if old == 0 || old >= checkpoint.size {
        Vec::new()
    } else {
        let all = leaves(state.store, checkpoint.size).await?;
        merkle::consistency_proof(&all, old, checkpoint.size)?
    };
    let body = AddCheckpointRequest {
        old_size: old,
        proof,
        checkpoint: record.note.clone(),
    }
    .to_body()?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| LogError::Refused(e.to_string()))?;
    let resp = client
        .post(format!("{}/add-checkpoint", url.trim_end_matches('/')))
        .body(body)
        .send()
        .await
        .map_err(|e| LogError::Refused(format!("{url}: {e}")))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| LogError::Refused(e.to_string()))?;
    if bytes.len() > witness::MAX_RESPONSE_LEN {
        return Err(LogError::Refused(
            "the witness's answer is too large".into(),
        ));
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(match status {
        200 => Answer::Cosigned(text),
        409 => Answer::Holds(witness::parse_size_body(&text)?),
        other => Answer::Refused(other, text.chars().take(200).collect()),
    })
}
