//! `countersign verify`: a credential from stdin, checked as a tool's verifier would.

use anyhow::Context as _;

use crate::VerifyArgs;

pub async fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    use countersign_verifier::status::{HttpKeySource, HttpStatusSource};
    use countersign_verifier::{KeySource as _, Presentation, Verifier};
    use std::io::Read as _;
    let mut token = String::new();
    std::io::stdin()
        .read_to_string(&mut token)
        .context("reading the credential from stdin")?;
    let token = token.trim().to_owned();
    let issuer = args.issuer.trim_end_matches('/').to_owned();
    let arguments: Option<serde_json::Value> = match &args.arguments {
        Some(text) => Some(serde_json::from_str(text).context("--arguments is not JSON")?),
        None => None,
    };
    let (dpop, method, url, action) = (
        args.dpop.clone(),
        args.method.clone(),
        args.url.clone(),
        args.action.clone(),
    );
    let (allow_bearer, count_at_issuer) = (args.allow_bearer, args.count_at_issuer);
    // The verifier and its fetchers are synchronous (they are what tools embed); run them
    // off the async runtime.
    let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let jwks = HttpKeySource::default()
            .fetch(&issuer)
            .map_err(|e| anyhow::anyhow!("fetching {issuer}/jwks.json: {e}"))?;
        let mut builder = Verifier::builder()
            .trust_issuer(issuer, &jwks)
            .status_source(HttpStatusSource::default())
            .require_proof_of_possession(!allow_bearer);
        if count_at_issuer {
            builder = builder.usage_store(countersign_verifier::HttpUsageStore::default());
        }
        let verifier = builder.build();
        Ok(verifier.verify(&Presentation {
            token: &token,
            dpop_proof: dpop.as_deref(),
            method: &method,
            url: &url,
            action: action.as_deref(),
            arguments: arguments.as_ref(),
        }))
    })
    .await??;
    match outcome {
        Ok(v) => {
            let verdict = serde_json::json!({
                "valid": true, "credential_id": v.credential_id, "agent": v.agent, "agent_key": v.agent_key,
                "approver": v.approver, "approver_name": v.approver_name, "approval_method": v.approval_method,
                "policy": v.policy, "authorization_details": v.authorization_details, "expires_at": v.expires_at,
                "max_uses": v.max_uses.map_or_else(|| serde_json::json!("unlimited"), |n| serde_json::json!(n)),
                "use_number": v.use_number,
            });
            println!("{}", serde_json::to_string_pretty(&verdict)?);
            Ok(())
        }
        Err(r) => {
            let refusal =
                serde_json::json!({ "valid": false, "reason": r.code(), "message": r.to_string() });
            println!("{}", serde_json::to_string_pretty(&refusal)?);
            std::process::exit(1);
        }
    }
}
