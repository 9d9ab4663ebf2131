//! What the commands answer, shaped for the screens (snake_case JSON, Unix seconds).

use countersign_shared::approval::{AgentSummary, PendingRequest};
use countersign_wallet_core::{Enrollment, EnrollmentOffer, ShownRequest};
use serde::Serialize;
use serde_json::Value;

/// The app's state as the first screen needs it.
#[derive(Debug, Clone, Serialize)]
pub struct WalletStatus {
    /// A desktop wallet stays locked until its passphrase opens it.
    pub locked: bool,
    /// Desktops: whether a passphrase was chosen already (a sealed state exists). `None`
    /// on phones, which never lock.
    pub passphrase_set: Option<bool>,
    pub enrolled: bool,
    pub platform: &'static str,
    pub server: Option<String>,
    pub subject: Option<String>,
    pub name: Option<String>,
    pub device_id: Option<String>,
}

impl WalletStatus {
    pub fn locked(platform: &'static str, passphrase_set: Option<bool>) -> Self {
        Self {
            locked: true,
            passphrase_set,
            enrolled: false,
            platform,
            server: None,
            subject: None,
            name: None,
            device_id: None,
        }
    }

    pub fn open(
        platform: &'static str,
        passphrase_set: Option<bool>,
        enrollment: Option<Enrollment>,
    ) -> Self {
        let mut status = Self::locked(platform, passphrase_set);
        status.locked = false;
        if let Some(e) = enrollment {
            status.enrolled = true;
            status.server = Some(e.server);
            status.subject = Some(e.subject);
            status.name = Some(e.name);
            status.device_id = Some(e.device_id);
        }
        status
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EnrollmentPreview {
    pub server: String,
    pub subject: String,
    pub name: String,
    pub rp_id: String,
}

impl From<EnrollmentOffer> for EnrollmentPreview {
    fn from(o: EnrollmentOffer) -> Self {
        Self {
            server: o.server,
            subject: o.subject,
            name: o.name,
            rp_id: o.rp_id,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PendingItem {
    pub id: String,
    pub agent: String,
    pub action: Option<String>,
    pub requested_at: i64,
    pub expires_at: i64,
}

impl From<PendingRequest> for PendingItem {
    fn from(p: PendingRequest) -> Self {
        Self {
            id: p.id,
            agent: p.agent,
            action: p.action,
            requested_at: p.requested_at,
            expires_at: p.expires_at,
        }
    }
}

/// A request the wallet verified: exactly the transaction whose hash an approval signs,
/// and the server whose signature it checked.
#[derive(Debug, Clone, Serialize)]
pub struct RequestView {
    pub request_id: String,
    pub agent: AgentSummary,
    pub approver: String,
    pub action: Option<String>,
    pub authorization_details: Option<Value>,
    pub binding_message: Option<String>,
    pub scope: String,
    pub task_id: Option<String>,
    pub requested_at: i64,
    pub expires_at: i64,
    pub credential_validity_secs: u64,
    pub policy_reason: Option<String>,
    pub risk_signals: Vec<Value>,
    pub transaction_hash: String,
    pub signed_by: String,
}

impl RequestView {
    pub fn new(shown: ShownRequest, signed_by: String) -> Self {
        let t = shown.transaction;
        Self {
            request_id: t.request_id,
            agent: t.agent,
            approver: t.approver,
            action: t.action,
            authorization_details: t.authorization_details,
            binding_message: t.binding_message,
            scope: t.scope,
            task_id: t.task_id,
            requested_at: t.requested_at,
            expires_at: t.expires_at,
            credential_validity_secs: t.credential_validity_secs,
            policy_reason: t.policy_reason,
            risk_signals: t.risk_signals,
            transaction_hash: shown.transaction_hash,
            signed_by,
        }
    }
}
