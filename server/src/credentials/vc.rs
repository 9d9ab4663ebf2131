//! The credential an approval earns: a W3C Verifiable Credential (Data Model 2.0) secured
//! as a JWT per VC-JOSE-COSE (`typ: vc+jwt`, ES256). The JWT payload *is* the credential;
//! the registered claims a verifier needs without understanding the VC data model
//! (`iss`, `sub`, `iat`, `nbf`, `exp`, `jti`, `cnf`, `status`) sit beside it and agree
//! with it.

use serde_json::{Value, json};

use crate::clock::rfc3339;
use crate::store::auth_requests::{ApprovalMethod, AuthRequestRecord, DecisionMethod, MaxUses};
use crate::store::humans::HumanRecord;
use crate::store::tokens::TokenGrant;

pub const VC_CONTEXT: &str = "https://www.w3.org/ns/credentials/v2";
pub const CREDENTIAL_TYPE: &str = "AgentActionApproval";

/// Everything the credential states.
pub struct CredentialFacts<'a> {
    pub issuer: &'a str,
    pub request: &'a AuthRequestRecord,
    pub approver: &'a HumanRecord,
    pub grant: &'a TokenGrant,
    pub authorization_details: Option<&'a Value>,
    pub status_uri: String,
    /// `acr`/`amr` of the decision.
    pub acr: &'a str,
    pub amr: &'a [String],
    /// For a renewal: the `jti` of the credential it renews.
    pub renewal_of: Option<&'a str>,
    /// The deployment's environment (`policy.environment`).
    pub environment: &'a str,
}

/// `max_uses` as the credential states it.
pub fn max_uses_claim(max_uses: MaxUses) -> Value {
    match max_uses.0 {
        0 => json!("unlimited"),
        n => json!(n),
    }
}

/// The credential's claims (payload of the `vc+jwt`).
pub fn credential_claims(f: &CredentialFacts<'_>) -> Value {
    let req = f.request;
    let iat = f.grant.issued_at.div_euclid(1000);
    let exp = f.grant.expires_at.div_euclid(1000);
    let action = f
        .authorization_details
        .and_then(|d| d.get(0))
        .and_then(|d| d.get("type"))
        .cloned()
        .unwrap_or(Value::Null);
    let risk_signals = json_list(req.risk_signals.as_deref());
    let mut claims = json!({
        "@context": [VC_CONTEXT],
        "id": format!("{}/credentials/{}", f.issuer, f.grant.jti),
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "issuer": f.issuer,
        "validFrom": rfc3339(iat),
        "validUntil": rfc3339(exp),
        "credentialSubject": {
            "id": format!("{}/agents/{}", f.issuer, req.client_id),
            "client_id": req.client_id,
            "key_thumbprint": f.grant.cnf_jkt,
            // `dpop`: usable only with a proof by the agent's key (`cnf.jkt`); `bearer`:
            // the agent was registered bearer-only, and verifiers refuse it by default.
            "binding": if f.grant.cnf_jkt.is_some() { "dpop" } else { "bearer" },
            "action": action,
            "authorization_details": f.authorization_details,
            "scope": req.scope,
            "binding_message": req.binding_message,
            "context": {
                "environment": f.environment,
                "target_resource": req.resource,
                "risk_signals": risk_signals,
                "task_id": req.task_id,
            },
        },
        "evidence": [evidence(f)],
        "iss": f.issuer,
        "sub": req.client_id,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "jti": f.grant.jti,
        "client_id": req.client_id,
        "status": { "status_list": { "idx": f.grant.status_idx, "uri": f.status_uri } },
        // How often it may be used within its validity: a count (an approval is spent by
        // the call it approved, unless the policy's @max_uses says otherwise) or
        // "unlimited". Verifiers count uses (`verifier::UsageStore`).
        "max_uses": max_uses_claim(req.max_uses),
    });
    if let Some(parent) = f.renewal_of {
        // The approval is the same human's; the renewal says which credential it extends.
        claims["evidence"][0]["renewalOf"] = json!(format!("{}/credentials/{parent}", f.issuer));
    }
    if let Some(jkt) = &f.grant.cnf_jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    claims
}

/// A policy's approval: no human was asked.
const POLICY: Option<DecisionMethod> = Some(DecisionMethod::Approval(ApprovalMethod::Policy));

/// The credential's evidence: who (or which policy) approved exactly what, when, how, and
/// the wallet's signed decision that shows it.
fn evidence(f: &CredentialFacts<'_>) -> Value {
    let req = f.request;
    let approved_at = req.decided_at.unwrap_or(f.grant.issued_at).div_euclid(1000);
    let method = req.decision_method;
    let evidence_type = match method {
        Some(DecisionMethod::Approval(ApprovalMethod::Developer)) => "DeveloperApproval",
        POLICY => "PolicyDecision",
        _ => "HumanApproval",
    };
    let policies = json_list(req.policy_refs.as_deref());
    // A policy decision has no human approver; every other kind names the human whose
    // decision (or, for developer approvals, on whose behalf) it was.
    let approver = match method {
        POLICY => Value::Null,
        _ => json!({ "subject": f.approver.subject, "name": f.approver.name }),
    };
    json!({
        "type": [evidence_type],
        "approver": approver,
        "approvedAt": rfc3339(approved_at),
        "method": req.decision_method.map(DecisionMethod::as_str),
        "acr": f.acr,
        "amr": f.amr,
        // The wallet's signed decision, verbatim, and the key that signed it: anyone
        // can check which device confirmed exactly this transaction. Null for
        // developer and policy approvals.
        "deviceKeyThumbprint": req.approval_device_jkt,
        "approval": req.approval_jws,
        // The policy that allowed the action or required the approval (the first
        // determining one; all of them in `policies`), and why.
        "policy": policies.first().cloned().unwrap_or(Value::Null),
        "policies": policies,
        "reasons": json_list(req.policy_reasons.as_deref()),
    })
}

/// A JSON array stored as text on the request; empty when absent or unreadable.
fn json_list(text: Option<&str>) -> Vec<Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}
