//! What deciding and enrolling works with: built once with the server, shared by the
//! wallet endpoints, the CIBA endpoint (policy approvals of ping and push requests) and
//! the group-commit writer a decision is recorded on (which needs it owned).

use std::sync::Arc;

use tokio::sync::Notify;

use super::webauthn::RelyingParty;
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::Issuing;
use crate::credentials::status::StatusAllocator;
use crate::oidc::dpop::ProofWindow;
use crate::oidc::keys::KeyRing;
use crate::policy::service::PolicyEngine;
use crate::store::Store;

pub struct ApprovalDesk {
    /// `tokens` (credential lifetimes), `wallet` (ceremony and invitation lifetimes),
    /// `ciba` (clock skew, DPoP proof age) and the policy's environment.
    pub config: Arc<Config>,
    pub issuer: Arc<str>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyRing>,
    /// Token Status List entries for credentials issued with a push-mode decision.
    pub status_allocator: Arc<StatusAllocator>,
    /// Learns the baselines a human's approval adds to.
    pub policy: Arc<PolicyEngine>,
    /// The notification worker's, rung after a decision queued a client notification.
    pub outbox_wake: Arc<Notify>,
    /// The passkey relying party wallets confirm decisions with.
    pub relying_party: Arc<RelyingParty>,
}

impl ApprovalDesk {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The acceptance window for the wallet's DPoP proofs, now.
    pub fn dpop_window(&self) -> ProofWindow {
        ProofWindow::at(&self.config.ciba, self.clock.now_secs())
    }

    /// What issuing a credential works with, now.
    pub fn issuing(&self) -> Issuing<'_> {
        Issuing {
            issuer: &self.issuer,
            keys: &self.keys,
            store: &self.store,
            tokens: &self.config.tokens,
            environment: &self.config.policy.environment,
            status: &self.status_allocator,
            now_ms: self.now_ms(),
        }
    }
}
