//! Where a request stands (`status`) and how it was decided (`decision_method`), as the
//! `auth_requests` table spells them.

use crate::store::StoreError;

/// How the human (or the developer standing in for one) confirmed: a decided request's
/// `decision_method`, as [`Self::as_str`] spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalMethod {
    /// `--dev-approvals`: no human confirmation took place, and tokens say so.
    Developer,
    /// The wallet: a passkey assertion with user verification, and the device key's
    /// signature over the transaction.
    Wallet,
    /// A policy allowed the action; no human was asked.
    Policy,
}

impl ApprovalMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Developer => "dev",
            Self::Wallet => "passkey+device_key",
            Self::Policy => "policy",
        }
    }
}

/// How a decided request was decided (`decision_method`): by one of the
/// [`ApprovalMethod`]s, or ended without an answer, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionMethod {
    Approval(ApprovalMethod),
    /// Its agent withdrew it (the held call was cancelled).
    Withdrawn,
    /// Ended when its human was offboarded.
    Offboarding,
    /// Ended when its agent was suspended.
    Suspension,
}

impl DecisionMethod {
    /// A wallet's decision: the human confirmed with a passkey and the device key.
    pub const WALLET: Self = Self::Approval(ApprovalMethod::Wallet);

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approval(method) => method.as_str(),
            Self::Withdrawn => "withdrawn",
            Self::Offboarding => "offboarding",
            Self::Suspension => "suspension",
        }
    }

    /// Every method, as stored.
    pub const ALL: [Self; 6] = [
        Self::Approval(ApprovalMethod::Developer),
        Self::WALLET,
        Self::Approval(ApprovalMethod::Policy),
        Self::Withdrawn,
        Self::Offboarding,
        Self::Suspension,
    ];

    pub(super) fn parse(text: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("decision method {text:?}")))
    }
}

impl From<ApprovalMethod> for DecisionMethod {
    fn from(method: ApprovalMethod) -> Self {
        Self::Approval(method)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthRequestStatus {
    #[default]
    Pending,
    Approved,
    Denied,
    /// Approved and its tokens were handed out (or pushed); nothing more to issue.
    Issued,
}

impl AuthRequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Issued => "issued",
        }
    }

    pub(super) fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "issued" => Self::Issued,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "auth request status {other:?}"
                )));
            }
        })
    }
}
