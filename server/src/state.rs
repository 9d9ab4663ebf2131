//! Everything a request needs, passed explicitly (no globals): configuration, store, clock,
//! keys, and the compiled `authorization_details` schemas.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::approvals::ApprovalDesk;
use crate::approvals::webauthn::RelyingParty;
use crate::ciba::details::DetailSchemas;
use crate::clock::Clock;
use crate::config::Config;
use crate::oidc::keys::KeyRing;
use crate::store::Store;

/// Cloned for every request (axum's `State`), so it is one reference count: a struct of
/// a dozen `Arc`s made each clone and drop a dozen atomic operations on cache lines every
/// request shares (about 2.6 % of the server's CPU under traced decisions).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    pub config: Arc<Config>,
    pub issuer: Arc<str>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyRing>,
    /// Compiled JSON Schema per accepted `authorization_details` type.
    pub rar_schemas: Arc<DetailSchemas>,
    /// Wakes the notification worker when a decision enqueued a callback.
    pub outbox_wake: Arc<Notify>,
    /// Hands out Token Status List entries to new credentials.
    pub status_allocator: Arc<crate::credentials::status::StatusAllocator>,
    /// Signed status lists, until they change.
    pub status_lists: Arc<crate::credentials::status::StatusListCache>,
    /// The passkey relying party wallets confirm decisions with.
    pub relying_party: Arc<RelyingParty>,
    /// The console's passkey relying party (its own origin); `None` on an IP address.
    pub console_passkeys: Option<Arc<RelyingParty>>,
    /// Push senders by channel, the live channel's subscribers, and the wake-up for the
    /// push worker after a request with alerts was created.
    pub push: crate::push::Senders,
    pub live: Arc<crate::push::live::LiveHub>,
    pub push_wake: Arc<Notify>,
    /// The active policy, compiled, and the baselines it compares with.
    pub policy: Arc<crate::policy::service::PolicyEngine>,
    /// Shared Signals transmitters' fetched keys.
    pub signal_keys: Arc<crate::signals::keys::TransmitterKeys>,
    /// The OpenID Connect relying party for admin single sign-on, when configured.
    pub admin_sso: Option<Arc<crate::admin::sso::AdminSso>>,
    /// The audit trail as a signed Merkle-tree log.
    pub audit_log: Arc<crate::audit::log::AuditLog>,
    /// Rate limits and quotas.
    pub limits: Arc<crate::limits::Limits>,
    /// Access tokens for this deployment's protected resources, once verified.
    pub verified_tokens: Arc<crate::oidc::resource_auth::VerifiedTokens>,
    /// Signs and checks the bindings of AuthZEN requestable denials (every replica with
    /// the same keys directory holds the same key).
    pub denial_bindings: Arc<crate::authzen::access_request::DenialBindings>,
    /// What deciding and enrolling works with (the same parts as above).
    pub approvals: Arc<ApprovalDesk>,
}

impl AppState {
    pub fn new(
        mut config: Config,
        store: Store,
        clock: Arc<dyn Clock>,
        keys: KeyRing,
    ) -> Result<Self, String> {
        config.declare_gateway_types([]);
        let rar_schemas = DetailSchemas::compile(&config.authorization_details_types)?;
        let issuer = config.issuer();
        let relying_party = RelyingParty::new(
            &config.wallet.rp_id(&issuer),
            config.wallet.origins(&issuer),
        )
        .map_err(|e| format!("wallet.rp_id: {e}"))?;
        let console_passkeys = crate::admin::passkeys::relying_party(&issuer).map(Arc::new);
        let policy = crate::policy::service::PolicyEngine::new(&config)?;
        let admin_sso = crate::admin::sso::AdminSso::new(&config.admin_sso, &issuer)?.map(Arc::new);
        let origin = keys
            .log_origin(&crate::audit::log::origin_of(&issuer))
            .map_err(|e| e.to_string())?;
        let audit_log = crate::audit::log::AuditLog::new(&origin, keys.log_key())?;
        let limits = Arc::new(crate::limits::Limits::from_config(&config.rate_limits));
        let denial_bindings = crate::authzen::access_request::DenialBindings::load(keys.dir())
            .map_err(|e| e.to_string())?;
        let live = Arc::new(crate::push::live::LiveHub::default());
        let push =
            crate::push::Senders::from_config(&config, clock.clone(), live.clone(), store.clone())
                .map_err(|e| e.to_string())?;
        let config = Arc::new(config);
        let issuer: Arc<str> = issuer.into();
        let keys = Arc::new(keys);
        let policy = Arc::new(policy);
        let relying_party = Arc::new(relying_party);
        let outbox_wake = Arc::new(Notify::new());
        let status_allocator = Arc::<crate::credentials::status::StatusAllocator>::default();
        let approvals = Arc::new(ApprovalDesk {
            config: config.clone(),
            issuer: issuer.clone(),
            store: store.clone(),
            clock: clock.clone(),
            keys: keys.clone(),
            status_allocator: status_allocator.clone(),
            policy: policy.clone(),
            outbox_wake: outbox_wake.clone(),
            relying_party: relying_party.clone(),
        });
        Ok(Self(Arc::new(Shared {
            policy,
            push,
            live,
            push_wake: Arc::new(Notify::new()),
            issuer,
            relying_party,
            console_passkeys,
            config,
            store,
            clock,
            keys,
            rar_schemas: Arc::new(rar_schemas),
            outbox_wake,
            status_allocator,
            status_lists: Arc::default(),
            signal_keys: Arc::default(),
            admin_sso,
            audit_log: Arc::new(audit_log),
            limits,
            verified_tokens: Arc::default(),
            denial_bindings: Arc::new(denial_bindings),
            approvals,
        })))
    }
}

impl Shared {
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// What authenticating a client works with, now.
    pub fn authenticating(&self) -> crate::oidc::client_auth::Authenticating<'_> {
        crate::oidc::client_auth::Authenticating {
            store: &self.store,
            issuer: &self.issuer,
            ciba: &self.config.ciba,
            now_secs: self.clock.now_secs(),
        }
    }

    /// The acceptance window for DPoP proofs, now.
    pub fn dpop_window(&self) -> crate::oidc::dpop::ProofWindow {
        crate::oidc::dpop::ProofWindow::at(&self.config.ciba, self.clock.now_secs())
    }

    /// What issuing credentials works with, now.
    pub fn issuing(&self) -> crate::credentials::Issuing<'_> {
        crate::credentials::Issuing {
            issuer: &self.issuer,
            keys: &self.keys,
            store: &self.store,
            tokens: &self.config.tokens,
            environment: &self.config.policy.environment,
            status: &self.status_allocator,
            now_ms: self.now_ms(),
        }
    }

    /// What a decision works with, now.
    pub fn deciding(&self) -> crate::flows::decide::Deciding<'_> {
        crate::flows::decide::Deciding {
            policy: &self.policy,
            store: &self.store,
            details: &self.rar_schemas,
            now_ms: self.now_ms(),
        }
    }

    /// What handing audit checkpoints out works with.
    pub fn publishing(&self) -> crate::audit::sinks::Publishing<'_> {
        crate::audit::sinks::Publishing {
            sinks: &self.config.audit.sinks,
            store: &self.store,
            issuer: &self.issuer,
            clock: self.clock.as_ref(),
        }
    }

    /// What receiving security events works with.
    pub fn signal_receiver(&self) -> crate::signals::SignalReceiver {
        crate::signals::SignalReceiver {
            config: self.config.clone(),
            issuer: self.issuer.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            keys: self.signal_keys.clone(),
            outbox_wake: self.outbox_wake.clone(),
        }
    }

    /// What sending push alerts works with.
    pub fn push_worker(&self) -> crate::push::worker::PushWorker {
        crate::push::worker::PushWorker {
            config: self.config.clone(),
            issuer: self.issuer.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            senders: self.push.clone(),
            wake: self.push_wake.clone(),
        }
    }

    /// What the client notification worker works with.
    pub fn outbox(&self) -> crate::notifications::Outbox {
        crate::notifications::Outbox {
            store: self.store.clone(),
            clock: self.clock.clone(),
            wake: self.outbox_wake.clone(),
            config: self.config.notifications.clone(),
        }
    }

    /// What the periodic chores work with.
    pub fn housekeeping(&self) -> crate::housekeeping::Housekeeping {
        crate::housekeeping::Housekeeping {
            config: self.config.clone(),
            issuer: self.issuer.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            audit_log: self.audit_log.clone(),
            outbox_wake: self.outbox_wake.clone(),
        }
    }

    /// What checking an access token for one of this deployment's resources works with, now.
    pub fn guarding(&self) -> crate::oidc::resource_auth::Guarding<'_> {
        crate::oidc::resource_auth::Guarding {
            issuer: &self.issuer,
            keys: &self.keys,
            store: &self.store,
            verified_tokens: &self.verified_tokens,
            limits: &self.limits,
            window: self.dpop_window(),
            now_ms: self.now_ms(),
        }
    }

    /// What a backchannel authentication request works with.
    pub fn authorizing(&self) -> crate::ciba::authorize::Authorizing<'_> {
        crate::ciba::authorize::Authorizing {
            config: &self.config,
            issuer: &self.issuer,
            store: &self.store,
            clock: self.clock.as_ref(),
            keys: &self.keys,
            policy: &self.policy,
            details: &self.rar_schemas,
            limits: &self.limits,
            approvals: &self.approvals,
            push_wake: &self.push_wake,
        }
    }

    /// What answering AuthZEN requests works with.
    pub fn pdp(&self) -> crate::authzen::Pdp<'_> {
        crate::authzen::Pdp {
            config: &self.config,
            issuer: &self.issuer,
            store: &self.store,
            clock: self.clock.as_ref(),
            policy: &self.policy,
            denial_bindings: &self.denial_bindings,
            authorizing: self.authorizing(),
        }
    }

    /// What issuing access tokens for this deployment's own resources works with, now.
    pub fn minting(&self) -> crate::ciba::client_credentials::Minting<'_> {
        crate::ciba::client_credentials::Minting {
            issuer: &self.issuer,
            keys: &self.keys,
            ttl_secs: self.config.tokens.access_token_ttl_secs,
            gateway_enabled: self.config.gateway.enabled,
            now_secs: self.clock.now_secs(),
        }
    }
}

impl crate::gateway::authority::Services for AppState {
    fn store(&self) -> &crate::store::Store {
        &self.store
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn hold_timeout_secs(&self) -> u64 {
        self.config.gateway.hold_timeout_secs
    }

    fn guarding(&self) -> crate::oidc::resource_auth::Guarding<'_> {
        Shared::guarding(self)
    }

    fn deciding(&self) -> crate::flows::decide::Deciding<'_> {
        Shared::deciding(self)
    }

    fn authorizing(&self) -> crate::ciba::authorize::Authorizing<'_> {
        Shared::authorizing(self)
    }

    fn issuing(&self) -> crate::credentials::Issuing<'_> {
        Shared::issuing(self)
    }
}
