//! How the first admin of a fresh install gets into the console: `countersign admin
//! sign-in-link` makes a single-use link, valid ten minutes, that signs one browser in
//! with a role. Redeeming it starts a console session (an expiring admin key held in the
//! session cookie, as an SSO sign-in does). Both are audit events; the link's token is
//! stored only as a hash.

use serde_json::json;

use super::{Role, Scope, create_key_in};
use crate::audit::{self, EventKind, NewEvent};
use crate::secrets::{Secret, hash_secret};
use crate::store::console_links::SignInLinkRecord;
use crate::store::{Store, StoreError};

/// How long a link may be redeemed.
pub const LINK_TTL_MS: i64 = 10 * 60 * 1000;

/// A new link: `token` is shown once (in the URL).
pub struct NewSignInLink {
    pub id: String,
    pub token: Secret,
    pub role: Role,
    pub expires_at_ms: i64,
}

/// A console session: `secret` goes into the session cookie, never anywhere else.
pub struct ConsoleSession {
    pub key_id: String,
    pub secret: Secret,
    pub role: Role,
    pub expires_at_ms: i64,
}

/// Makes a link for `role`; `actor` (`cli`, or an admin) is recorded as having made it.
pub async fn create(
    store: &Store,
    role: Role,
    actor: &str,
    now_ms: i64,
) -> Result<NewSignInLink, StoreError> {
    let token = Secret::new(format!("csl_{}", countersign_jose::random_b64url(32)));
    let token_hash = token.hash();
    let id = token_hash
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect::<String>();
    let expires_at_ms = now_ms.saturating_add(LINK_TTL_MS);
    let record = SignInLinkRecord {
        id: id.clone(),
        token_hash,
        role: role.as_str().to_owned(),
        created_by: actor.to_owned(),
        created_at: now_ms,
        expires_at: expires_at_ms,
    };
    let mut tx = store.begin().await?;
    store.insert_sign_in_link(&mut tx, &record).await?;
    let event = NewEvent {
        actor,
        kind: EventKind::SignInLinkCreated,
        subject: &format!("sign-in-link:{id}"),
        detail: json!({ "role": role, "expires_at": expires_at_ms }),
    };
    audit::record(store, &mut tx, now_ms, event).await?;
    tx.commit().await?;
    Ok(NewSignInLink {
        id,
        token,
        role,
        expires_at_ms,
    })
}

/// Redeems `token` once: a session of the link's role for `session_ttl_ms`, recorded as
/// `admin.signed_in`. `None` when the link is unknown, expired or already used.
pub async fn redeem(
    store: &Store,
    token: &str,
    now_ms: i64,
    session_ttl_ms: i64,
) -> Result<Option<ConsoleSession>, StoreError> {
    let mut tx = store.begin().await?;
    let Some(link) = store
        .use_sign_in_link(&mut tx, &hash_secret(token), now_ms)
        .await?
    else {
        return Ok(None);
    };
    let role: Role = link.role.parse().unwrap_or(Role::Viewer);
    let expires_at_ms = now_ms.saturating_add(session_ttl_ms);
    let key = create_key_in(
        store,
        &mut tx,
        &format!("console session: sign-in link {}", link.id),
        Scope::Admin,
        role,
        Some(expires_at_ms),
        now_ms,
    )
    .await?;
    let link_subject = format!("sign-in-link:{}", link.id);
    let event = NewEvent {
        actor: &link_subject,
        kind: EventKind::AdminSignedIn,
        subject: &Scope::Admin.subject(&key.id),
        detail: json!({
            "method": "sign_in_link",
            "role": role,
            "link_created_by": link.created_by,
            "expires_at": expires_at_ms,
        }),
    };
    audit::record(store, &mut tx, now_ms, event).await?;
    tx.commit().await?;
    Ok(Some(ConsoleSession {
        key_id: key.id,
        secret: key.secret,
        role,
        expires_at_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::each_backend;

    #[tokio::test]
    async fn a_link_signs_in_once_within_ten_minutes() {
        each_backend(|store| async move {
            let link = create(&store, Role::Operator, "cli", 1_000).await.unwrap();
            let token = link.token.expose().to_owned();
            assert!(
                redeem(&store, "csl_forged", 2_000, 60_000)
                    .await
                    .unwrap()
                    .is_none()
            );
            let session = redeem(&store, &token, 2_000, 60_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(session.role, Role::Operator);
            let key =
                super::super::verify_key(&store, session.secret.expose(), Scope::Admin, 3_000)
                    .await
                    .unwrap()
                    .unwrap();
            assert_eq!((key.id, key.role), (session.key_id, Role::Operator));
            // Used once: a second redemption (a replayed or forwarded link) gets nothing.
            assert!(
                redeem(&store, &token, 2_500, 60_000)
                    .await
                    .unwrap()
                    .is_none()
            );
            // A fresh link unused for ten minutes is dead.
            let late = create(&store, Role::Admin, "cli", 10_000).await.unwrap();
            let expiry = 10_000 + LINK_TTL_MS;
            assert!(
                redeem(&store, late.token.expose(), expiry, 60_000)
                    .await
                    .unwrap()
                    .is_none()
            );
        })
        .await;
    }
}
