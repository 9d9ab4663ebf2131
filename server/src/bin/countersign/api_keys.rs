//! `countersign admin-key|scim-token create|revoke`: API keys from the command line, and
//! `countersign admin sign-in-link`: a console sign-in link. Each is an audit event with
//! the actor `cli`.

use clap::Subcommand;
use countersign_server::admin::{self, Scope};
use countersign_server::store::Store;

use crate::{CLI, JsonFlag, print};

#[derive(Subcommand)]
pub enum AdminKeyCommand {
    /// Create an admin API key; prints it once.
    Create {
        #[arg(long, default_value = "admin")]
        name: String,
        /// Days until the key stops working (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Revoke an admin API key (also an SSO session's) by its id: it stops working at once.
    Revoke {
        // Ids are base64url and may begin with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Print a single-use link, valid 10 minutes, that signs a browser in to the console
    /// (how the first admin of a fresh install gets in).
    SignInLink {
        /// What the session may do: viewer, operator or admin.
        #[arg(long, default_value = "admin")]
        role: admin::Role,
        #[command(flatten)]
        out: JsonFlag,
    },
}

#[derive(Subcommand)]
pub enum ScimTokenCommand {
    /// Create a bearer token for the identity provider's SCIM client; prints it once.
    Create {
        #[arg(long, default_value = "scim")]
        name: String,
        /// Days until the token stops working (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Revoke a SCIM token by its id: the identity provider's next call is refused.
    Revoke {
        // Ids are base64url and may begin with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

pub async fn admin_key_command(
    store: &Store,
    cmd: &AdminKeyCommand,
    now: i64,
) -> anyhow::Result<()> {
    match cmd {
        AdminKeyCommand::Create {
            name,
            expires_in_days,
            out,
        } => create(store, Scope::Admin, name, *expires_in_days, out.json, now).await,
        AdminKeyCommand::Revoke { id } => revoke(store, Scope::Admin, id, now).await,
    }
}

pub async fn admin_command(
    store: &Store,
    issuer: &str,
    cmd: &AdminCommand,
    now: i64,
) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::SignInLink { role, out } => {
            let link = admin::sign_in_links::create(store, *role, CLI, now).await?;
            let url = format!(
                "{}/console/sign-in?token={}",
                issuer.trim_end_matches('/'),
                link.token.expose()
            );
            let value = serde_json::json!({
                "id": link.id,
                "url": url,
                "role": link.role,
                "expires_at": link.expires_at_ms,
            });
            print(out.json, &value, || {
                format!(
                    "{url}\n(signs one browser in as {}; single use, valid 10 minutes)",
                    link.role
                )
            })
        }
    }
}

pub async fn scim_token_command(
    store: &Store,
    cmd: &ScimTokenCommand,
    now: i64,
) -> anyhow::Result<()> {
    match cmd {
        ScimTokenCommand::Create {
            name,
            expires_in_days,
            out,
        } => create(store, Scope::Scim, name, *expires_in_days, out.json, now).await,
        ScimTokenCommand::Revoke { id } => revoke(store, Scope::Scim, id, now).await,
    }
}

async fn create(
    store: &Store,
    scope: Scope,
    name: &str,
    expires_in_days: Option<u32>,
    json: bool,
    now: i64,
) -> anyhow::Result<()> {
    let expires_at = expires_in_days.map(|d| now + i64::from(d) * 86_400_000);
    let key = admin::create_key(store, name, scope, expires_at, now, CLI).await?;
    let value = serde_json::json!({
        "id": key.id,
        "name": name,
        "scope": scope.as_str(),
        "expires_at": expires_at,
        "key": key.secret.expose(),
    });
    print(json, &value, || {
        format!(
            "{} key {} created:\n{}\n(shown once; use it as `Authorization: Bearer <key>`)",
            scope.as_str(),
            key.id,
            key.secret.expose()
        )
    })
}

async fn revoke(store: &Store, scope: Scope, id: &str, now: i64) -> anyhow::Result<()> {
    if !admin::revoke_key(store, scope, id, now, CLI).await? {
        anyhow::bail!("no live {} key {id:?}", scope.as_str());
    }
    println!("{} key {id} revoked", scope.as_str());
    Ok(())
}
