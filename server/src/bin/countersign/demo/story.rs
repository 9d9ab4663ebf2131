//! The story the demo tells, act by act, each step checked: a small order passes, a large
//! one waits for Alice's passkey, a destructive action is stopped, offboarding Alice
//! kills her agent's credentials, and the record proves what happened (record.rs). A step that does
//! not come out as the product promises ends the demo with an error.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use countersign_server::audit;
use countersign_shared::approval::DecisionKind;
use countersign_verifier::{Rejection, Verdict};
use serde_json::{Value, json};

use super::agent::Answer;
use super::narrator::{Tone, ms_since, round2};
use super::record::{policy_names, strings};
use super::{Demo, HUMAN, STATUS_TTL_SECS, blocking, scim};

const VENDOR: &str = "Acme Corp";

fn order(amount: u64) -> Value {
    json!([{"type": "purchase_order", "vendor": VENDOR, "amount": amount, "currency": "USD"}])
}

/// `$1,200`.
pub(super) fn dollars(amount: u64) -> String {
    let digits = amount.to_string();
    let mut out = String::from("$");
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn call_arguments(amount: u64) -> Value {
    json!({"vendor": VENDOR, "amount": amount, "currency": "USD"})
}

/// What the decision trace says about one decision.
struct Decided {
    outcome: String,
    policies: Vec<String>,
    approvers: Vec<String>,
}

/// The credential's JWT claims (the demo only reads them; the tool verifies).
fn claims_of(credential: &str) -> anyhow::Result<Value> {
    Ok(countersign_jose::UnverifiedJws::parse(credential)?.insecure_claims()?)
}

impl Demo {
    pub async fn tell(&mut self) -> anyhow::Result<()> {
        let small = self.small_order().await?;
        let large = self.large_order().await?;
        self.destructive_action().await?;
        let mut held = vec![(120, small)];
        held.extend(large.map(|c| (1200, c)));
        self.offboarding(&held).await?;
        self.record().await
    }

    async fn decision(&self, request_id: Option<&str>) -> anyhow::Result<Decided> {
        let events = audit::recent(&self.running.state.store, request_id, 20).await?;
        let event = events
            .iter()
            .find(|e| e.kind == "decision.made")
            .context("the decision has no trace event")?;
        Ok(Decided {
            outcome: event.detail["outcome"].as_str().unwrap_or_default().into(),
            policies: policy_names(&event.detail),
            approvers: strings(&event.detail["approvers"]),
        })
    }

    fn expect_status(&self, answer: &Answer, status: u16, what: &str) -> anyhow::Result<()> {
        if answer.status != status {
            bail!(
                "{what} answered {} where {status} was expected: {}",
                answer.status,
                answer.body
            );
        }
        Ok(())
    }

    /// Narrates an issued credential; returns it.
    fn issued(&self, answer: &Answer, started: Instant) -> anyhow::Result<String> {
        self.expect_status(answer, 200, "the token endpoint")?;
        let credential = answer.body["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned();
        let claims = claims_of(&credential)?;
        let jkt = claims["cnf"]["jkt"].as_str().unwrap_or_default();
        if jkt != self.agent.dpop_thumbprint()? {
            bail!("the credential is not bound to the agent's DPoP key");
        }
        let expires_in = answer.body["expires_in"].as_i64().unwrap_or_default();
        self.narrator.event(
            "credential.issued",
            Tone::Done,
            &format!(
                "credential issued: {} token, valid {expires_in} s, bound to the agent's key",
                answer.body["token_type"].as_str().unwrap_or("?")
            ),
            json!({
                // What verifiers name it by: the VC's `id` (its `jti` otherwise).
                "credential_id": if claims["id"].is_string() { &claims["id"] } else { &claims["jti"] },
                "token_type": answer.body["token_type"],
                "expires_in": expires_in, "cnf_jkt": jkt, "took_ms": ms_since(started),
            }),
            &[],
        );
        Ok(credential)
    }

    fn accepted(&self, amount: u64, verdict: &Verdict, started: Instant) {
        let by = match (&verdict.approver_name, &verdict.approval_method) {
            (Some(name), Some(method)) => format!("approved by {name} ({method})"),
            (_, Some(method)) => format!("approved by {method}"),
            _ => "approved".into(),
        };
        self.narrator.event(
            "tool.accepted",
            Tone::Done,
            &format!(
                "the order tool verifies offline and accepts a {} call: {by}",
                dollars(amount)
            ),
            json!({
                "amount": amount, "credential_id": verdict.credential_id,
                "approver": verdict.approver, "approval_method": verdict.approval_method,
                "took_ms": ms_since(started),
            }),
            &[],
        );
    }

    fn rejected(&self, amount: u64, rejection: &Rejection, extra: Value, text: &str) {
        let mut fields = json!({
            "amount": amount, "reason": rejection.code(), "message": rejection.to_string(),
        });
        if let (Value::Object(f), Value::Object(more)) = (&mut fields, extra) {
            f.extend(more);
        }
        self.narrator
            .event("tool.rejected", Tone::Stopped, text, fields, &[]);
    }

    async fn small_order(&self) -> anyhow::Result<String> {
        self.narrator.part("1. A $120 order: within policy");
        let started = Instant::now();
        let asked = self
            .agent
            .bc_authorize(HUMAN, &order(120), "ORDER 120")
            .await?;
        self.expect_status(&asked, 200, "bc-authorize")?;
        let id = asked.body["auth_req_id"].as_str().context("auth_req_id")?;
        let decided = self.decision(Some(id)).await?;
        if decided.outcome != "allow" {
            bail!("a $120 order was {}, not allowed", decided.outcome);
        }
        self.narrator.event(
            "order.allowed",
            Tone::Done,
            &format!(
                "the agent asks (CIBA bc-authorize) for a $120 order from {VENDOR}: allowed by {}",
                decided.policies.join(", ")
            ),
            json!({
                "auth_req_id": id, "amount": 120, "outcome": decided.outcome,
                "policies": decided.policies, "took_ms": ms_since(started),
            }),
            &[],
        );
        let started = Instant::now();
        let credential = self.issued(&self.agent.token(id).await?, started)?;
        let started = Instant::now();
        match self
            .tool
            .call(&self.agent, &credential, call_arguments(120))
            .await?
        {
            Ok(verdict) => self.accepted(120, &verdict, started),
            Err(r) => bail!("the tool refused the $120 call: {r}"),
        }
        Ok(credential)
    }

    /// The step-up; the credential unless Alice denied.
    async fn large_order(&self) -> anyhow::Result<Option<String>> {
        self.narrator.part("2. A $1,200 order: Alice must approve");
        let (id, interval) = self.ask_for_large_order().await?;
        self.show_in_wallet(&id).await?;
        let approve = self.decide_in_wallet(&id).await?;
        let started = Instant::now();
        let answer = self.agent.poll(&id, interval).await?;
        if !approve {
            if answer.error() != Some("access_denied") {
                bail!(
                    "after the denial the token endpoint answered {}",
                    answer.body
                );
            }
            self.narrator.event(
                "credential.refused",
                Tone::Stopped,
                "the agent's next poll: access_denied, no credential",
                json!({ "error": "access_denied", "took_ms": ms_since(started) }),
                &[],
            );
            return Ok(None);
        }
        let credential = self.issued(&answer, started)?;
        self.spend_once(&credential).await?;
        Ok(Some(credential))
    }

    /// The agent asks for a $1,200 order: held for Alice. Returns the request's id and
    /// poll interval.
    async fn ask_for_large_order(&self) -> anyhow::Result<(String, u64)> {
        let started = Instant::now();
        let asked = self
            .agent
            .bc_authorize(HUMAN, &order(1200), "ORDER 1200")
            .await?;
        self.expect_status(&asked, 200, "bc-authorize")?;
        let id = asked.body["auth_req_id"]
            .as_str()
            .context("auth_req_id")?
            .to_owned();
        let interval = asked.body["interval"].as_u64().unwrap_or(5);
        let decided = self.decision(Some(&id)).await?;
        if decided.outcome != "step_up" || !decided.approvers.iter().any(|a| a == HUMAN) {
            bail!(
                "a $1,200 order was {} (approvers {:?}), not held for Alice",
                decided.outcome,
                decided.approvers
            );
        }
        self.narrator.event(
            "order.held",
            Tone::Human,
            &format!(
                "the agent asks for a $1,200 order: step-up by {}, waiting for {}",
                decided.policies.join(", "),
                decided.approvers.join(", ")
            ),
            json!({
                "auth_req_id": id, "amount": 1200, "outcome": decided.outcome,
                "policies": decided.policies, "approvers": decided.approvers,
                "took_ms": ms_since(started),
            }),
            &[],
        );
        let pending = self.agent.token(&id).await?;
        if pending.error() != Some("authorization_pending") {
            bail!("the first poll answered {}", pending.body);
        }
        self.narrator.event(
            "agent.pending",
            Tone::Human,
            "the agent polls the token endpoint: authorization_pending",
            json!({ "error": "authorization_pending", "interval": interval }),
            &[],
        );
        Ok((id, interval))
    }

    /// Alice's wallet lists the request and shows it, checking the server's signature.
    async fn show_in_wallet(&self, id: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        let listed = blocking(&self.wallet, |w| w.pending()).await?;
        if !listed.iter().any(|p| p.id == id) {
            bail!("the request is not in Alice's wallet");
        }
        let shown_id = id.to_owned();
        let shown = blocking(&self.wallet, move |w| w.show(&shown_id)).await?;
        let t = &shown.transaction;
        let entry = t
            .authorization_details
            .as_ref()
            .and_then(|d| d.get(0))
            .cloned()
            .unwrap_or(Value::Null);
        let decide_by = countersign_server::clock::rfc3339(t.expires_at);
        self.narrator.event(
            "wallet.shown",
            Tone::Human,
            "Alice's wallet shows the request, after checking the server's signature over it",
            json!({
                "agent": t.agent.name, "client_id": t.agent.client_id,
                "vendor": entry["vendor"], "amount": entry["amount"], "currency": entry["currency"],
                "binding_message": t.binding_message,
                "credential_validity_secs": t.credential_validity_secs,
                "decide_by": decide_by, "reason": t.policy_reason,
                "transaction_hash": shown.transaction_hash, "took_ms": ms_since(started),
            }),
            &[
                format!("agent:     {} ({})", t.agent.name, t.agent.client_id),
                format!(
                    "order:     {} {} from {}",
                    entry["amount"]
                        .as_u64()
                        .map_or_else(|| entry["amount"].to_string(), dollars),
                    entry["currency"].as_str().unwrap_or_default(),
                    entry["vendor"].as_str().unwrap_or_default()
                ),
                format!(
                    "validity:  {} min once approved; decide by {decide_by}",
                    t.credential_validity_secs / 60
                ),
                format!("binding:   {}", t.binding_message.as_deref().unwrap_or("-")),
                format!("why:       {}", t.policy_reason.as_deref().unwrap_or("-")),
            ],
        );
        Ok(())
    }

    /// Alice decides with her passkey (asked when interactive, else she approves).
    async fn decide_in_wallet(&self, id: &str) -> anyhow::Result<bool> {
        let approve = if self.interactive {
            ask("Approve with your passkey? [y/N] ").await?
        } else {
            true
        };
        let kind = if approve {
            DecisionKind::Approve
        } else {
            DecisionKind::Deny
        };
        let started = Instant::now();
        let decided_id = id.to_owned();
        let recorded = blocking(&self.wallet, move |w| w.decide(&decided_id, kind, None)).await?;
        self.narrator.event(
            if approve { "wallet.approved" } else { "wallet.denied" },
            Tone::Human,
            &format!(
                "Alice {} with her passkey: a WebAuthn assertion inside a device-key signature over the transaction hash",
                if approve { "approves" } else { "denies" }
            ),
            json!({ "status": recorded.status, "took_ms": ms_since(started) }),
            &[],
        );
        Ok(approve)
    }

    /// The approved credential buys exactly the approved order, once: not $1,500, and not
    /// the same order again.
    async fn spend_once(&self, credential: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        match self
            .tool
            .call(&self.agent, credential, call_arguments(1200))
            .await?
        {
            Ok(verdict) => self.accepted(1200, &verdict, started),
            Err(r) => bail!("the tool refused the approved $1,200 call: {r}"),
        }
        let started = Instant::now();
        match self
            .tool
            .call(&self.agent, credential, call_arguments(1500))
            .await?
        {
            Ok(_) => bail!("the tool accepted $1,500 on a $1,200 approval"),
            Err(r) => {
                let text = format!(
                    "the same credential for a $1,500 call: rejected ({})",
                    r.code()
                );
                self.rejected(1500, &r, json!({ "took_ms": ms_since(started) }), &text);
            }
        }
        // The approval was for one order: the same credential does not buy a second.
        let started = Instant::now();
        match self
            .tool
            .call(&self.agent, credential, call_arguments(1200))
            .await?
        {
            Err(r @ Rejection::UseLimitReached { .. }) => {
                let text = format!(
                    "the same $1,200 order again: rejected ({}), the approval is spent",
                    r.code()
                );
                self.rejected(1200, &r, json!({ "took_ms": ms_since(started) }), &text);
            }
            Ok(_) => bail!("the tool accepted a second $1,200 order on a single-use approval"),
            Err(r) => bail!("a second $1,200 order was refused for another reason: {r}"),
        }
        Ok(())
    }

    async fn destructive_action(&self) -> anyhow::Result<()> {
        self.narrator
            .part("3. Delete the production environment: never");
        let started = Instant::now();
        let action = json!([{"type": "delete_environment", "environment": "production"}]);
        let asked = self
            .agent
            .bc_authorize(HUMAN, &action, "DELETE PROD")
            .await?;
        self.expect_status(&asked, 403, "bc-authorize")?;
        if asked.error() != Some("access_denied") {
            bail!("the destructive action answered {}", asked.body);
        }
        let decided = self.decision(None).await?;
        if decided.outcome != "deny" {
            bail!("the newest decision is {}, not the denial", decided.outcome);
        }
        self.narrator.event(
            "action.denied",
            Tone::Stopped,
            &format!(
                "the agent asks to delete production: access_denied by {} (\"{}\")",
                decided.policies.join(", "),
                asked.description()
            ),
            json!({
                "status": asked.status, "error": "access_denied",
                "error_description": asked.description(),
                "policies": decided.policies, "took_ms": ms_since(started),
            }),
            &[],
        );
        Ok(())
    }

    /// Offboards Alice over SCIM, then shows each held credential refused (the first once
    /// the tool's cached status list expires) and the agent refused.
    async fn offboarding(&self, held: &[(u64, String)]) -> anyhow::Result<()> {
        self.narrator.part("4. Alice leaves the company");
        let started = Instant::now();
        let patch = json!({
            "schemas": [countersign_server::scim::schema::PATCH_OP],
            "Operations": [{"op": "replace", "path": "active", "value": false}]
        });
        let path = format!("/Users/{}", self.scim_id);
        let (status, body) = scim(
            &self.http,
            &self.issuer,
            &self.scim_token,
            reqwest::Method::PATCH,
            &path,
            &patch,
        )
        .await?;
        if status != 200 || body["active"] != false {
            bail!("SCIM deactivation answered {status}: {body}");
        }
        let offboarded = Instant::now();
        self.narrator.event(
            "human.offboarded",
            Tone::Done,
            "the identity provider deactivates Alice over SCIM: her agents' credentials are revoked",
            json!({ "subject": HUMAN, "via": "scim", "took_ms": ms_since(started) }),
            &[],
        );

        for (amount, credential) in held {
            self.refused_once_revoked(*amount, credential, offboarded)
                .await?;
        }

        let asked = self
            .agent
            .bc_authorize(HUMAN, &order(120), "ORDER 120")
            .await?;
        if asked.error() != Some("unauthorized_client") {
            bail!("after offboarding bc-authorize answered {}", asked.body);
        }
        self.narrator.event(
            "agent.refused",
            Tone::Stopped,
            &format!(
                "the agent's next request: {} unauthorized_client (\"{}\")",
                asked.status,
                asked.description()
            ),
            json!({
                "status": asked.status, "error": "unauthorized_client",
                "error_description": asked.description(),
            }),
            &[],
        );
        Ok(())
    }

    /// The tool still holds the status list it fetched; it refuses once that is older
    /// than its TTL. Ask every 100 ms, as calls would come, until then (or give up). The
    /// credential was spent already, so until the tool sees the revocation it answers
    /// "already used" (the status is checked before a use is counted).
    async fn refused_once_revoked(
        &self,
        amount: u64,
        credential: &str,
        offboarded: Instant,
    ) -> anyhow::Result<()> {
        let deadline = Duration::from_secs(STATUS_TTL_SECS + 5);
        let rejection = loop {
            match self
                .tool
                .call(&self.agent, credential, call_arguments(amount))
                .await?
            {
                Err(Rejection::UseLimitReached { .. }) | Ok(_)
                    if offboarded.elapsed() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(r) => break r,
                Ok(_) => bail!(
                    "the {} credential still verifies after {deadline:?}",
                    dollars(amount)
                ),
            }
        };
        if rejection != Rejection::Revoked {
            bail!(
                "the {} credential was refused for another reason: {rejection}",
                dollars(amount)
            );
        }
        let after = round2(offboarded.elapsed().as_secs_f64() * 1000.0);
        let text = format!(
            "the tool refuses the {} credential: revoked, {:.2} s after offboarding (it caches the status list for at most {STATUS_TTL_SECS} s)",
            dollars(amount),
            after / 1000.0
        );
        self.rejected(
            amount,
            &rejection,
            json!({ "after_offboarding_ms": after, "status_ttl_secs": STATUS_TTL_SECS }),
            &text,
        );
        Ok(())
    }
}

/// Asks the person at the terminal; anything but y/yes is a no (as is end of input).
async fn ask(question: &str) -> anyhow::Result<bool> {
    use std::io::Write as _;
    print!("           {question}");
    std::io::stdout().flush()?;
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await??;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
