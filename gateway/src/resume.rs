//! Held calls for MCP 2026-07-28 clients: instead of keeping the request open, the
//! gateway answers `input_required` (SEP-2322 multi round-trip requests) with a URL
//! elicitation (what awaits approval, and the page where the agent's user watches it)
//! and a sealed request state. The client retries the same call with that state and the
//! gateway resumes the same approval; it never asks the policy or the human again.
//!
//! The request state is sealed with HMAC-SHA256 (rmcp's `RequestStateCodec`) under a
//! key only the gateway holds, expires with the approval request, and is bound to the
//! agent, the tool and the call's arguments (associated data): another agent, another
//! tool or changed arguments cannot resume it. Resuming a state twice is harmless: the
//! credential of an approval is handed out once, so a call is forwarded at most once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rmcp::model::{
    ElicitRequest, ElicitRequestParams, InputRequest, InputRequests, InputRequiredResult,
    JsonObject, RequestStateCodec, RequestStateError, SealOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::authority::{AgentId, Call, Pending};

/// The key of the gateway's URL elicitation in `inputRequests` and `inputResponses`.
pub const APPROVAL_INPUT: &str = "countersign_approval";
/// Where the approval pages are served, under the server's base URL.
pub const APPROVAL_PAGE_PATH: &str = "/gateway/approvals";

/// Domain labels mixed into the associated data, so a page link can never be used as a
/// request state, nor the reverse.
const STATE_DOMAIN: &[u8] = b"countersign/gateway/held-call/v1\0";
const PAGE_DOMAIN: &[u8] = b"countersign/gateway/approval-page/v1\0";
/// How long a page link outlives its approval request, so the final answer can be read.
const PAGE_GRACE: Duration = Duration::from_secs(600);

/// Seals and opens the request state of held calls and the links to their pages.
pub struct Resumption {
    codec: RequestStateCodec,
    /// The server's base URL, which serves [`APPROVAL_PAGE_PATH`]; `None` where nothing
    /// serves the pages (a gateway on another machine than Countersign, over stdio).
    base_url: Option<String>,
}

/// What a held call's request state carries (signed, readable: nothing secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldState {
    #[serde(rename = "r")]
    pub auth_req_id: String,
    #[serde(rename = "d")]
    pub decision_id: String,
    /// When the approval request expires, Unix milliseconds.
    #[serde(rename = "e")]
    pub expires_at_ms: u64,
    /// CIBA's polling interval for it.
    #[serde(rename = "i")]
    pub interval_ms: u64,
}

impl HeldState {
    pub fn new(pending: &Pending, decision_id: &str) -> Self {
        Self {
            auth_req_id: pending.auth_req_id.clone(),
            decision_id: decision_id.to_owned(),
            expires_at_ms: now_ms().saturating_add(pending.expires_in_ms),
            interval_ms: pending.interval_ms,
        }
    }

    /// What is left of the approval request's life.
    pub fn remaining(&self) -> Duration {
        Duration::from_millis(self.expires_at_ms.saturating_sub(now_ms()))
    }
}

/// Why a request state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateRefused {
    /// Not sealed by this gateway for this agent, tool and arguments (forged, altered,
    /// or echoed with another call): the retry is malformed. Which check failed is not
    /// told.
    #[error("requestState is not one this gateway gave for this call")]
    Invalid,
    /// Sealed for this call, but its approval request has expired.
    #[error("the approval request expired before anyone answered it")]
    Expired,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Resumption {
    /// `key` must be a secret of at least 32 bytes that only the gateway's replicas share.
    pub fn new(key: &[u8; 32], base_url: &str) -> Self {
        Self {
            // 32 bytes by type: the codec's minimum.
            codec: RequestStateCodec::new_unchecked(key.to_vec()),
            base_url: Some(base_url.trim_end_matches('/').to_owned()),
        }
    }

    /// Request states without approval pages: held calls are resumed the same way, and a
    /// client is told what awaits approval but given no page to watch.
    pub fn without_pages(key: &[u8; 32]) -> Self {
        Self {
            codec: RequestStateCodec::new_unchecked(key.to_vec()),
            base_url: None,
        }
    }

    /// The request state for `call` (with exactly `arguments`) held as `state`.
    pub fn seal(&self, call: &Call, arguments: &JsonObject, state: &HeldState) -> String {
        let context = call_context(&call.agent, &call.tool, arguments);
        let options = SealOptions::new()
            .associated_data(&context)
            .ttl(state.remaining().max(Duration::from_secs(1)));
        let payload = serde_json::to_vec(state).unwrap_or_default();
        self.codec.seal_with(&payload, &options)
    }

    /// The held state a retry of `call` with `arguments` echoes back, if the gateway
    /// sealed it for that agent, tool and arguments and it has not expired.
    pub fn open(
        &self,
        sealed: &str,
        call: &Call,
        arguments: &JsonObject,
    ) -> Result<HeldState, StateRefused> {
        let context = call_context(&call.agent, &call.tool, arguments);
        let payload = self
            .codec
            .open_with(sealed, &context)
            .map_err(|e| match e {
                // Reported only after the tag was verified: it is this call's state.
                RequestStateError::Expired => StateRefused::Expired,
                other => {
                    tracing::debug!(error = %other, agent = %call.agent, "a requestState was refused");
                    StateRefused::Invalid
                }
            })?;
        serde_json::from_slice(&payload).map_err(|_| StateRefused::Invalid)
    }

    /// The page where the agent's user watches an approval: a signed, expiring link
    /// (`None` when this gateway has no pages).
    pub fn page_url(&self, state: &HeldState) -> Option<String> {
        let base_url = self.base_url.as_deref()?;
        let options = SealOptions::new()
            .associated_data(PAGE_DOMAIN)
            .ttl(state.remaining() + PAGE_GRACE);
        let handle = self.codec.seal_with(state.auth_req_id.as_bytes(), &options);
        Some(format!("{base_url}{APPROVAL_PAGE_PATH}/{handle}"))
    }

    /// The approval request a page link names, if the gateway made the link and it has
    /// not expired.
    pub fn page_request(&self, handle: &str) -> Option<String> {
        let bytes = self.codec.open_with(handle, PAGE_DOMAIN).ok()?;
        String::from_utf8(bytes).ok()
    }

    /// The `input_required` result of a call just held: the URL elicitation when the
    /// client can show one, and the state its retry resumes.
    pub fn input_required(
        &self,
        call: &Call,
        arguments: &JsonObject,
        state: &HeldState,
        message: String,
        can_open_urls: bool,
    ) -> InputRequiredResult {
        let sealed = self.seal(call, arguments, state);
        let url = match self.page_url(state) {
            Some(url) if can_open_urls => url,
            _ => return InputRequiredResult::from_request_state(sealed),
        };
        let elicitation = ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message,
            url,
            // 2026-07-28 dropped the id; older readers of the request expect one.
            elicitation_id: countersign_jose::b64url_encode(
                &countersign_jose::sha256(state.auth_req_id.as_bytes())[..12],
            ),
        };
        let mut requests = InputRequests::new();
        requests.insert(
            APPROVAL_INPUT.to_owned(),
            InputRequest::Elicitation(ElicitRequest::new(elicitation)),
        );
        InputRequiredResult::new(Some(requests), Some(sealed))
    }
}

/// Associated data binding a request state to who called what with which arguments.
fn call_context(agent: &AgentId, tool: &str, arguments: &JsonObject) -> Vec<u8> {
    let mut canonical = Vec::new();
    write_canonical(&Value::Object(arguments.clone()), &mut canonical);
    let mut context = STATE_DOMAIN.to_vec();
    for part in [agent.0.as_bytes(), tool.as_bytes()] {
        // Length-prefixed: no two (agent, tool) pairs give the same bytes.
        context.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        context.extend_from_slice(part);
    }
    context.extend_from_slice(&countersign_jose::sha256(&canonical));
    context
}

/// JSON with object keys sorted at every level, so the same arguments sent in another
/// key order bind the same way.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String(key.clone()), out);
                out.push(b':');
                write_canonical(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// What the agent's user answered to the URL elicitation, if they answered: only
/// `cancel` ends the call (`decline` means they chose not to open the page).
pub fn cancelled(input_responses: Option<&rmcp::model::InputResponses>) -> bool {
    input_responses
        .and_then(|responses| responses.get(APPROVAL_INPUT))
        .and_then(|response| response.get("action"))
        .and_then(Value::as_str)
        == Some("cancel")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Action;
    use serde_json::json;

    fn call(agent: &str, tool: &str) -> Call {
        Call {
            agent: AgentId(agent.into()),
            tool: tool.into(),
            action: Action {
                detail: json!({"type": "shop_place_order"}),
                resource: None,
            },
            session: None,
            mcp_request_id: "1".into(),
            source_ip: None,
        }
    }

    fn args(value: Value) -> JsonObject {
        value.as_object().unwrap().clone()
    }

    fn held() -> HeldState {
        HeldState {
            auth_req_id: "req-1".into(),
            decision_id: "dec-1".into(),
            expires_at_ms: now_ms() + 60_000,
            interval_ms: 5_000,
        }
    }

    #[test]
    fn a_state_resumes_only_the_same_agent_tool_and_arguments() {
        let resumption = Resumption::new(&[9; 32], "https://cs.example/");
        let order = args(json!({"vendor": "Acme", "amount": 1200, "lines": [{"a": 1, "b": 2}]}));
        // One state, sealed and compared: two calls of held() may fall in different ms.
        let state = held();
        let sealed = resumption.seal(&call("agent-a", "shop.order"), &order, &state);
        let reordered =
            args(json!({"lines": [{"b": 2, "a": 1}], "amount": 1200, "vendor": "Acme"}));
        assert_eq!(
            resumption.open(&sealed, &call("agent-a", "shop.order"), &reordered),
            Ok(state)
        );
        let refused =
            |c: Call, a: &JsonObject| resumption.open(&sealed, &c, a) == Err(StateRefused::Invalid);
        assert!(refused(call("agent-b", "shop.order"), &order));
        assert!(refused(call("agent-a", "shop.refund"), &order));
        let more = args(json!({"vendor": "Acme", "amount": 9999, "lines": [{"a": 1, "b": 2}]}));
        assert!(refused(call("agent-a", "shop.order"), &more));
        // Another gateway's key, a tampered state.
        let other = Resumption::new(&[8; 32], "https://cs.example");
        assert_eq!(
            other.open(&sealed, &call("agent-a", "shop.order"), &order),
            Err(StateRefused::Invalid)
        );
        // A character inside the sealed body (after the format prefix) changed.
        let mut tampered = sealed.clone().into_bytes();
        tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            resumption.open(&tampered, &call("agent-a", "shop.order"), &order),
            Err(StateRefused::Invalid)
        );
        // The agent and tool are length-prefixed: moving a byte between them is another
        // call.
        let split = resumption.seal(&call("ab", "c.d"), &order, &held());
        assert_eq!(
            resumption.open(&split, &call("a", "bc.d"), &order),
            Err(StateRefused::Invalid)
        );
    }

    #[test]
    fn a_state_expires_with_its_approval_request() {
        let resumption = Resumption::new(&[9; 32], "https://cs.example");
        let order = args(json!({"vendor": "Acme"}));
        let mut expired = held();
        expired.expires_at_ms = now_ms().saturating_sub(1);
        // Sealed with the one-second floor: open now, refused once the second is over.
        let sealed = resumption.seal(&call("a", "t.x"), &order, &expired);
        assert_eq!(expired.remaining(), Duration::ZERO);
        assert!(resumption.open(&sealed, &call("a", "t.x"), &order).is_ok());
        std::thread::sleep(Duration::from_millis(1_100));
        assert_eq!(
            resumption.open(&sealed, &call("a", "t.x"), &order),
            Err(StateRefused::Expired)
        );
        // An expired state for another call is not told apart from a forged one.
        assert_eq!(
            resumption.open(&sealed, &call("b", "t.x"), &order),
            Err(StateRefused::Invalid)
        );
    }

    #[test]
    fn a_page_link_names_its_request_and_is_no_request_state() {
        let resumption = Resumption::new(&[9; 32], "https://cs.example/");
        let url = resumption.page_url(&held()).unwrap();
        let handle = url
            .strip_prefix("https://cs.example/gateway/approvals/")
            .unwrap();
        assert_eq!(resumption.page_request(handle).as_deref(), Some("req-1"));
        assert_eq!(resumption.page_request("nonsense"), None);
        let sealed = resumption.seal(&call("a", "t.x"), &JsonObject::new(), &held());
        assert_eq!(resumption.page_request(&sealed), None);
        assert_eq!(
            resumption.open(handle, &call("a", "t.x"), &JsonObject::new()),
            Err(StateRefused::Invalid)
        );
    }

    #[test]
    fn the_first_answer_elicits_the_page_when_the_client_can_open_it() {
        let resumption = Resumption::new(&[9; 32], "https://cs.example");
        let result = resumption.input_required(
            &call("a", "t.x"),
            &JsonObject::new(),
            &held(),
            "held".into(),
            true,
        );
        let wire = serde_json::to_value(&result).unwrap();
        assert_eq!(wire["resultType"], "input_required");
        let elicitation = &wire["inputRequests"][APPROVAL_INPUT];
        assert_eq!(elicitation["method"], "elicitation/create");
        assert_eq!(elicitation["params"]["mode"], "url");
        assert!(
            elicitation["params"]["url"]
                .as_str()
                .unwrap()
                .starts_with("https://cs.example/gateway/approvals/")
        );
        assert!(wire["requestState"].is_string());
        let quiet = resumption.input_required(
            &call("a", "t.x"),
            &JsonObject::new(),
            &held(),
            "held".into(),
            false,
        );
        let wire = serde_json::to_value(&quiet).unwrap();
        assert!(wire.get("inputRequests").is_none());
        assert!(wire["requestState"].is_string());
    }

    #[test]
    fn a_gateway_without_pages_resumes_calls_but_links_nothing() {
        let resumption = Resumption::without_pages(&[9; 32]);
        let state = held();
        assert_eq!(resumption.page_url(&state), None);
        let result = resumption.input_required(
            &call("a", "t.x"),
            &JsonObject::new(),
            &state,
            "held".into(),
            true,
        );
        let wire = serde_json::to_value(&result).unwrap();
        assert!(wire.get("inputRequests").is_none(), "{wire}");
        let sealed = wire["requestState"].as_str().unwrap();
        assert_eq!(
            resumption.open(sealed, &call("a", "t.x"), &JsonObject::new()),
            Ok(state)
        );
    }

    #[test]
    fn only_a_cancel_ends_the_call() {
        let answer = |action: &str| {
            let mut responses = rmcp::model::InputResponses::new();
            responses.insert(APPROVAL_INPUT.into(), json!({"action": action}));
            cancelled(Some(&responses))
        };
        assert!(answer("cancel"));
        assert!(!answer("decline"));
        assert!(!answer("accept"));
        assert!(!cancelled(None));
    }
}
