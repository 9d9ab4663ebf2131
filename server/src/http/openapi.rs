//! The OpenAPI 3.1 document for every HTTP API of the server: the protocol endpoints (as
//! far as OpenAPI can describe them; their specifications are the authority), the admin
//! and developer APIs, and operations. The committed copy is `docs/openapi.json`; a test
//! fails when it drifts from this code.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::openapi_gateway::GatewayPaths;
use super::openapi_scim::ScimPaths;
use super::{
    admin, admin_audit, admin_credentials, admin_devices, admin_groups, admin_offboarding,
    admin_policies, admin_sso, app_links, authzen, credential_uses, decisions, dev, discovery,
    error, gateway_reports, oauth, oauth_forms, ops, signals, wallet,
};
use crate::directory;

#[derive(OpenApi)]
#[openapi(
    info(title = "Countersign API", description = "The Countersign authorization server: OpenID CIBA endpoints, admin, developer and operations APIs."),
    paths(
        oauth::bc_authorize, oauth::token, oauth::introspect, oauth::revoke, decisions::decide,
        gateway_reports::report_call, gateway_reports::withdraw,
        authzen::metadata, authzen::evaluation, authzen::evaluations,
        authzen::search_subject, authzen::search_resource, authzen::search_action,
        authzen::request_access, authzen::access_request_status, authzen::cancel_access_request,
        credential_uses::record_use,
        discovery::discovery, discovery::jwks, discovery::did_document, discovery::status_list,
        discovery::audit_checkpoint, discovery::audit_log_key,
        app_links::asset_links, app_links::apple_app_site_association,
        admin::list_humans, admin::add_human, admin::list_agents, admin::add_agent,
        admin::update_human, admin::update_agent, admin::create_scim_token, admin::revoke_scim_token,
        admin_offboarding::activate_human, admin_offboarding::deactivate_human,
        admin_offboarding::suspend_agent, admin_offboarding::resume_agent, admin_offboarding::reassign_agent,
        admin_sso::login, admin_sso::callback, admin_sso::logout,
        admin_groups::list, admin_groups::add, admin_groups::add_member, admin_groups::remove_member,
        admin_policies::list, admin_policies::add, admin_policies::schema, admin_policies::validate,
        admin_policies::dry_run, admin_policies::rollback, admin_policies::show, admin_policies::activate,
        admin_credentials::list, admin_credentials::show, admin_credentials::revoke_one, admin_credentials::revoke_many,
        admin_audit::list, admin_audit::verify, admin_audit::export, admin_audit::approvals,
        admin_devices::invite, admin_devices::list, admin_devices::remove,
        wallet::begin_enrollment, wallet::complete_enrollment, wallet::pending, wallet::display, wallet::decide, wallet::events, wallet::remove_device,
        dev::approve, dev::deny,
        signals::receive,
        ops::healthz, ops::readyz,
    ),
    components(schemas(oauth_forms::BackchannelAuthForm, oauth_forms::TokenRequestForm, oauth_forms::TokenForm,
        oauth_forms::DecisionForm, crate::flows::decide::DecisionAnswer,
        oauth_forms::GatewayCallForm, oauth_forms::WithdrawalForm, gateway_reports::CallRecorded, gateway_reports::Withdrawal, crate::policy::Outcome, crate::policy::PolicyRef,
        crate::policy::manage::PolicyVersion, crate::policy::manage::Validation, crate::policy::document::Problem,
        crate::policy::history::DryRunReport, crate::policy::history::ChangedDecision,
        admin_policies::NewPolicy, admin_policies::PolicySource, admin_policies::DryRunRequest,
        admin::NewScimToken, admin::CreatedScimToken, directory::offboarding::Reason, admin_offboarding::Reassignment, admin_sso::SignedIn, directory::offboarding::Offboarded, directory::offboarding::Suspended,
        directory::HumanUpdate, directory::HumanProfile, directory::AgentProfile, directory::AgentUpdate, directory::Group, directory::NewGroup,
        countersign_shared::OAuthError, countersign_shared::OAuthErrorCode, countersign_shared::BackchannelAuthResponse,
        countersign_shared::TokenResponse, countersign_shared::discovery::ProviderMetadata, crate::credentials::Introspection,
        crate::credentials::manage::CredentialSummary, crate::credentials::manage::RevokeOne,
        crate::credentials::manage::RevokeMany, crate::credentials::manage::Revoked,
        crate::audit::AuditEvent, crate::audit::ChainReport, crate::audit::export::ApprovalRecord,
        crate::approvals::enrollment::CreatedInvitation, crate::approvals::enrollment::Device, admin_devices::RemoveDevice,
        countersign_shared::approval::BeginEnrollment, countersign_shared::approval::EnrollmentChallenge,
        countersign_shared::approval::CompleteEnrollment, countersign_shared::approval::EnrolledDevice,
        countersign_shared::approval::PendingRequest, countersign_shared::approval::DisplayedRequest,
        countersign_shared::approval::DecisionRequest, countersign_shared::approval::DecisionRecorded,
        directory::Human, directory::NewHuman, directory::Agent, directory::NewAgent, directory::CreatedAgent, error::Problem,
        crate::credentials::uses::UseReport, crate::credentials::uses::UseCounted,
        signals::SetErrorBody)),
    modifiers(&AdminKeyScheme, &ScimPaths, &GatewayPaths),
    tags((name = "oauth", description = "OpenID CIBA, discovery, introspection, revocation; client authentication per RFC 6749 / RFC 7523"),
         (name = "admin", description = "Directory administration; bearer admin API key"),
         (name = "credentials", description = "Online use counting for tools on several hosts: the credential (Authorization: DPoP) and the agent's DPoP proof the tool received"),
         (name = "wallet", description = "The approver's wallet: enrollment, pending requests, signed request objects, decisions; every call after enrollment carries a DPoP proof by the device key"),
         (name = "dev", description = "Developer approvals; only with --dev-approvals on loopback"),
         (name = "admin-sso", description = "Single sign-on for human admins against the enterprise IdP (OpenID Connect, authorization code with PKCE); the session cookie works on every admin endpoint"),
         (name = "scim", description = "SCIM 2.0 provisioning (RFC 7643, RFC 7644) for the identity provider; resources as /scim/v2/Schemas defines them; bearer SCIM token"),
         (name = "signals", description = "Shared Signals: Security Event Tokens pushed by the identity provider (RFC 8935)"),
         (name = "authzen", description = "OpenID AuthZEN Authorization API 1.0 (docs/authzen.md): policy decisions for enforcement points; JSON in and out, errors as text/plain"),
         (name = "gateway", description = "The MCP gateway (Streamable HTTP at /mcp; docs/gateway.md): an OAuth protected resource for agents' client_credentials tokens"),
         (name = "operations", description = "Health"))
)]
struct ApiDoc;

struct AdminKeyScheme;

impl Modify for AdminKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "admin_key",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
            components.add_security_scheme(
                "dpop_credential",
                SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                    utoipa::openapi::security::ApiKeyValue::with_description(
                        "Authorization",
                        "DPoP <credential>, with the agent's proof in the DPoP header",
                    ),
                )),
            );
            components.add_security_scheme(
                "client_token",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "a client_credentials access token for the resource (DPoP-bound tokens as Authorization: DPoP with a DPoP proof)",
                        ))
                        .build(),
                ),
            );
            components.add_security_scheme(
                "client_basic",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
            );
        }
    }
}

/// The document as JSON, with the crate version. Object keys are sorted, so the text is
/// the same whichever way serde_json orders maps in a given build (a dependency of the
/// wallet turns on `preserve_order` in builds that include it).
pub fn document() -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    sorted(serde_json::to_value(&doc).unwrap_or_default())
}

fn sorted(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    /// `docs/openapi.json` is what we publish; regenerate it with
    /// `UPDATE_OPENAPI=1 cargo test -p countersign-server openapi`.
    #[test]
    fn committed_openapi_document_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        let generated = serde_json::to_string_pretty(&super::document()).unwrap() + "\n";
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is out of date; run UPDATE_OPENAPI=1 cargo test -p countersign-server openapi"
        );
        let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    }
}
