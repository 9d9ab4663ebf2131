//! Integrations: what connects to this server and how it is doing. SCIM tokens and admin
//! keys (never their secrets), the Shared Signals transmitters, the approver push channels
//! and their outbox, and the signing keys. Revoking a SCIM token is the one action here
//! (admins only), through the same service as the admin API and the CLI.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;

use super::agents::urlencode;
use super::format::{age, local};
use super::{Admin, ConfirmedReason, PageError, render, see_other};
use crate::admin::{self, Role, Scope};
use crate::state::AppState;
use crate::store::console_stats::{ActorCount, KeyListing, PushDepth, PushFailures};

/// Keys listed per scope (newest first).
const KEY_LIMIT: i64 = 100;
/// Failure groups listed.
const FAILURE_LIMIT: i64 = 20;
const DAY_MS: i64 = 24 * 3_600_000;
/// How far back signals are counted.
const SIGNAL_WINDOW_MS: i64 = 7 * DAY_MS;

/// An API key as the page shows it.
pub struct Key {
    pub id: String,
    pub id_path: String,
    pub name: String,
    pub role: String,
    pub created: String,
    pub created_age: String,
    pub expires: String,
    /// `live`, `expired` or `revoked`.
    pub status: &'static str,
    pub status_detail: String,
}

impl Key {
    fn of(k: KeyListing, now: i64) -> Self {
        let (status, status_detail) = match (k.revoked_at, k.expires_at) {
            (Some(at), _) => ("revoked", age(at, now)),
            (None, Some(at)) if at <= now => ("expired", age(at, now)),
            _ => ("live", String::new()),
        };
        Key {
            id_path: urlencode(&k.id),
            expires: k
                .expires_at
                .map_or_else(|| "never".into(), |at| age(at, now)),
            created: local(k.created_at),
            created_age: age(k.created_at, now),
            status,
            status_detail,
            id: k.id,
            name: k.name,
            role: k.role,
        }
    }

    pub fn is_live(&self) -> bool {
        self.status == "live"
    }
}

/// A configured Shared Signals transmitter.
pub struct Transmitter {
    pub issuer: String,
    pub delivery: String,
    pub keys: String,
    pub audience: String,
    pub received: i64,
    pub last_received: String,
}

/// A push channel and whether it can send.
pub struct Channel {
    pub name: &'static str,
    pub configured: bool,
    pub what: &'static str,
}

pub struct Failure {
    pub channel: String,
    pub reason: String,
    pub count: i64,
    pub last: String,
}

/// A published signing key.
pub struct SigningKey {
    pub kid: String,
    pub alg: &'static str,
    pub created: String,
    pub active: bool,
    pub retired: String,
    pub published_until: String,
}

#[derive(Template)]
#[template(path = "console/integrations.html")]
struct IntegrationsPage {
    admin: Admin,
    scim_tokens: Vec<Key>,
    admin_keys: Vec<Key>,
    transmitters: Vec<Transmitter>,
    channels: Vec<Channel>,
    depth: PushDepth,
    oldest_push: String,
    failures: Vec<Failure>,
    signing_keys: Vec<SigningKey>,
    jwks_url: String,
}

pub async fn page(admin: Admin, State(state): State<AppState>) -> Result<Response, PageError> {
    let now = state.now_ms();
    let store = &state.store;
    let keys = |scope: Scope| async move {
        Ok::<_, PageError>(
            store
                .list_admin_keys(scope.as_str(), now, KEY_LIMIT)
                .await?
                .into_iter()
                .map(|k| Key::of(k, now))
                .collect::<Vec<_>>(),
        )
    };
    let signals = store
        .events_by_actor_since(
            crate::audit::EventKind::SignalReceived.as_str(),
            now - SIGNAL_WINDOW_MS,
        )
        .await?;
    let transmitters = state
        .config
        .signals
        .transmitters
        .iter()
        .map(|t| Transmitter::of(t, &signals, &state.issuer, now))
        .collect();
    let depth = store.push_depth().await?;
    let failures = store
        .push_failures_since(now - DAY_MS, FAILURE_LIMIT)
        .await?
        .into_iter()
        .map(|f: PushFailures| Failure {
            last: age(f.last_at, now),
            channel: f.channel,
            reason: if f.reason.is_empty() {
                "(no error recorded)".into()
            } else {
                f.reason
            },
            count: f.count,
        })
        .collect();
    let channels = Channel::all(&state.config.push);
    let signing_keys = state
        .keys
        .key_infos()
        .into_iter()
        .rev()
        .map(|k| SigningKey::of(k, now))
        .collect();
    render(&IntegrationsPage {
        scim_tokens: keys(Scope::Scim).await?,
        admin_keys: keys(Scope::Admin).await?,
        transmitters,
        channels,
        oldest_push: depth.oldest_at.map_or("–".into(), |t| age(t, now)),
        depth,
        failures,
        signing_keys,
        jwks_url: format!("{}/jwks.json", state.issuer.trim_end_matches('/')),
        admin,
    })
}

impl Transmitter {
    /// What the page says of transmitter `t`, given the SETs received per actor lately.
    fn of(
        t: &crate::config::TransmitterConfig,
        signals: &[ActorCount],
        issuer: &str,
        now: i64,
    ) -> Self {
        let seen = signals
            .iter()
            .find(|s| s.actor == format!("ssf:{}", t.issuer));
        Transmitter {
            delivery: match &t.poll_url {
                Some(url) => format!("push to /ssf/events, and polled at {url}"),
                None => "push to /ssf/events".into(),
            },
            keys: match (&t.jwks_uri, &t.jwks) {
                (Some(uri), _) => format!("fetched from {uri}"),
                (None, Some(_)) => "inline in the configuration".into(),
                (None, None) => "none configured".into(),
            },
            audience: t.audience.clone().unwrap_or_else(|| issuer.to_owned()),
            received: seen.map_or(0, |s| s.count),
            last_received: seen.map_or_else(|| "none in 7 days".into(), |s| age(s.last_at, now)),
            issuer: t.issuer.clone(),
        }
    }
}

impl Channel {
    /// Every push channel, and whether it is configured.
    fn all(push: &crate::config::PushConfig) -> Vec<Self> {
        vec![
            Channel {
                name: "apns",
                configured: push.apns.is_some(),
                what: "Apple Push Notification service (iOS wallets)",
            },
            Channel {
                name: "fcm",
                configured: push.fcm.is_some(),
                what: "Firebase Cloud Messaging (Android wallets)",
            },
            Channel {
                name: "live",
                configured: true,
                what: "open wallet connections to this server (always on)",
            },
        ]
    }
}

impl SigningKey {
    fn of(k: crate::oidc::keys::KeyInfo, now: i64) -> Self {
        SigningKey {
            active: k.retired_at_ms.is_none(),
            retired: k.retired_at_ms.map(|t| age(t, now)).unwrap_or_default(),
            published_until: k
                .published_until_ms
                .map(|t| age(t, now))
                .unwrap_or_default(),
            created: local(k.created_at_ms),
            kid: k.kid,
            alg: k.alg,
        }
    }
}

/// Revokes a SCIM token (admins only): the identity provider's next call with it is
/// refused. Audited as `scim_token.revoked` by the same service as the admin API.
pub async fn revoke_scim_token(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<ConfirmedReason>,
) -> Result<Response, PageError> {
    admin.require(Role::Admin)?;
    form.confirmed("the identity provider's next SCIM call with this token is refused")?;
    if !admin::revoke_key(
        &state.store,
        Scope::Scim,
        &id,
        state.now_ms(),
        &admin.actor(),
    )
    .await?
    {
        return Err(PageError::NotFound(format!("no live SCIM token {id:?}")));
    }
    Ok(see_other("/console/integrations"))
}
