//! Administering issued credentials: listing them and revoking one, all of an agent's, all
//! approved by a human, or all held by a human's agents. The CLI and the admin API both go
//! through here. Revocation is recorded with its reason and shows in the status list from
//! the next fetch.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{self, EventKind, NewEvent};
use crate::store::tokens::{TokenCursor, TokenRecord, TokenSelector};
use crate::store::{Store, StoreError};

/// An issued credential as administrators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CredentialSummary {
    /// The credential's `jti` (its VC `id` is `{issuer}/credentials/{jti}`).
    pub id: String,
    pub agent: String,
    /// The human whose approval it records.
    pub approver: String,
    pub token_type: String,
    /// Unix times in seconds.
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    pub status_list: Option<i64>,
    pub status_idx: Option<i64>,
    /// The agent's task the approval was for.
    pub task_id: Option<String>,
    /// The credential this one renews, if it is a renewal.
    pub renewal_of: Option<String>,
}

impl From<TokenRecord> for CredentialSummary {
    fn from(t: TokenRecord) -> Self {
        CredentialSummary {
            id: t.jti,
            agent: t.client_id.into_string(),
            approver: t.subject.into_string(),
            token_type: t.token_type,
            issued_at: t.issued_at.div_euclid(1000),
            expires_at: t.expires_at.div_euclid(1000),
            revoked_at: t.revoked_at.map(|r| r.div_euclid(1000)),
            revoked_reason: t.revoked_reason,
            status_list: t.status_list,
            status_idx: t.status_idx,
            task_id: t.task_id,
            renewal_of: t.renewal_of,
        }
    }
}

/// Selects credentials for a bulk revocation: exactly one of the fields.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeMany {
    /// All credentials held by this agent (client id).
    #[serde(default)]
    pub agent: Option<String>,
    /// All credentials approved by this human (subject).
    #[serde(default)]
    pub approver: Option<String>,
    /// All credentials held by agents this human owns.
    #[serde(default)]
    pub owner: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeOne {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Revoked {
    /// Ids of the credentials this call revoked (already revoked or expired ones are not
    /// listed).
    pub revoked: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    Invalid(String),
    #[error("no credential {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Most credentials one page of a listing returns.
pub const LIST_LIMIT: i64 = 1000;

/// One page of credentials, newest first, and where the next page starts (absent on the
/// last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialPage {
    pub credentials: Vec<CredentialSummary>,
    pub next: Option<String>,
}

/// The selector named by the optional filters: at most one may be given.
pub fn selector<'a>(
    agent: Option<&'a str>,
    approver: Option<&'a str>,
    owner: Option<&'a str>,
) -> Result<TokenSelector<'a>, ManageError> {
    match (agent, approver, owner) {
        (None, None, None) => Ok(TokenSelector::All),
        (Some(a), None, None) => Ok(TokenSelector::Agent(a)),
        (None, Some(h), None) => Ok(TokenSelector::Approver(h)),
        (None, None, Some(o)) => Ok(TokenSelector::Owner(o)),
        _ => Err(ManageError::Invalid(
            "give at most one of agent, approver, owner".into(),
        )),
    }
}

/// The newest credentials matching `selector`, at most [`LIST_LIMIT`].
pub async fn list(
    store: &Store,
    selector: TokenSelector<'_>,
) -> Result<Vec<CredentialSummary>, ManageError> {
    Ok(page(store, selector, None, LIST_LIMIT).await?.credentials)
}

/// The page of up to `limit` (1 to [`LIST_LIMIT`]) credentials matching `selector` that
/// follows cursor `after` (a page's `next`), newest first.
pub async fn page(
    store: &Store,
    selector: TokenSelector<'_>,
    after: Option<&str>,
    limit: i64,
) -> Result<CredentialPage, ManageError> {
    if !(1..=LIST_LIMIT).contains(&limit) {
        return Err(ManageError::Invalid(format!(
            "limit must be an integer from 1 to {LIST_LIMIT}"
        )));
    }
    let after = after
        .map(|a| {
            TokenCursor::parse(a).ok_or_else(|| {
                ManageError::Invalid("after is not a cursor this listing gave".into())
            })
        })
        .transpose()?;
    // One more than the page, to know whether another follows.
    let mut tokens = store.page_tokens(selector, after, limit + 1).await?;
    let more = tokens.len() as i64 > limit;
    tokens.truncate(usize::try_from(limit).unwrap_or(0));
    let next = more
        .then(|| tokens.last().map(TokenCursor::write))
        .flatten();
    Ok(CredentialPage {
        credentials: tokens.into_iter().map(CredentialSummary::from).collect(),
        next,
    })
}

/// A credential is named by its `jti` or by its VC `id` (`{issuer}/credentials/{jti}`, as
/// verifiers report it); both name the same credential.
fn jti_of(id: &str) -> &str {
    id.rsplit_once("/credentials/").map_or(id, |(_, jti)| jti)
}

pub async fn show(store: &Store, id: &str) -> Result<CredentialSummary, ManageError> {
    let id = jti_of(id);
    store
        .token(id)
        .await?
        .map(CredentialSummary::from)
        .ok_or_else(|| ManageError::NotFound(id.to_owned()))
}

fn check_reason(reason: &str) -> Result<(), ManageError> {
    if reason.trim().is_empty() || reason.chars().count() > 500 || reason.contains(char::is_control)
    {
        return Err(ManageError::Invalid(
            "reason must be 1-500 characters of text".into(),
        ));
    }
    Ok(())
}

/// Revokes what `selector` names inside one transaction that also writes the audit event,
/// so a revocation is never without its record (nor the record without the revocation).
async fn revoke_audited(
    store: &Store,
    selector: TokenSelector<'_>,
    reason: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let (subject, scope) = match selector {
        TokenSelector::Id(id) | TokenSelector::Lineage(id) => {
            (format!("credential:{id}"), "credential and its renewals")
        }
        TokenSelector::Agent(a) => (format!("agent:{a}"), "held by the agent"),
        TokenSelector::Approver(h) => (format!("human:{h}"), "approved by the human"),
        TokenSelector::RestingOn(h) => (
            format!("human:{h}"),
            "approved by the human or requested in their name",
        ),
        TokenSelector::Owner(h) => (format!("human:{h}"), "held by the human's agents"),
        TokenSelector::All => ("all".to_owned(), "all"),
    };
    let mut tx = store.begin().await?;
    let revoked = store
        .revoke_tokens(&mut tx, selector, reason, now_ms)
        .await?;
    audit::record(
        store,
        &mut tx,
        now_ms,
        NewEvent {
            actor,
            kind: EventKind::CredentialRevoked,
            subject: &subject,
            detail: json!({ "reason": reason, "scope": scope, "credentials": revoked }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(revoked)
}

/// Revokes one credential and every renewal descending from it. Revoking an already
/// revoked or expired one is not an error (nothing changes); an unknown id is.
pub async fn revoke_one(
    store: &Store,
    id: &str,
    reason: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Revoked, ManageError> {
    check_reason(reason)?;
    let id = jti_of(id);
    show(store, id).await?;
    let revoked = revoke_audited(store, TokenSelector::Lineage(id), reason, actor, now_ms).await?;
    tracing::info!(
        actor,
        credential = id,
        reason,
        revoked = revoked.len(),
        "credential revocation"
    );
    Ok(Revoked { revoked })
}

pub async fn revoke_many(
    store: &Store,
    request: &RevokeMany,
    actor: &str,
    now_ms: i64,
) -> Result<Revoked, ManageError> {
    check_reason(&request.reason)?;
    let selector = selector(
        request.agent.as_deref(),
        request.approver.as_deref(),
        request.owner.as_deref(),
    )?;
    if selector == TokenSelector::All {
        return Err(ManageError::Invalid(
            "name the agent, approver or owner whose credentials to revoke".into(),
        ));
    }
    let revoked = revoke_audited(store, selector, &request.reason, actor, now_ms).await?;
    tracing::info!(actor, ?selector, reason = %request.reason, revoked = revoked.len(), "bulk credential revocation");
    Ok(Revoked { revoked })
}
