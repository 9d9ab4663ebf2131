//! Console sessions for tests: a browser that does not follow redirects, a session
//! signed in with a one-time link, and pages fetched and forms posted as that browser.

use countersign_server::admin::{Role, sign_in_links};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};

use crate::TestServer;

/// A client that shows redirects instead of following them.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// A signed-in console session: the cookie header to send and the page's CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// Signs a browser in with a fresh one-time link of `role`.
pub async fn sign_in(s: &TestServer, role: Role) -> Session {
    let link = sign_in_links::create(&s.state().store, role, "test", s.now_s() * 1000)
        .await
        .expect("a sign-in link");
    let http = browser();
    let resp = http
        .post(s.url("/console/sign-in"))
        .header(ORIGIN, s.issuer())
        .form(&[("token", link.token.expose())])
        .send()
        .await
        .expect("the sign-in answers");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()[SET_COOKIE]
        .to_str()
        .expect("a cookie")
        .to_owned();
    let cookie = set.split(';').next().unwrap_or_default().to_owned();
    let page = http
        .get(s.url("/console/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("the overview answers")
        .text()
        .await
        .expect("a page");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries a CSRF token")
        .to_owned();
    Session { cookie, csrf }
}

/// Posts `form` (with the session's CSRF token) from this origin.
pub async fn post(
    s: &TestServer,
    session: &Session,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut fields = vec![("csrf", session.csrf.as_str())];
    fields.extend_from_slice(form);
    browser()
        .post(s.url(path))
        .header(COOKIE, &session.cookie)
        .header(ORIGIN, s.issuer())
        .form(&fields)
        .send()
        .await
        .expect("the post answers")
}

/// A page as the signed-in browser fetches it.
pub async fn get(s: &TestServer, session: &Session, path: &str) -> reqwest::Response {
    browser()
        .get(s.url(path))
        .header(COOKIE, &session.cookie)
        .send()
        .await
        .expect("the page answers")
}
