//! What a signed-in admin may do. Three roles, each including the one before:
//! `viewer` reads; `operator` also works the approvals queue, suspends and resumes agents,
//! revokes credentials and offboards humans; `admin` also changes policies, keys, the
//! directory and integrations. Checked on the server for every action, whatever the page
//! showed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn includes(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not one of `viewer`, `operator`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: one of viewer, operator, admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The role the admin JSON API needs for `method` on `path` (under `/admin/v1`): reading
/// needs a viewer; the operator's actions (suspend and resume, revocations, offboarding and
/// reactivation) an operator; every other change an admin. Unknown paths need an admin, so
/// a new endpoint is closed until it is classified here.
pub fn needed_for_api(method: &str, path: &str) -> Role {
    // Validation and dry-runs compute an answer and change nothing.
    let questions = ["/admin/v1/policies/validate", "/admin/v1/policies/dry-run"];
    if matches!(method, "GET" | "HEAD") || questions.contains(&path) {
        return Role::Viewer;
    }
    let operator_actions: [(&str, &[&str]); 3] = [
        ("/admin/v1/agents/", &["/suspend", "/resume"]),
        ("/admin/v1/humans/", &["/deactivate", "/activate"]),
        ("/admin/v1/credentials", &["/revoke"]),
    ];
    let operator = operator_actions.iter().any(|(under, tails)| {
        path.starts_with(under) && tails.iter().any(|tail| path.ends_with(tail))
    });
    if operator {
        return Role::Operator;
    }
    Role::Admin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_ones_below_and_parse_back() {
        assert!(Role::Admin.includes(Role::Operator));
        assert!(Role::Operator.includes(Role::Viewer));
        assert!(!Role::Viewer.includes(Role::Operator));
        assert!(!Role::Operator.includes(Role::Admin));
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn api_routes_are_classified_closed_by_default() {
        assert_eq!(needed_for_api("GET", "/admin/v1/agents"), Role::Viewer);
        assert_eq!(
            needed_for_api("POST", "/admin/v1/agents/a/suspend"),
            Role::Operator
        );
        assert_eq!(
            needed_for_api("POST", "/admin/v1/humans/h/deactivate"),
            Role::Operator
        );
        assert_eq!(needed_for_api("POST", "/admin/v1/agents"), Role::Admin);
        assert_eq!(needed_for_api("PATCH", "/admin/v1/agents/a"), Role::Admin);
        assert_eq!(
            needed_for_api("POST", "/admin/v1/credentials/revoke"),
            Role::Operator
        );
        assert_eq!(
            needed_for_api("POST", "/admin/v1/humans/h/activate"),
            Role::Operator
        );
        assert_eq!(
            needed_for_api("POST", "/admin/v1/anything-new"),
            Role::Admin
        );
        assert_eq!(
            needed_for_api("POST", "/admin/v1/policies/validate"),
            Role::Viewer
        );
        assert_eq!(
            needed_for_api("POST", "/admin/v1/policies/1/activate"),
            Role::Admin,
            "activating a policy is a policy change"
        );
    }
}
