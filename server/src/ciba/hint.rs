//! Who a backchannel request names (CIBA Core §7.1): a `login_hint`, a `login_hint_token`
//! signed by the client (RFC 9493 subject identifiers), or an `id_token_hint` this server
//! issued to the client.

use countersign_jose::UnverifiedJws;
use serde::Deserialize;

use super::CibaError;
use super::request::Hint;
use crate::oidc::client_auth::client_jwks;
use crate::oidc::jwt::RegisteredClaims;
use crate::oidc::keys::KeyRing;
use crate::store::Store;
use crate::store::clients::ClientRecord;
use crate::store::humans::HumanRecord;

/// RFC 9493 subject identifier, as carried in a `login_hint_token`.
#[derive(Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
enum SubjectId {
    Email { email: String },
    Opaque { id: String },
    IssSub { sub: String },
}

#[derive(Deserialize)]
struct LoginHintTokenClaims {
    exp: Option<f64>,
    sub_id: Option<SubjectId>,
    sub: Option<String>,
}

pub(super) async fn resolve_user(
    store: &Store,
    keys: &KeyRing,
    issuer: &str,
    now_secs: i64,
    client: &ClientRecord,
    hint: &Hint,
) -> Result<HumanRecord, CibaError> {
    let lookup = match hint {
        Hint::LoginHint(value) => value.clone(),
        Hint::LoginHintToken(token) => login_hint_token_subject(now_secs, client, token)?,
        Hint::IdTokenHint(token) => id_token_hint_subject(keys, issuer, client, token)?,
    };
    let human = match hint {
        Hint::IdTokenHint(_) => store.human(&lookup).await?,
        _ => store.human_by_hint(&lookup).await?,
    };
    human.ok_or(CibaError::UnknownUserId)
}

/// A `login_hint_token` is a JWT signed by the client's registered key naming the user by
/// an RFC 9493 subject identifier (`sub_id`) or `sub`.
fn login_hint_token_subject(
    now_secs: i64,
    client: &ClientRecord,
    token: &str,
) -> Result<String, CibaError> {
    let bad = |m: String| CibaError::InvalidRequest(format!("login_hint_token: {m}"));
    let jws = UnverifiedJws::parse(token).map_err(|e| bad(e.to_string()))?;
    let jwks = client_jwks(client)
        .ok_or_else(|| bad("the client has no registered JWKS to verify it".into()))?;
    let claims: LoginHintTokenClaims =
        jws.verify_with_set(&jwks).map_err(|e| bad(e.to_string()))?;
    let exp = claims.exp.ok_or_else(|| bad("exp is required".into()))?;
    if exp <= now_secs as f64 {
        return Err(CibaError::ExpiredLoginHintToken);
    }
    match (claims.sub_id, claims.sub) {
        (Some(SubjectId::Email { email }), _) => Ok(email),
        (Some(SubjectId::Opaque { id }), _) => Ok(id),
        (Some(SubjectId::IssSub { sub }), _) | (None, Some(sub)) => Ok(sub),
        (None, None) => Err(bad("sub_id or sub is required".into())),
    }
}

/// An `id_token_hint` must be an ID token this server issued to this client. Its expiry is
/// not checked: a hint names a user, it does not authenticate one.
fn id_token_hint_subject(
    keys: &KeyRing,
    issuer: &str,
    client: &ClientRecord,
    token: &str,
) -> Result<String, CibaError> {
    let bad = |m: String| CibaError::InvalidRequest(format!("id_token_hint: {m}"));
    let jws = UnverifiedJws::parse(token).map_err(|e| bad(e.to_string()))?;
    let claims: RegisteredClaims = jws
        .verify_with_set(&keys.jwks())
        .map_err(|e| bad(e.to_string()))?;
    if claims.iss.as_deref() != Some(issuer) {
        return Err(bad("not issued by this server".into()));
    }
    if !claims
        .aud
        .as_ref()
        .is_some_and(|a| a.contains(&client.client_id))
    {
        return Err(bad("not issued to this client".into()));
    }
    claims.sub.ok_or_else(|| bad("sub is missing".into()))
}
