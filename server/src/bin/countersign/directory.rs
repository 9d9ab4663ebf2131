//! `countersign human|agent|group ...`: the directory from the command line.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use countersign_server::directory::offboarding;
use countersign_server::directory::{self, AgentUpdate, HumanUpdate, NewAgent, NewGroup, NewHuman};
use countersign_server::store::Store;

use crate::{CLI, JsonFlag, print};

/// What policies read of a person.
#[derive(Args)]
pub struct HumanProfileArgs {
    #[arg(long, default_value = "")]
    department: String,
    #[arg(long, default_value = "")]
    title: String,
    /// Routes `@approver("role:NAME")` step-ups to this person.
    #[arg(long, default_value = "")]
    role: String,
    /// Subject of this person's manager (`@approver("manager")`).
    #[arg(long)]
    manager: Option<String>,
}

#[derive(Subcommand)]
pub enum HumanCommand {
    /// Register a human.
    Add {
        #[arg(long)]
        subject: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// CIBA user_code agents must present for this human.
        #[arg(long)]
        user_code: Option<String>,
        #[command(flatten)]
        profile: HumanProfileArgs,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Change a human's e-mail, name, department, title, role or manager.
    Update {
        #[arg(allow_hyphen_values = true)]
        subject: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        department: Option<String>,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        role: Option<String>,
        /// A subject, or "" to clear.
        #[arg(long)]
        manager: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// List humans.
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Allow new requests naming this human again (what deactivation ended stays ended).
    Activate {
        #[arg(allow_hyphen_values = true)]
        subject: String,
    },
    /// Offboard a human, in one transaction: revoke every credential they approved or
    /// their agents hold, suspend their agents, end their pending requests, disable their
    /// devices, and refuse new requests naming them (access_denied).
    Deactivate {
        #[arg(allow_hyphen_values = true)]
        subject: String,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        out: JsonFlag,
    },
}

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Register an agent as a CIBA client; prints a generated client secret once.
    Add(AddAgent),
    /// Change an agent's department, risk tier, description, tools or approver.
    Update {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[arg(long)]
        department: Option<String>,
        #[arg(long)]
        risk_tier: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Replaces the tools, comma-separated; "" lifts the restriction.
        #[arg(long, value_delimiter = ',')]
        tools: Option<Vec<String>>,
        /// "" goes back to the request's user.
        #[arg(long)]
        approver: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// List agents.
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// The kill switch: revoke every credential the agent holds, end its pending
    /// requests and refuse its new requests and token polls (unauthorized_client).
    Suspend {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Let a suspended agent make requests again (revoked credentials stay revoked).
    Resume {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Hand an agent to another (active) owner; recorded in the audit trail.
    Reassign {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// The new owner's subject.
        #[arg(long)]
        owner: String,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
    },
}

/// `agent add`'s arguments.
#[derive(Args)]
pub struct AddAgent {
    #[arg(long)]
    pub client_id: String,
    /// Subject of the owning human.
    #[arg(long)]
    pub owner: String,
    /// client_secret_basic, client_secret_post or private_key_jwt.
    #[arg(long)]
    pub auth: String,
    /// Display name shown to approvers.
    #[arg(long)]
    pub name: Option<String>,
    /// File with the agent's public JWK Set (private_key_jwt, signed requests).
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// poll (default), ping or push.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// client_notification_endpoint for ping and push.
    #[arg(long, value_name = "URL")]
    pub notification_endpoint: Option<String>,
    /// Require signed authentication requests (FAPI-CIBA).
    #[arg(long)]
    pub require_signed_request: bool,
    /// Require a user_code in every request.
    #[arg(long)]
    pub user_code_required: bool,
    #[arg(long, default_value = "")]
    pub department: String,
    /// low (default), medium, high: what policies compare.
    #[arg(long, default_value = "low")]
    pub risk_tier: String,
    #[arg(long)]
    pub description: Option<String>,
    /// Tools (names from policy.tools) the agent may act on, comma-separated; default
    /// any.
    #[arg(long, value_delimiter = ',')]
    pub tools: Option<Vec<String>>,
    /// Who approves step-ups whose policy names no @approver: user (default), owner,
    /// manager, group:NAME or role:NAME.
    #[arg(long)]
    pub approver: Option<String>,
    /// Issue bearer credentials to this agent (no DPoP). Verifiers refuse them by
    /// default; only for agents that cannot hold a key.
    #[arg(long, conflicts_with = "dpop_jkt")]
    pub bearer_only: bool,
    /// The agent's DPoP key thumbprint (RFC 7638), binding ping/push credentials of
    /// requests that name no dpop_jkt.
    #[arg(long)]
    pub dpop_jkt: Option<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        display_name: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// List groups and their members.
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Add a human to a group.
    AddMember {
        #[arg(allow_hyphen_values = true)]
        group: String,
        #[arg(allow_hyphen_values = true)]
        subject: String,
    },
    /// Remove a human from a group.
    RemoveMember {
        #[arg(allow_hyphen_values = true)]
        group: String,
        #[arg(allow_hyphen_values = true)]
        subject: String,
    },
}

pub async fn human_command(
    store: &Store,
    cmd: &HumanCommand,
    now: i64,
    offboarding_fate: countersign_server::config::AgentFate,
) -> anyhow::Result<()> {
    match cmd {
        HumanCommand::Add {
            subject,
            email,
            name,
            user_code,
            profile,
            out,
        } => {
            let new = NewHuman {
                subject: subject.clone(),
                email: email.clone(),
                name: name.clone(),
                user_code: user_code.clone(),
                department: profile.department.clone(),
                title: profile.title.clone(),
                role: profile.role.clone(),
                manager: profile.manager.clone(),
            };
            let human = directory::add_human(store, new, now, CLI).await?;
            print(out.json, &human, || {
                format!("added human {} <{}>", human.subject, human.email)
            })
        }
        HumanCommand::Update {
            subject,
            email,
            name,
            department,
            title,
            role,
            manager,
            out,
        } => {
            let update = HumanUpdate {
                email: email.clone(),
                name: name.clone(),
                department: department.clone(),
                title: title.clone(),
                role: role.clone(),
                manager: manager.clone(),
            };
            let human = directory::update_human(store, subject, update, now, CLI).await?;
            print(out.json, &human, || {
                format!("updated human {}", human.subject)
            })
        }
        HumanCommand::List { out } => list_humans(store, out).await,
        HumanCommand::Activate { subject } => {
            offboarding::reactivate_human(store, now, subject, CLI).await?;
            println!("human {subject} activated");
            Ok(())
        }
        HumanCommand::Deactivate {
            subject,
            reason,
            out,
        } => offboard(store, now, subject, reason, offboarding_fate, out).await,
    }
}

async fn list_humans(store: &Store, out: &JsonFlag) -> anyhow::Result<()> {
    let humans = directory::list_humans(store).await?;
    print(out.json, &humans, || {
        humans
            .iter()
            .map(|h| {
                format!(
                    "{}\t{}\t{}\t{}",
                    h.subject,
                    h.email,
                    h.name,
                    if h.active { "active" } else { "inactive" }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

async fn offboard(
    store: &Store,
    now: i64,
    subject: &str,
    reason: &str,
    fate: countersign_server::config::AgentFate,
    out: &JsonFlag,
) -> anyhow::Result<()> {
    let done = offboarding::offboard_human(store, now, subject, reason, CLI, fate).await?;
    print(out.json, &done, || {
        format!(
            "human {subject} offboarded: {} credentials revoked, agents suspended: {}, \
             {} pending requests ended, {} devices disabled",
            done.revoked.len(),
            if done.suspended_agents.is_empty() {
                "none".to_owned()
            } else {
                done.suspended_agents.join(", ")
            },
            done.ended_requests.len(),
            done.disabled_devices.len()
        )
    })
}

pub async fn agent_command(store: &Store, cmd: &AgentCommand, now: i64) -> anyhow::Result<()> {
    match cmd {
        AgentCommand::Add(add) => add_agent(store, add, now).await,
        AgentCommand::Update {
            client_id,
            department,
            risk_tier,
            description,
            tools,
            approver,
            out,
        } => {
            let update = AgentUpdate {
                department: department.clone(),
                risk_tier: risk_tier.clone(),
                description: description.clone(),
                // `--tools ""` arrives as one empty name: no restriction.
                tools: tools
                    .clone()
                    .map(|t| t.into_iter().filter(|n| !n.is_empty()).collect()),
                approver: approver.clone(),
            };
            let agent = directory::update_agent(store, client_id, update, now, CLI).await?;
            print(out.json, &agent, || {
                format!("updated agent {}", agent.client_id)
            })
        }
        AgentCommand::List { out } => {
            let agents = directory::list_agents(store).await?;
            print(out.json, &agents, || {
                agents
                    .iter()
                    .map(|a| {
                        format!(
                            "{}\t{}\t{}\t{}\t{}",
                            a.client_id,
                            a.owner,
                            a.auth_method,
                            a.delivery_mode,
                            if a.enabled { "enabled" } else { "disabled" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        AgentCommand::Suspend {
            client_id,
            reason,
            out,
        } => {
            let done = offboarding::suspend_agent(store, now, client_id, reason, CLI).await?;
            print(out.json, &done, || {
                format!(
                    "agent {client_id} suspended: {} credentials revoked, {} pending requests ended",
                    done.revoked.len(),
                    done.ended_requests.len()
                )
            })
        }
        AgentCommand::Resume { client_id } => {
            offboarding::resume_agent(store, now, client_id, CLI).await?;
            println!("agent {client_id} resumed");
            Ok(())
        }
        AgentCommand::Reassign {
            client_id,
            owner,
            reason,
        } => {
            offboarding::reassign_agent(store, now, client_id, owner, reason, CLI).await?;
            println!("agent {client_id} now belongs to {owner}");
            Ok(())
        }
    }
}

async fn add_agent(store: &Store, add: &AddAgent, now: i64) -> anyhow::Result<()> {
    let jwks = match &add.jwks {
        Some(path) => Some(
            serde_json::from_str(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            )
            .with_context(|| format!("{} is not JSON", path.display()))?,
        ),
        None => None,
    };
    let new = NewAgent {
        client_id: add.client_id.clone(),
        name: add.name.clone(),
        owner: add.owner.clone(),
        auth_method: add.auth.clone(),
        jwks,
        delivery_mode: add.mode.clone(),
        notification_endpoint: add.notification_endpoint.clone(),
        require_signed_request: add.require_signed_request,
        user_code_required: add.user_code_required,
        department: add.department.clone(),
        risk_tier: Some(add.risk_tier.clone()),
        description: add.description.clone(),
        tools: add
            .tools
            .clone()
            .map(|t| t.into_iter().filter(|n| !n.is_empty()).collect()),
        approver: add.approver.clone(),
        bearer_only: add.bearer_only,
        dpop_jkt: add.dpop_jkt.clone(),
    };
    let created = directory::add_agent(store, new, now, CLI).await?;
    print(add.out.json, &created, || {
        let mut text = format!(
            "added agent {} (owner {}, {}, {} mode)",
            created.agent.client_id,
            created.agent.owner,
            created.agent.auth_method,
            created.agent.delivery_mode
        );
        if let Some(secret) = &created.client_secret {
            text.push_str(&format!(
                "\nclient_secret: {secret}\n(shown once; only its hash is stored)"
            ));
        }
        text
    })
}

pub async fn group_command(store: &Store, cmd: &GroupCommand, now: i64) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::Add {
            name,
            display_name,
            out,
        } => {
            let new = NewGroup {
                name: name.clone(),
                display_name: display_name.clone(),
            };
            let group = directory::add_group(store, new, now, CLI).await?;
            print(out.json, &group, || format!("added group {}", group.name))
        }
        GroupCommand::List { out } => {
            let groups = directory::list_groups(store).await?;
            print(out.json, &groups, || {
                groups
                    .iter()
                    .map(|g| format!("{}\t{}\t{}", g.name, g.display_name, g.members.join(",")))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        GroupCommand::AddMember { group, subject } => {
            directory::set_group_member(store, group, subject, true, now, CLI).await?;
            println!("{subject} is a member of {group}");
            Ok(())
        }
        GroupCommand::RemoveMember { group, subject } => {
            directory::set_group_member(store, group, subject, false, now, CLI).await?;
            println!("{subject} is no longer a member of {group}");
            Ok(())
        }
    }
}
