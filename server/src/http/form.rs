//! Reading OAuth requests: `application/x-www-form-urlencoded` bodies with duplicate
//! parameters refused (RFC 6749 §3.1), and the client credentials out of the header and
//! the form.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use countersign_shared::OAuthErrorCode;

use super::error::OAuthResponse;
use crate::oidc::client_auth::ClientCredentials;

/// The parameters of a form-encoded OAuth request.
#[derive(Debug, Default)]
pub struct OAuthForm(pub BTreeMap<String, String>);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthResponse;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if content_type.as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(OAuthResponse::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                OAuthResponse::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    OAuthErrorCode::InvalidRequest,
                    "the request body is too large",
                )
            } else {
                OAuthResponse::invalid_request("the request body could not be read")
            }
        })?;
        parse_form(&body).map(OAuthForm)
    }
}

/// Parses a form body. A repeated parameter is an error (RFC 6749 §3.1), even when one
/// of the copies is empty; parameters without a value are treated as omitted (§3.1).
pub fn parse_form(body: &[u8]) -> Result<BTreeMap<String, String>, OAuthResponse> {
    let mut seen = std::collections::BTreeSet::new();
    let mut params = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        if !seen.insert(name.to_string()) {
            return Err(OAuthResponse::invalid_request(format!(
                "parameter {name} is repeated"
            )));
        }
        if !value.is_empty() {
            params.insert(name.into_owned(), value.into_owned());
        }
    }
    Ok(params)
}

impl OAuthForm {
    /// Removes and returns the client authentication parameters, plus any Basic header.
    pub fn take_credentials(
        &mut self,
        headers: &HeaderMap,
    ) -> Result<ClientCredentials, OAuthResponse> {
        Ok(ClientCredentials {
            basic: basic_credentials(headers)?,
            client_id: self.0.remove("client_id"),
            client_secret: self.0.remove("client_secret"),
            assertion_type: self.0.remove("client_assertion_type"),
            assertion: self.0.remove("client_assertion"),
        })
    }
}

/// `Authorization: Basic` with form-urlencoded id and secret (RFC 6749 §2.3.1). Other
/// schemes are ignored here.
pub(super) fn basic_credentials(
    headers: &HeaderMap,
) -> Result<Option<(String, String)>, OAuthResponse> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthResponse::invalid_request(
            "more than one Authorization header",
        ));
    }
    let malformed = || OAuthResponse {
        basic_challenge: true,
        ..OAuthResponse::new(
            StatusCode::UNAUTHORIZED,
            OAuthErrorCode::InvalidClient,
            "malformed Basic credentials",
        )
    };
    let Some(encoded) = value.to_str().ok().and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("basic")
            .then(|| rest.trim().to_owned())
    }) else {
        return Ok(None);
    };
    let decoded = STANDARD.decode(encoded).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn duplicates_are_refused_and_empty_values_omitted() {
        assert_eq!(
            parse_form(b"a=1&b=")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![("a".to_owned(), "1".to_owned())]
        );
        let err = parse_form(b"scope=openid&scope=email").unwrap_err();
        assert_eq!(err.code, OAuthErrorCode::InvalidRequest);
        assert!(parse_form(b"scope=&scope=openid").is_err());
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut h = HeaderMap::new();
        let raw = STANDARD.encode("my%3Aagent:p%40ss+word");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {raw}")).unwrap(),
        );
        assert_eq!(
            basic_credentials(&h).unwrap(),
            Some(("my:agent".to_owned(), "p@ss word".to_owned()))
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(
            basic_credentials(&h).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_credentials(&h).unwrap(), None);
    }
}
