//! The page a held call's URL elicitation sends the agent's user to: what waits for
//! approval, by how many approvers, and its answer once given. The link is signed and
//! expires with the request (see [`crate::resume`]); the page is read-only, hands out
//! nothing, and runs no script.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::authority::{ApprovalState, ApprovalView, Authority};
use crate::service::Shared;

/// No script, no external anything: only the inline style below.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const STYLE: &str = "
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --muted: #4a5260;
  --line: #d6dae0; --pending: #7a4a00; --approved: #135e2b; --denied: #a1161c; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8eaed; --bg: #15181c;
  --muted: #b4bac3; --line: #3a4049; --pending: #f5c46b; --approved: #7fd79a;
  --denied: #ff9b97; } }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 44rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.5rem; line-height: 1.25; margin: 0 0 .75rem; }
h2 { font-size: 1.125rem; margin: 1.75rem 0 .5rem; }
.state { font-weight: 600; border-left: .3rem solid currentColor; padding: .25rem .75rem; }
.pending { color: var(--pending); } .approved { color: var(--approved); }
.denied, .expired { color: var(--denied); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
pre { background: color-mix(in srgb, var(--fg) 6%, var(--bg)); border: 1px solid var(--line);
  padding: .75rem; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
.note { color: var(--muted); font-size: .9375rem; }
";

/// `GET /gateway/approvals/{handle}`.
pub async fn show<A: Authority>(
    State(shared): State<Arc<Shared<A>>>,
    Path(handle): Path<String>,
) -> Response {
    // A link the gateway made is a few hundred characters; nothing longer is checked.
    let named = (handle.len() <= 1024)
        .then(|| shared.resumption.page_request(&handle))
        .flatten();
    let Some(auth_req_id) = named else {
        return page(
            StatusCode::NOT_FOUND,
            "Link not valid",
            "<h1>This approval link is not valid</h1>\
             <p>It was not made by this Countersign gateway, or the approval request it \
             named has expired. Ask the agent to make the call again.</p>",
        );
    };
    match shared.authority.approval_status(&auth_req_id).await {
        Ok(Some(view)) => {
            let title = heading(view.state);
            page(StatusCode::OK, title, &body(&view))
        }
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            "Approval not found",
            "<h1>This approval request is gone</h1>\
             <p>Countersign no longer has it. Ask the agent to make the call again.</p>",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "an approval page could not be read");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "<h1>Countersign cannot show this approval now</h1><p>Reload the page in a moment.</p>",
            )
        }
    }
}

fn heading(state: ApprovalState) -> &'static str {
    match state {
        ApprovalState::Pending => "An agent's call waits for approval",
        ApprovalState::Approved | ApprovalState::HandedOut => "The call was approved",
        ApprovalState::Denied => "The call was not approved",
        ApprovalState::Expired => "The approval request expired",
    }
}

fn body(view: &ApprovalView) -> String {
    let mut html = format!("<h1>{}</h1>", heading(view.state));
    let who = match view.approvers {
        0 | 1 => "the approver".to_owned(),
        n => format!("one of {n} approvers"),
    };
    let (class, status) = match view.state {
        ApprovalState::Pending => (
            "pending",
            format!(
                "Pending: waiting for {who} to answer on their phone. This page does not \
                 update by itself; reload it to see the answer."
            ),
        ),
        ApprovalState::Approved => (
            "approved",
            "Approved: the call goes through, with exactly these arguments, when the agent \
             comes back for it."
                .to_owned(),
        ),
        ApprovalState::HandedOut => (
            "approved",
            "Approved, and the gateway took the credential for this call: it forwards \
             exactly these arguments, once."
                .to_owned(),
        ),
        ApprovalState::Denied => (
            "denied",
            "Not approved: the call is not forwarded.".to_owned(),
        ),
        ApprovalState::Expired => (
            "expired",
            "Nobody answered in time: the call is not forwarded.".to_owned(),
        ),
    };
    let _ = write!(
        html,
        "<p class=\"state {class}\" role=\"status\">{}</p><dl><dt>Agent</dt><dd>{}</dd>",
        escape(&status),
        escape(&view.agent.0)
    );
    if let Some(message) = &view.binding_message {
        let _ = write!(
            html,
            "<dt>Shown to the approver</dt><dd>{}</dd>",
            escape(message)
        );
    }
    if view.state == ApprovalState::Pending {
        let _ = write!(
            html,
            "<dt>Expires</dt><dd>in {}</dd>",
            escape(&duration(view.expires_in_s))
        );
    }
    html.push_str("</dl>");
    for detail in &view.details {
        html.push_str(&detail_section(detail));
    }
    html.push_str(
        "<p class=\"note\">The approver decides in the Countersign wallet. \
         Nothing can be approved on this page.</p>",
    );
    html
}

/// One `authorization_details` entry: its facts, then the tool's arguments.
fn detail_section(detail: &Value) -> String {
    let Some(entry) = detail.as_object() else {
        return String::new();
    };
    let mut html = "<h2>The action</h2><dl>".to_owned();
    for (key, value) in entry {
        if key == "arguments" {
            continue;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = write!(
            html,
            "<dt>{}</dt><dd>{}</dd>",
            escape(&key.replace('_', " ")),
            escape(&text)
        );
    }
    html.push_str("</dl>");
    if let Some(arguments) = entry.get("arguments") {
        let pretty = serde_json::to_string_pretty(arguments).unwrap_or_default();
        let _ = write!(html, "<h2>Arguments</h2><pre>{}</pre>", escape(&pretty));
    }
    html
}

fn duration(secs: i64) -> String {
    match secs.max(0) {
        s if s < 90 => format!("{s} seconds"),
        s if s < 90 * 60 => format!("{} minutes", (s + 30) / 60),
        s => format!("{} hours", (s + 1800) / 3600),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{} · Countersign</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>",
        escape(title)
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    // The link is a capability: it must not leak to other sites, nor be cached.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::AgentId;
    use serde_json::json;

    #[test]
    fn what_the_agent_sent_is_shown_as_text_never_as_markup() {
        let view = ApprovalView {
            agent: AgentId("shop-bot".into()),
            state: ApprovalState::Pending,
            binding_message: Some("MCP call shop.place_order".into()),
            details: vec![json!({
                "type": "shop_place_order",
                "tool": "shop.place_order",
                "vendor": "<script>alert(1)</script>",
                "amount": 1200,
                "arguments": {"note": "\"><img src=x onerror=alert(1)>"},
            })],
            approvers: 2,
            expires_in_s: 250,
        };
        let html = body(&view);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("one of 2 approvers"));
        assert!(html.contains("in 4 minutes"));
        assert!(html.contains("<dt>tool</dt><dd>shop.place_order</dd>"));
        assert!(html.contains("<dt>amount</dt><dd>1200</dd>"));
    }

    #[test]
    fn an_answered_request_says_what_happens_to_the_call() {
        let mut view = ApprovalView {
            agent: AgentId("a".into()),
            state: ApprovalState::Denied,
            binding_message: None,
            details: Vec::new(),
            approvers: 1,
            expires_in_s: 0,
        };
        assert!(body(&view).contains("Not approved: the call is not forwarded"));
        assert!(!body(&view).contains("Expires"));
        view.state = ApprovalState::Approved;
        assert!(body(&view).contains("when the agent comes back for it"));
        view.state = ApprovalState::HandedOut;
        assert!(body(&view).contains("exactly these arguments, once"));
        view.state = ApprovalState::Expired;
        assert!(body(&view).contains("Nobody answered in time"));
    }
}
