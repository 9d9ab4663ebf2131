//! What an agent may use and who approves for it, as the directory records them: the
//! tools (by `policy.tools` name) it may act on, and the approver route for step-ups
//! whose deciding policy names none. Decisions enforce both
//! ([`crate::policy::service::decide`]).

use super::DirectoryError;
use crate::policy::ApproverRoute;

/// The most tools one agent may list.
pub const MAX_TOOLS: usize = 100;

/// `tools` as stored: sorted, without duplicates; an empty list means no restriction.
pub fn normalize_tools(tools: Option<Vec<String>>) -> Result<Option<Vec<String>>, DirectoryError> {
    let Some(mut tools) = tools.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if tools.len() > MAX_TOOLS {
        return Err(DirectoryError::Invalid(format!(
            "tools may name at most {MAX_TOOLS} tools"
        )));
    }
    for tool in &tools {
        let ok = !tool.is_empty()
            && tool.len() <= 128
            && tool
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
        if !ok {
            return Err(DirectoryError::Invalid(format!(
                "tool {tool:?} must be 1-128 of A-Z a-z 0-9 . _ : -"
            )));
        }
    }
    tools.sort();
    tools.dedup();
    Ok(Some(tools))
}

/// `approver` as stored: a valid route, or none (`""` clears it).
pub fn normalize_approver(approver: Option<String>) -> Result<Option<String>, DirectoryError> {
    match approver.filter(|a| !a.is_empty()) {
        None => Ok(None),
        Some(a) => match ApproverRoute::parse(&a) {
            Some(route) => Ok(Some(route.to_string())),
            None => Err(DirectoryError::Invalid(format!(
                "approver {a:?} must be user, owner, manager, group:NAME or role:NAME"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_sorted_deduplicated_and_checked() {
        assert_eq!(normalize_tools(None).unwrap(), None);
        assert_eq!(
            normalize_tools(Some(vec![])).unwrap(),
            None,
            "empty: any tool"
        );
        assert_eq!(
            normalize_tools(Some(vec!["erp".into(), "crm".into(), "erp".into()])).unwrap(),
            Some(vec!["crm".into(), "erp".into()])
        );
        assert!(normalize_tools(Some(vec!["".into()])).is_err());
        assert!(normalize_tools(Some(vec!["a b".into()])).is_err());
        assert!(normalize_tools(Some(vec!["x".into(); MAX_TOOLS + 1])).is_err());
    }

    #[test]
    fn approver_routes_are_checked() {
        assert_eq!(normalize_approver(None).unwrap(), None);
        assert_eq!(normalize_approver(Some(String::new())).unwrap(), None);
        assert_eq!(
            normalize_approver(Some("group:finance".into())).unwrap(),
            Some("group:finance".into())
        );
        assert!(normalize_approver(Some("boss".into())).is_err());
        assert!(normalize_approver(Some("group:".into())).is_err());
    }
}
