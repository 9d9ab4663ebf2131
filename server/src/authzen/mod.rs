//! The OpenID AuthZEN Authorization API 1.0 (Final, January 2026): any enforcement point
//! that speaks AuthZEN (API gateways, service meshes, apps) asks Countersign's policy
//! for decisions in the standard shape. `request` reads the bodies, `evaluate` decides
//! and records them as every decision is decided and recorded, `search` answers the
//! search APIs. docs/authzen.md has the mapping onto the policy's entities.

pub mod access_request;
pub mod evaluate;
pub mod request;
pub mod search;

use serde_json::{Value, json};

use crate::ciba::authorize::Authorizing;
use crate::clock::Clock;
use crate::config::Config;
use crate::policy::service::PolicyEngine;
use crate::store::Store;

/// What answering AuthZEN requests works with.
pub struct Pdp<'a> {
    /// `authzen` (the properties that become action fields), `ciba`, `tokens`, `policy`.
    pub config: &'a Config,
    pub issuer: &'a str,
    pub store: &'a Store,
    pub clock: &'a dyn Clock,
    pub policy: &'a PolicyEngine,
    pub denial_bindings: &'a access_request::DenialBindings,
    /// An access request is a backchannel authentication request under the hood.
    pub authorizing: Authorizing<'a>,
}

impl Pdp<'_> {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// `path` under the issuer.
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// Where the API lives, under the issuer; also its OAuth resource identifier.
pub const API_PATH: &str = crate::paths::AUTHZEN_API;
pub const EVALUATION_PATH: &str = "/access/v1/evaluation";
pub const EVALUATIONS_PATH: &str = "/access/v1/evaluations";
pub const SEARCH_SUBJECT_PATH: &str = "/access/v1/search/subject";
pub const SEARCH_RESOURCE_PATH: &str = "/access/v1/search/resource";
pub const SEARCH_ACTION_PATH: &str = "/access/v1/search/action";
/// The PDP metadata (AuthZEN §9).
pub const METADATA_PATH: &str = "/.well-known/authzen-configuration";

/// The PDP metadata: this server is the policy decision point (its issuer), every API of
/// AuthZEN 1.0 is supported, and access may be requested (the Access Request and
/// Approval profile).
pub fn metadata(issuer: &str) -> Value {
    let base = issuer.trim_end_matches('/');
    json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}{EVALUATION_PATH}"),
        "access_evaluations_endpoint": format!("{base}{EVALUATIONS_PATH}"),
        "search_subject_endpoint": format!("{base}{SEARCH_SUBJECT_PATH}"),
        "search_resource_endpoint": format!("{base}{SEARCH_RESOURCE_PATH}"),
        "search_action_endpoint": format!("{base}{SEARCH_ACTION_PATH}"),
        "access_request_endpoint": format!("{base}{}", access_request::REQUESTS_PATH),
        "capabilities": [access_request::CAPABILITY],
    })
}
