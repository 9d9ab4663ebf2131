use countersign_jose::UnverifiedJws;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Issuing;
use crate::audit::{self, EventKind, NewEvent};
use crate::store::StoreError;
use crate::store::clients::ClientRecord;
use crate::store::tokens::TokenSelector;

/// RFC 7662 §2.2 response: `active`, and for active tokens what the client may know.
/// Inactive tokens answer `{"active": false}` and nothing else.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub cnf: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub authorization_details: Option<Value>,
}

#[derive(Deserialize)]
struct Jti {
    jti: Option<String>,
}

/// The stored token behind an access token string, if the string is one of ours.
async fn lookup(
    ctx: &Issuing<'_>,
    token: &str,
) -> Result<Option<crate::store::tokens::TokenRecord>, StoreError> {
    let Ok(jws) = UnverifiedJws::parse(token) else {
        return Ok(None);
    };
    let Ok(Jti { jti: Some(jti) }) = jws.verify_with_set(&ctx.keys.jwks()) else {
        return Ok(None);
    };
    ctx.store.token(&jti).await
}

/// Introspects `token` for `caller`. A client only learns about its own tokens; anything
/// else is reported inactive so the endpoint cannot be used to probe others' tokens.
pub async fn introspect(
    ctx: &Issuing<'_>,
    caller: &ClientRecord,
    token: &str,
) -> Result<Introspection, StoreError> {
    let now = ctx.now_ms;
    let inactive = Introspection::default();
    let Some(t) = lookup(ctx, token).await? else {
        return Ok(inactive);
    };
    if t.client_id != caller.client_id || t.revoked_at.is_some() || t.expires_at <= now {
        return Ok(inactive);
    }
    Ok(Introspection {
        active: true,
        scope: Some(t.scope),
        client_id: Some(t.client_id.into_string()),
        sub: Some(t.subject.into_string()),
        iss: Some(ctx.issuer.to_owned()),
        exp: Some(t.expires_at.div_euclid(1000)),
        iat: Some(t.issued_at.div_euclid(1000)),
        jti: Some(t.jti),
        token_type: Some(t.token_type),
        cnf: t.cnf_jkt.map(|jkt| serde_json::json!({ "jkt": jkt })),
        authorization_details: t
            .authorization_details
            .and_then(|d| serde_json::from_str(&d).ok()),
    })
}

/// Revokes `token` if it is one of `caller`'s. Unknown tokens and other clients' tokens are
/// silently ignored, as RFC 7009 §2.2 requires for invalid tokens.
pub async fn revoke(
    ctx: &Issuing<'_>,
    caller: &ClientRecord,
    token: &str,
) -> Result<(), StoreError> {
    let Some(t) = lookup(ctx, token).await? else {
        return Ok(());
    };
    if t.client_id != caller.client_id || t.revoked_at.is_some() {
        return Ok(());
    }
    // The client gives up its own credential: recorded like any revocation.
    let now = ctx.now_ms;
    let actor = format!("client:{}", caller.client_id);
    let mut tx = ctx.store.begin().await?;
    ctx.store
        .revoke_tokens(
            &mut tx,
            TokenSelector::Id(&t.jti),
            "revoked by the client (RFC 7009)",
            now,
        )
        .await?;
    audit::record(
        ctx.store,
        &mut tx,
        now,
        NewEvent {
            actor: &actor,
            kind: EventKind::CredentialRevoked,
            subject: &format!("credential:{}", t.jti),
            detail: serde_json::json!({ "reason": "revoked by the client (RFC 7009)", "scope": "credential", "credentials": [t.jti] }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
