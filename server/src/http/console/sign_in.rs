//! Signing in with a single-use link (`countersign admin sign-in-link`) and signing out.
//! Opening the link shows a button; only pressing it (a POST) uses the link, so a mail
//! scanner or chat preview that fetches the URL does not spend it.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{PageError, SESSION_COOKIE, SESSION_TTL_MS, render, see_other, session_cookie};
use crate::admin::sign_in_links;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    token: Option<String>,
    sso: bool,
    passkeys: bool,
}

pub async fn form(
    State(state): State<AppState>,
    Query(query): Query<LinkQuery>,
) -> Result<Response, PageError> {
    render(&SignInPage {
        token: query.token.filter(|t| !t.is_empty() && t.len() <= 128),
        sso: state.admin_sso.is_some(),
        passkeys: state.console_passkeys.is_some(),
    })
}

#[derive(Deserialize)]
pub struct RedeemForm {
    token: String,
}

pub async fn redeem(
    State(state): State<AppState>,
    Form(form): Form<RedeemForm>,
) -> Result<Response, PageError> {
    let Some(session) =
        sign_in_links::redeem(&state.store, &form.token, state.now_ms(), SESSION_TTL_MS).await?
    else {
        return Err(PageError::Forbidden(
            "this sign-in link is unknown, expired or already used; ask for a new one \
             (countersign admin sign-in-link)"
                .into(),
        ));
    };
    let mut response = see_other("/console/");
    let max_age = SESSION_TTL_MS / 1000;
    response.headers_mut().insert(
        header::SET_COOKIE,
        crate::http::set_cookie(
            &state,
            SESSION_COOKIE,
            session.secret.expose(),
            &format!("SameSite=Strict; Path=/console; Max-Age={max_age}"),
        ),
    );
    Ok(response)
}

pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some(secret) = session_cookie(&headers) {
        crate::admin::sso::end_session(&state.store, secret, state.now_ms()).await?;
    }
    let mut response = see_other("/console/sign-in").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        crate::http::set_cookie(
            &state,
            SESSION_COOKIE,
            "",
            "SameSite=Strict; Path=/console; Max-Age=0",
        ),
    );
    Ok(response)
}
