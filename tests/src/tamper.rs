//! A reverse proxy in front of a test server that can break the server's signature on the
//! request objects of chosen requests: what a wallet sees when someone between it and its
//! server rewrites what it is asked to approve. Everything else passes through unchanged,
//! the live event stream included (streamed, not buffered).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

struct Proxy {
    target: String,
    http: reqwest::Client,
    tampered: Mutex<HashSet<String>>,
}

/// A running proxy: [`Self::url`] is where clients go.
pub struct TamperProxy {
    pub url: String,
    proxy: Arc<Proxy>,
}

impl TamperProxy {
    /// Listens on `listener`, forwarding to `target` (e.g. `http://127.0.0.1:1234`).
    pub fn start(listener: std::net::TcpListener, target: &str) -> Self {
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let proxy = Arc::new(Proxy {
            target: target.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            tampered: Mutex::new(HashSet::new()),
        });
        let app = Router::new().fallback(forward).with_state(proxy.clone());
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, proxy }
    }

    /// From now on, request `id`'s request object reaches the wallet with a broken
    /// signature.
    pub fn break_signature_of(&self, id: &str) {
        if let Ok(mut t) = self.proxy.tampered.lock() {
            t.insert(id.to_owned());
        }
    }
}

/// Flips one bit in the signature of compact JWS `jws`.
fn broken(jws: &str) -> String {
    let (signed, signature) = jws.rsplit_once('.').unwrap_or((jws, ""));
    let mut sig = signature.as_bytes().to_vec();
    if let Some(first) = sig.first_mut() {
        *first = if *first == b'A' { b'B' } else { b'A' };
    }
    format!("{signed}.{}", String::from_utf8_lossy(&sig))
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut outgoing = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.target))
        .body(body.to_vec());
    // Hop-by-hop headers stay on this hop (a forwarded `transfer-encoding: chunked`
    // beside the new body's length would leave the server waiting for chunks).
    const HOP: [&str; 8] = [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
    ];
    for (name, value) in &parts.headers {
        if !HOP.contains(&name.as_str()) {
            outgoing = outgoing.header(name, value);
        }
    }
    let Ok(answer) = outgoing.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let headers: Vec<(HeaderName, reqwest::header::HeaderValue)> = answer
        .headers()
        .iter()
        .filter(|(n, _)| !HOP.contains(&n.as_str()))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let tamper = path
        .strip_prefix("/wallet/v1/requests/")
        .and_then(|rest| rest.strip_suffix("/display"))
        .is_some_and(|id| proxy.tampered.lock().is_ok_and(|t| t.contains(id)));
    let body = if tamper && status.is_success() {
        let Ok(mut json) = answer.json::<serde_json::Value>().await else {
            return StatusCode::BAD_GATEWAY.into_response();
        };
        if let Some(jws) = json["request_object"].as_str() {
            json["request_object"] = serde_json::Value::String(broken(jws));
        }
        Body::from(json.to_string())
    } else {
        Body::from_stream(answer.bytes_stream())
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    for (name, value) in headers {
        response.headers_mut().insert(name, value);
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_bit_of_the_signature_changes() {
        assert_eq!(super::broken("h.p.AAAA"), "h.p.BAAA");
        assert_eq!(super::broken("h.p.xyz"), "h.p.Ayz");
    }
}

#[cfg(test)]
mod proxy_tests {
    #![allow(clippy::unwrap_used)]
    use super::TamperProxy;

    /// What a wallet (ureq, blocking) sends through the proxy comes back whole: a POST with
    /// a JSON body, and its answer, broken only for the requests marked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn posts_pass_through_and_marked_request_objects_break() {
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = format!("http://{}", upstream.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/wallet/v1/requests/{id}/display",
            axum::routing::post(|body: String| async move {
                axum::Json(serde_json::json!({ "request_object": "h.p.AAAA", "echo": body }))
            }),
        );
        tokio::spawn(async move { axum::serve(upstream, app).await.unwrap() });
        let proxy =
            TamperProxy::start(std::net::TcpListener::bind("127.0.0.1:0").unwrap(), &target);
        let url = proxy.url.clone();
        let post = move |id: &'static str| {
            let url = url.clone();
            tokio::task::spawn_blocking(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(std::time::Duration::from_secs(5)))
                    .build()
                    .into();
                let mut answer = agent
                    .post(&format!("{url}/wallet/v1/requests/{id}/display"))
                    .header("Content-Type", "application/json")
                    .send(&b"{}"[..])
                    .unwrap();
                serde_json::from_str::<serde_json::Value>(
                    &answer.body_mut().read_to_string().unwrap(),
                )
                .unwrap()
            })
        };
        let plain = post("r1").await.unwrap();
        assert_eq!(
            (plain["request_object"].as_str(), plain["echo"].as_str()),
            (Some("h.p.AAAA"), Some("{}"))
        );
        proxy.break_signature_of("r2");
        let broken = post("r2").await.unwrap();
        assert_eq!(broken["request_object"], "h.p.BAAA");
    }
}
