//! A small W3C WebDriver client (the JSON wire protocol over HTTP), enough to drive the
//! wallet app through `tauri-driver` and WebKitWebDriver: find by CSS, click, type, read
//! text, wait for an element, run a script and take screenshots. Every call has a
//! client-side timeout, so a hung driver fails the test instead of blocking it.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Session {
    http: reqwest::Client,
    base: String,
}

impl Session {
    /// Starts a session at `driver` (e.g. `http://127.0.0.1:4444`) with `capabilities`.
    pub async fn start(driver: &str, capabilities: Value) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let answer = call(
            &http,
            reqwest::Method::POST,
            &format!("{driver}/session"),
            Some(json!({ "capabilities": { "alwaysMatch": capabilities } })),
        )
        .await?;
        let id = answer["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {answer}"))?;
        Ok(Self {
            http,
            base: format!("{driver}/session/{id}"),
        })
    }

    async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        call(&self.http, method, &format!("{}{path}", self.base), body).await
    }

    /// The first element matching `css`, if any.
    pub async fn find(&self, css: &str) -> Result<Option<String>, String> {
        let found = self
            .cmd(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        Ok(found
            .as_array()
            .and_then(|a| a.first())
            .and_then(|e| e[ELEMENT].as_str())
            .map(str::to_owned))
    }

    /// Waits up to `timeout` for an element matching `css`.
    pub async fn wait(&self, css: &str, timeout: Duration) -> Result<String, String> {
        let started = Instant::now();
        loop {
            if let Some(e) = self.find(css).await? {
                return Ok(e);
            }
            if started.elapsed() > timeout {
                let body = self
                    .text_now("body")
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let source = self
                    .cmd(reqwest::Method::GET, "/source", None)
                    .await
                    .map(|s| s.as_str().unwrap_or_default().chars().take(1500).collect())
                    .unwrap_or_else(|e| e);
                let url = self.cmd(reqwest::Method::GET, "/url", None).await;
                return Err(format!(
                    "no {css} within {timeout:?} at {url:?}; the page says:\n{body}\nits source:\n{source}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Clicks the first element matching `css` (waiting for it). An element under a
    /// sticky header or off screen is scrolled to the middle of the view first, as a
    /// person would.
    pub async fn click(&self, css: &str) -> Result<(), String> {
        let e = self.wait(css, Duration::from_secs(10)).await?;
        let path = format!("/element/{e}/click");
        match self
            .cmd(reqwest::Method::POST, &path, Some(json!({})))
            .await
        {
            Err(m) if m.contains("intercepted") || m.contains("not interactable") => {
                self.execute(
                    "arguments[0].scrollIntoView({block: 'center'});",
                    json!([{ ELEMENT: e }]),
                )
                .await?;
                self.cmd(reqwest::Method::POST, &path, Some(json!({})))
                    .await
                    .map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let e = self.wait(css, Duration::from_secs(10)).await?;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await
        .map(|_| ())
    }

    /// The rendered text of the first element matching `css` (waiting for it).
    pub async fn text(&self, css: &str) -> Result<String, String> {
        let e = self.wait(css, Duration::from_secs(10)).await?;
        let v = self
            .cmd(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// The rendered text of the first element matching `css` now, if there is one.
    pub async fn text_now(&self, css: &str) -> Result<Option<String>, String> {
        let Some(e) = self.find(css).await? else {
            return Ok(None);
        };
        let v = self
            .cmd(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await?;
        Ok(Some(v.as_str().unwrap_or_default().to_owned()))
    }

    /// Waits until the text of `css` contains `needle`; returns the text.
    pub async fn wait_text(
        &self,
        css: &str,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        let started = Instant::now();
        loop {
            let text = self.text_now(css).await?.unwrap_or_default();
            if text.contains(needle) {
                return Ok(text);
            }
            if started.elapsed() > timeout {
                let body = self
                    .text_now("body")
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                return Err(format!(
                    "{css} never said {needle:?}; it says {text:?}; the page says:\n{body}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Runs `script` (a function body) with `args` in the page and returns its value.
    pub async fn execute(&self, script: &str, args: Value) -> Result<Value, String> {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Resizes the window (CSS pixels).
    pub async fn resize(&self, width: u32, height: u32) -> Result<(), String> {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await
        .map(|_| ())
    }

    /// A PNG of the window. WebKitWebDriver answers a screenshot after the next repaint,
    /// and a page at rest (under Tauri's WebKit settings) never repaints: an invisible
    /// opacity flicker keeps it painting until the picture is taken.
    pub async fn screenshot(&self) -> Result<Vec<u8>, String> {
        self.execute(
            "const root = document.documentElement; let odd = false; \
             window.__repaint = setInterval(() => { odd = !odd; root.style.opacity = odd ? '0.999' : '1'; }, 30);",
            json!([]),
        )
        .await?;
        let shot = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        self.execute(
            "clearInterval(window.__repaint); document.documentElement.style.opacity = '';",
            json!([]),
        )
        .await?;
        let v = shot?;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot is not base64: {e}"))
    }

    pub async fn quit(self) {
        let _ = self.cmd(reqwest::Method::DELETE, "", None).await;
    }
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut request = http.request(method.clone(), url);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .map_err(|e| format!("{method} {url}: not JSON: {e}"))?;
    if !status.is_success() {
        return Err(format!("{method} {url}: {status}: {}", answer["value"]));
    }
    Ok(answer["value"].clone())
}
