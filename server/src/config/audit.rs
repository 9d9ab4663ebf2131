//! The audit trail: how often its checkpoints are signed and where they are sent.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Where each new signed checkpoint (a c2sp.org/tlog-checkpoint signed note) is sent, so
/// that a copy exists outside the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckpointSink {
    /// Written to `path` (atomically replaced): the newest checkpoint, for a backup job,
    /// another host or `countersign audit verify --checkpoint`.
    File { path: std::path::PathBuf },
    /// Sent to a syslog collector at `address` (`host:port`, UDP) as an RFC 5424 message
    /// whose text carries the note, base64 encoded.
    Syslog { address: String },
    /// Submitted to a witness (c2sp.org/tlog-witness `add-checkpoint` at `url`) with a
    /// consistency proof from the last checkpoint it cosigned; its cosignature, verified
    /// with `key` (its verifier key), is added to the stored note.
    Witness { url: String, key: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// How often the trail is signed as a checkpoint (when it grew).
    pub checkpoint_interval_secs: u64,
    pub sinks: Vec<CheckpointSink>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_interval_secs: 60,
            sinks: Vec::new(),
        }
    }
}

impl AuditConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            key: "audit.sinks",
            reason,
        };
        for sink in &self.sinks {
            match sink {
                CheckpointSink::File { path } if path.as_os_str().is_empty() => {
                    return Err(invalid("a file sink needs a path".into()));
                }
                CheckpointSink::File { .. } => {}
                CheckpointSink::Syslog { address } => {
                    if address
                        .rsplit_once(':')
                        .and_then(|(_, p)| p.parse::<u16>().ok())
                        .is_none()
                    {
                        return Err(invalid(format!(
                            "syslog address {address:?} must be host:port"
                        )));
                    }
                }
                CheckpointSink::Witness { url, key } => {
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        return Err(invalid(format!("witness url {url:?} must be http(s)")));
                    }
                    countersign_tlog::note::NoteVerifier::parse(key).map_err(|e| {
                        invalid(format!("witness {url}: key is not a verifier key: {e}"))
                    })?;
                }
            }
        }
        Ok(())
    }
}
