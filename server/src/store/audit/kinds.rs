//! Every kind of event the audit trail records, named once: the trail stores the
//! text ([`EventKind::as_str`]), code names the variant.

/// The kind of an audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// What a policy decided, with the facts it decided on.
    DecisionMade,
    CredentialRevoked,
    CredentialRenewed,
    HumanOffboarded,
    HumanReactivated,
    /// The agents of an offboarded human.
    AgentsSuspended,
    /// The kill switch.
    AgentSuspended,
    AgentResumed,
    AgentReassigned,
    /// The agents of an offboarded human, handed to their manager.
    AgentsReassigned,
    RequestsEnded,
    DevicesDisabled,
    /// A Security Event Token from the identity provider, and what it did.
    SignalReceived,
    /// A human admin signed in through the IdP (single sign-on).
    AdminSignedIn,
    /// An agent's step-up refused: its approver already had too many of its requests
    /// waiting (approval fatigue).
    RequestsFloodRefused,
    /// A single-use console sign-in link was made (`countersign admin sign-in-link`); its
    /// redemption is `admin.signed_in` with `"method": "sign_in_link"`.
    SignInLinkCreated,
    /// An admin registered a console passkey (subject `admin-passkey:ID`); signing in with
    /// it is `admin.signed_in` with `"method": "passkey"`.
    AdminPasskeyRegistered,
    AdminPasskeyRevoked,
    /// An admin session ended (its key revoked).
    AdminSignedOut,
    // Who may approve and what an agent may do. Updates record each changed field as
    // `{"changes": {FIELD: {"from": OLD, "to": NEW}}}` (see `audit::Changes`).
    HumanCreated,
    /// E-mail, name, department, title, role or manager changed (employment status is
    /// `human.offboarded` / `human.reactivated`).
    HumanUpdated,
    GroupCreated,
    /// The display name changed (what policies and routes name never does).
    GroupUpdated,
    GroupDeleted,
    GroupMemberAdded,
    GroupMemberRemoved,
    AgentRegistered,
    /// Tools, approver route or profile changed.
    AgentUpdated,
    AdminKeyCreated,
    AdminKeyRevoked,
    ScimTokenCreated,
    ScimTokenRevoked,
    /// A server started with a configuration (its digest, secrets redacted).
    ConfigLoaded,
    // Credentials, policy versions, wallets and decisions on requests.
    CredentialIssued,
    PolicyAdded,
    PolicyActivated,
    DeviceInvited,
    DeviceEnrolled,
    DeviceRemoved,
    RequestApproved,
    RequestDenied,
    /// The trace event of what became of a gateway call.
    GatewayCall,
    /// An approval request its agent withdrew (the user cancelled the held call).
    RequestWithdrawn,
    /// An AuthZEN approval redeemed by a re-evaluation.
    ApprovalUsed,
}

impl EventKind {
    /// Every kind, in the order declared.
    pub const ALL: &[EventKind] = &[
        EventKind::DecisionMade,
        EventKind::CredentialRevoked,
        EventKind::CredentialRenewed,
        EventKind::HumanOffboarded,
        EventKind::HumanReactivated,
        EventKind::AgentsSuspended,
        EventKind::AgentSuspended,
        EventKind::AgentResumed,
        EventKind::AgentReassigned,
        EventKind::AgentsReassigned,
        EventKind::RequestsEnded,
        EventKind::DevicesDisabled,
        EventKind::SignalReceived,
        EventKind::AdminSignedIn,
        EventKind::RequestsFloodRefused,
        EventKind::SignInLinkCreated,
        EventKind::AdminPasskeyRegistered,
        EventKind::AdminPasskeyRevoked,
        EventKind::AdminSignedOut,
        EventKind::HumanCreated,
        EventKind::HumanUpdated,
        EventKind::GroupCreated,
        EventKind::GroupUpdated,
        EventKind::GroupDeleted,
        EventKind::GroupMemberAdded,
        EventKind::GroupMemberRemoved,
        EventKind::AgentRegistered,
        EventKind::AgentUpdated,
        EventKind::AdminKeyCreated,
        EventKind::AdminKeyRevoked,
        EventKind::ScimTokenCreated,
        EventKind::ScimTokenRevoked,
        EventKind::ConfigLoaded,
        EventKind::CredentialIssued,
        EventKind::PolicyAdded,
        EventKind::PolicyActivated,
        EventKind::DeviceInvited,
        EventKind::DeviceEnrolled,
        EventKind::DeviceRemoved,
        EventKind::RequestApproved,
        EventKind::RequestDenied,
        EventKind::GatewayCall,
        EventKind::RequestWithdrawn,
        EventKind::ApprovalUsed,
    ];

    /// The kind as the trail stores it.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::DecisionMade => "decision.made",
            EventKind::CredentialRevoked => "credential.revoked",
            EventKind::CredentialRenewed => "credential.renewed",
            EventKind::HumanOffboarded => "human.offboarded",
            EventKind::HumanReactivated => "human.reactivated",
            EventKind::AgentsSuspended => "agents.suspended",
            EventKind::AgentSuspended => "agent.suspended",
            EventKind::AgentResumed => "agent.resumed",
            EventKind::AgentReassigned => "agent.reassigned",
            EventKind::AgentsReassigned => "agents.reassigned",
            EventKind::RequestsEnded => "requests.ended",
            EventKind::DevicesDisabled => "devices.disabled",
            EventKind::SignalReceived => "signal.received",
            EventKind::AdminSignedIn => "admin.signed_in",
            EventKind::RequestsFloodRefused => "requests.flood_refused",
            EventKind::SignInLinkCreated => "admin.sign_in_link_created",
            EventKind::AdminPasskeyRegistered => "admin.passkey_registered",
            EventKind::AdminPasskeyRevoked => "admin.passkey_revoked",
            EventKind::AdminSignedOut => "admin.signed_out",
            EventKind::HumanCreated => "human.created",
            EventKind::HumanUpdated => "human.updated",
            EventKind::GroupCreated => "group.created",
            EventKind::GroupUpdated => "group.updated",
            EventKind::GroupDeleted => "group.deleted",
            EventKind::GroupMemberAdded => "group.member_added",
            EventKind::GroupMemberRemoved => "group.member_removed",
            EventKind::AgentRegistered => "agent.registered",
            EventKind::AgentUpdated => "agent.updated",
            EventKind::AdminKeyCreated => "admin_key.created",
            EventKind::AdminKeyRevoked => "admin_key.revoked",
            EventKind::ScimTokenCreated => "scim_token.created",
            EventKind::ScimTokenRevoked => "scim_token.revoked",
            EventKind::ConfigLoaded => "config.loaded",
            EventKind::CredentialIssued => "credential.issued",
            EventKind::PolicyAdded => "policy.added",
            EventKind::PolicyActivated => "policy.activated",
            EventKind::DeviceInvited => "device.invited",
            EventKind::DeviceEnrolled => "device.enrolled",
            EventKind::DeviceRemoved => "device.removed",
            EventKind::RequestApproved => "request.approved",
            EventKind::RequestDenied => "request.denied",
            EventKind::GatewayCall => "gateway.call",
            EventKind::RequestWithdrawn => "request.withdrawn",
            EventKind::ApprovalUsed => "access.approval_used",
        }
    }

    /// The kind `text` names, if it is one (not on a hot path: the writer's facets
    /// compare the few kinds they index directly).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn every_kind_is_named_once_and_parses_back() {
        let mut seen = std::collections::HashSet::new();
        for kind in EventKind::ALL {
            assert!(seen.insert(kind.as_str()), "{kind} is named twice");
            assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(EventKind::parse("no.such_kind"), None);
    }
}
