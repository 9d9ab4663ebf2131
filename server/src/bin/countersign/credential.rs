//! `countersign credential list|show|revoke`.

use countersign_server::credentials::manage as credentials;
use countersign_server::store::Store;

use crate::{CredentialCommand, print};

fn credential_line(c: &credentials::CredentialSummary) -> String {
    let state = match (&c.revoked_at, &c.revoked_reason) {
        (Some(_), Some(reason)) => format!("revoked ({reason})"),
        (Some(_), None) => "revoked".to_owned(),
        (None, _) => format!(
            "expires {}",
            countersign_server::clock::rfc3339(c.expires_at)
        ),
    };
    format!(
        "{}\t{}\t{}\t{}\t{state}",
        c.id, c.agent, c.approver, c.token_type
    )
}

pub async fn credential_command(
    store: &Store,
    cmd: &CredentialCommand,
    now: i64,
) -> anyhow::Result<()> {
    match cmd {
        CredentialCommand::List { filter, out } => {
            let selector = credentials::selector(
                filter.agent.as_deref(),
                filter.approver.as_deref(),
                filter.owner.as_deref(),
            )?;
            let list = credentials::list(store, selector).await?;
            print(out.json, &list, || {
                list.iter()
                    .map(credential_line)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        CredentialCommand::Show { id, out } => {
            let c = credentials::show(store, id).await?;
            print(out.json, &c, || credential_line(&c))
        }
        CredentialCommand::Revoke {
            id,
            filter,
            reason,
            out,
        } => {
            let result = match id {
                Some(id) => {
                    if filter.agent.is_some() || filter.approver.is_some() || filter.owner.is_some()
                    {
                        anyhow::bail!(
                            "give a credential id or one of --agent, --approver, --owner, not both"
                        );
                    }
                    credentials::revoke_one(store, id, reason, "cli", now).await?
                }
                None => {
                    let request = credentials::RevokeMany {
                        agent: filter.agent.clone(),
                        approver: filter.approver.clone(),
                        owner: filter.owner.clone(),
                        reason: reason.clone(),
                    };
                    credentials::revoke_many(store, &request, "cli", now).await?
                }
            };
            print(out.json, &result, || {
                format!("revoked {} credential(s)", result.revoked.len())
            })
        }
    }
}
