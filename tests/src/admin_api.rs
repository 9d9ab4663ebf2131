//! The admin API as a test calls it: with an admin key of its own.

use reqwest::StatusCode;
use serde_json::Value;

use crate::{TEST_ACTOR, TestServer};

/// The admin API, called with an admin key of its own.
pub struct AdminApi<'a> {
    server: &'a TestServer,
    key: String,
    /// The key's id: this client's actor in the trail is `admin-key:{id}`.
    pub id: String,
}

impl TestServer {
    /// A fresh admin key and a client for the admin API with it.
    pub async fn admin_api(&self) -> AdminApi<'_> {
        let key = countersign_server::admin::create_key(
            &self.state().store,
            "test",
            countersign_server::admin::Scope::Admin,
            None,
            0,
            TEST_ACTOR,
        )
        .await
        .expect("admin key");
        AdminApi {
            server: self,
            key: key.secret.expose().to_owned(),
            id: key.id,
        }
    }
}

impl AdminApi<'_> {
    /// The admin key, for requests the JSON helper does not fit.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A request to the admin API with this key, for a test that reads more than the
    /// status and body [`Self::call`] returns.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let s = self.server;
        s.http.request(method, s.url(path)).bearer_auth(&self.key)
    }

    /// `method path` with an optional JSON body; the status and the JSON answer (`null`
    /// when there is none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin API request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}
