#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! An enforcement point written by someone else: `openidauthzen` (crates.io, another
//! team's AuthZEN 1.0 SDK) discovers Countersign from its metadata, presents a
//! `client_credentials` bearer token as it does, and sends the interop Todo vectors
//! through its own typed single and batch calls, and a subject search.
//!
//! The SDK names a PDP by an `https` identifier only; the server here is configured with
//! that identifier and reached over loopback HTTP by the transport below, as a server
//! behind a TLS-terminating proxy is.

use std::time::Duration;

use countersign_tests::Db;
use countersign_tests::authzen::{Todo, repo_file};
use openidauthzen::http::{HttpClient, HttpResponse, Method};
use openidauthzen::{
    Action, AuthZenClient, Error, EvaluationRequest, EvaluationsRequest, Resource, Subject,
    SubjectSearchRequest,
};
use serde_json::Value;

/// The SDK's transport: its `https` PDP URLs, sent to the loopback server.
struct Loopback {
    http: reqwest::Client,
    public: String,
    local: String,
}

#[async_trait::async_trait]
impl HttpClient for Loopback {
    async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<HttpResponse, Error> {
        let url = url.replacen(&self.public, &self.local, 1);
        let mut request = match method {
            Method::Get => self.http.get(&url),
            _ => self.http.post(&url),
        };
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.map_err(|e| Error::Http(Box::new(e)))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::Http(Box::new(e)))?
            .to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_authzen_sdk_gets_the_interop_decisions() {
    let port = countersign_tests::idp::free_port();
    let public = format!("https://127.0.0.1:{port}");
    let todo = Todo::start_with(Db::Sqlite, |c| {
        c.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        c.issuer = Some(format!("https://127.0.0.1:{port}"));
    })
    .await;
    let local = format!("http://127.0.0.1:{port}");
    // The enforcement point's bearer token for the API.
    let (status, tokens) = todo
        .server
        .post_as(
            &todo.pep,
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("resource", &format!("{public}/access/v1")),
            ],
        )
        .await;
    assert_eq!(status.as_u16(), 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_owned();

    let sdk = AuthZenClient::new(
        Loopback {
            http: reqwest::Client::new(),
            public: public.clone(),
            local,
        },
        Duration::from_secs(60),
    );
    let config = sdk.discover(&public).await.unwrap();
    assert_eq!(config.policy_decision_point, public);

    let vectors: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file(
            "examples/authzen-todo/decisions-authorization-api-1_0-02.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let mut passed = 0;
    for vector in vectors["evaluation"].as_array().unwrap() {
        let request: EvaluationRequest = serde_json::from_value(vector["request"].clone()).unwrap();
        let answer = sdk.evaluate(&public, &token, &request).await.unwrap();
        assert_eq!(
            Value::Bool(answer.decision),
            vector["expected"],
            "{}",
            vector["request"]
        );
        passed += 1;
    }
    assert_eq!(passed, 40);
    for vector in vectors["evaluations"].as_array().unwrap() {
        let request: EvaluationsRequest =
            serde_json::from_value(vector["request"].clone()).unwrap();
        let answer = sdk.evaluate_batch(&public, &token, &request).await.unwrap();
        let got: Vec<bool> = answer.evaluations.iter().map(|d| d.decision).collect();
        let expected: Vec<bool> = vector["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["decision"].as_bool().unwrap())
            .collect();
        assert_eq!(got, expected, "{}", vector["request"]);
    }

    // Who may create todos, as the SDK asks it.
    let search = SubjectSearchRequest {
        subject: serde_json::from_value(serde_json::json!({"type": "user"})).unwrap(),
        action: Action {
            name: "can_create_todo".into(),
            properties: None,
        },
        resource: Resource {
            resource_type: "todo".into(),
            id: Some("new".into()),
            properties: None,
        },
        context: None,
        page: None,
    };
    let found = sdk.search_subjects(&public, &token, &search).await.unwrap();
    let ids: Vec<Option<String>> = found
        .results
        .iter()
        .map(|s: &Subject| s.id.clone())
        .collect();
    assert_eq!(ids.len(), 3, "Rick, Morty and Summer: {ids:?}");
    // A wrong token: the SDK sees the 401.
    let refused = sdk
        .evaluate(
            &public,
            "not-a-token",
            &serde_json::from_value(vectors["evaluation"][0]["request"].clone()).unwrap(),
        )
        .await;
    assert!(
        matches!(refused, Err(Error::HttpStatus { status: 401, .. })),
        "{refused:?}"
    );
    todo.server.stop().await;
}
