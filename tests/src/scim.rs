//! A SCIM client for tests: a fresh SCIM token and `application/scim+json` requests to
//! the server's `/scim/v2`.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::TestServer;

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

pub struct ScimApi<'a> {
    server: &'a TestServer,
    pub token: String,
    /// The token's id: this client's actor in the trail is `scim-token:{id}`.
    pub id: String,
}

/// A SCIM answer: status, body (`null` when none), the ETag header.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub etag: Option<String>,
}

impl TestServer {
    /// A fresh SCIM token and a client for `/scim/v2` with it.
    pub async fn scim_api(&self) -> ScimApi<'_> {
        let key = countersign_server::admin::create_key(
            &self.state().store,
            "test-idp",
            countersign_server::admin::Scope::Scim,
            None,
            0,
            crate::TEST_ACTOR,
        )
        .await
        .expect("SCIM token");
        ScimApi {
            server: self,
            token: key.secret.expose().to_owned(),
            id: key.id,
        }
    }

    /// `{issuer}/scim/v2`.
    pub fn scim_base(&self) -> String {
        self.url("/scim/v2")
    }
}

impl ScimApi<'_> {
    /// `method /scim/v2{path}` with an optional body sent as it is (a string: raw text).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_with(method, path, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let s = self.server;
        let mut req = s
            .http
            .request(method, format!("{}{path}", s.scim_base()))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            let text = match b {
                Value::String(raw) => raw,
                other => other.to_string(),
            };
            req = req
                .header("content-type", "application/scim+json")
                .body(text);
        }
        let resp = req.send().await.expect("SCIM request");
        let status = resp.status();
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.json().await.unwrap_or(Value::Null);
        Answer { status, body, etag }
    }

    /// Creates a User; returns its SCIM id.
    pub async fn create_user(&self, body: Value) -> String {
        let a = self.call(Method::POST, "/Users", Some(body)).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        a.body["id"].as_str().expect("id").to_owned()
    }
}
