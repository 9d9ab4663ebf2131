//! The AuthZEN search APIs (`/access/v1/search/subject`, `/resource`, `/action`): which
//! subjects, resources or actions the active policy permits for the rest of the request.
//! Each candidate is decided as an evaluation would be, without a trace record (a search
//! grants nothing). Candidates: the directory's humans (or the calling agent) for a
//! subject search, `policy.tools` for a resource search of type `tool` (Countersign keeps
//! no other inventory: other types find nothing), the declared actions for an action
//! search. Pages are token-based: the token names where the next page starts and is bound
//! to the request, so a changed request cannot continue another's pages.

use serde_json::{Map, Value, json};

use super::Pdp;
use super::evaluate::{AGENT_TYPE, EvaluationError, HUMAN_TYPES, TOOL_TYPE};
use super::request::{self, ActionRef, Entity, Evaluation, Malformed};
use crate::ciba::authorize::Peer;
use crate::policy::facts::Principal;
use crate::store::StoreError;
use crate::store::clients::ClientRecord;

/// What a search looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    Subject,
    Resource,
    Action,
}

/// A search request, read.
#[derive(Debug, Clone)]
pub struct Search {
    pub kind: SearchKind,
    /// The searched entity carries only its type.
    pub subject: Entity,
    pub resource: Entity,
    /// Absent for an action search.
    pub action: Option<ActionRef>,
    pub context: Map<String, Value>,
    pub token: Option<String>,
    pub limit: usize,
    /// Binds page tokens to the request (everything but the token).
    binding: String,
}

/// How many candidates one page examines at most, per result asked for: a page may hold
/// fewer results than its limit (with a token to go on) rather than scan without end.
const SCAN_PER_RESULT: usize = 10;

/// Reads a search request; `max_page` caps (and defaults) `page.limit`.
pub fn read(kind: SearchKind, body: &Value, max_page: usize) -> Result<Search, Malformed> {
    let top = body
        .as_object()
        .ok_or_else(|| Malformed("the request body must be a JSON object".into()))?;
    let subject = request::entity(top.get("subject"), "subject", kind != SearchKind::Subject)?;
    let resource = request::entity(
        top.get("resource"),
        "resource",
        kind != SearchKind::Resource,
    )?;
    let action = match kind {
        SearchKind::Action => None,
        _ => Some(request::action(top.get("action"))?),
    };
    let context = request::context(top.get("context"))?;
    let (token, limit) = page(top.get("page"), max_page)?;
    let binding = crate::policy::trace::digest(&json!({
        "kind": format!("{kind:?}"),
        "subject": {"type": subject.kind, "id": subject.id, "properties": subject.properties},
        "resource": {"type": resource.kind, "id": resource.id, "properties": resource.properties},
        "action": action.as_ref().map(|a| json!({"name": a.name, "properties": a.properties})),
        "context": context,
        "limit": limit,
    }));
    Ok(Search {
        kind,
        subject,
        resource,
        action,
        context,
        token,
        limit,
        binding,
    })
}

fn page(value: Option<&Value>, max_page: usize) -> Result<(Option<String>, usize), Malformed> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok((None, max_page));
    };
    let page = value
        .as_object()
        .ok_or_else(|| Malformed("page must be a JSON object".into()))?;
    let token = match page.get("token") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if t.is_empty() => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => return Err(Malformed("page.token must be a string".into())),
    };
    let limit = match page.get("limit") {
        None | Some(Value::Null) => max_page,
        Some(v) => {
            let n = v
                .as_u64()
                .ok_or_else(|| Malformed("page.limit must be a non-negative integer".into()))?;
            usize::try_from(n).unwrap_or(usize::MAX).clamp(1, max_page)
        }
    };
    Ok((token, limit))
}

/// The page token: where the next page starts, bound to the request.
fn token(after: &str, binding: &str) -> String {
    countersign_jose::b64url_encode(json!({"a": after, "b": binding}).to_string())
}

/// Where a page starts: after the id a token names (`""`: from the start).
fn start(search: &Search) -> Result<String, Malformed> {
    let Some(t) = &search.token else {
        return Ok(String::new());
    };
    let invalid = || Malformed("page.token is not a token this search gave".into());
    let bytes = countersign_jose::b64url_decode(t).ok_or_else(invalid)?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if value["b"].as_str() != Some(search.binding.as_str()) {
        return Err(Malformed(
            "page.token belongs to another request: send the same subject, resource, action, context and limit".into(),
        ));
    }
    value["a"].as_str().map(str::to_owned).ok_or_else(invalid)
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub results: Vec<Value>,
    /// `""`: this is the last page.
    pub next_token: String,
}

impl Page {
    pub fn to_json(&self) -> Value {
        json!({
            "page": {"next_token": self.next_token, "count": self.results.len()},
            "results": self.results,
        })
    }
}

/// Runs `search` for `caller`.
pub async fn search(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    search: &Search,
    peer: &Peer,
) -> Result<Page, EvaluationError> {
    let after = start(search)?;
    let scan_limit = search.limit.saturating_mul(SCAN_PER_RESULT).max(100);
    let mut results = Vec::new();
    let mut examined = 0usize;
    let mut last = after.clone();
    let mut cursor = after;
    loop {
        let batch = candidates(pdp, caller, search, &cursor).await?;
        if batch.is_empty() {
            return Ok(Page {
                results,
                next_token: String::new(),
            });
        }
        for id in batch {
            examined += 1;
            if permitted(pdp, caller, search, &id, peer).await? {
                results.push(result(search, &id));
            }
            last.clone_from(&id);
            if results.len() >= search.limit || examined >= scan_limit {
                return Ok(Page {
                    results,
                    next_token: token(&last, &search.binding),
                });
            }
        }
        cursor.clone_from(&last);
    }
}

/// The next candidates after `after`, in id order (empty: none left).
async fn candidates(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    search: &Search,
    after: &str,
) -> Result<Vec<String>, StoreError> {
    let after_it = |ids: Vec<String>| -> Vec<String> {
        ids.into_iter().filter(|id| id.as_str() > after).collect()
    };
    Ok(match search.kind {
        SearchKind::Subject if HUMAN_TYPES.contains(&search.subject.kind.as_str()) => pdp
            .store
            .page_humans(after, "", 100)
            .await?
            .into_iter()
            // Offboarded humans are candidates too (denied as evaluations deny them), so
            // the cursor moves on over them.
            .map(|h| h.subject.into_string())
            .collect(),
        SearchKind::Subject if search.subject.kind == AGENT_TYPE => {
            after_it(vec![caller.client_id.to_string()])
        }
        SearchKind::Resource if search.resource.kind == TOOL_TYPE => {
            after_it(pdp.config.policy.tools.keys().cloned().collect())
        }
        SearchKind::Action => {
            let principal = if search.subject.kind == AGENT_TYPE {
                Principal::Agent
            } else {
                Principal::User
            };
            let schema = pdp.policy.schema();
            after_it(
                schema
                    .classes
                    .keys()
                    .filter(|a| a.as_str() != crate::policy::schema::AUTHENTICATE)
                    .filter(|a| schema.principal_of(a) == principal)
                    .cloned()
                    .collect(),
            )
        }
        // Nothing of that type is known here.
        _ => Vec::new(),
    })
}

async fn permitted(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    search: &Search,
    id: &str,
    peer: &Peer,
) -> Result<bool, StoreError> {
    let mut e = Evaluation {
        subject: search.subject.clone(),
        resource: search.resource.clone(),
        action: search.action.clone().unwrap_or(ActionRef {
            name: String::new(),
            properties: Map::new(),
        }),
        context: search.context.clone(),
    };
    match search.kind {
        SearchKind::Subject => id.clone_into(&mut e.subject.id),
        SearchKind::Resource => id.clone_into(&mut e.resource.id),
        SearchKind::Action => id.clone_into(&mut e.action.name),
    }
    match super::evaluate::dry_run(pdp, caller, &e, peer).await {
        Ok(allowed) => Ok(allowed),
        Err(EvaluationError::Store(e)) => Err(e),
        // A candidate the request cannot be decided for is not a result.
        Err(EvaluationError::BadRequest(_) | EvaluationError::Forbidden(_)) => Ok(false),
    }
}

fn result(search: &Search, id: &str) -> Value {
    match search.kind {
        SearchKind::Subject => json!({"type": search.subject.kind, "id": id}),
        SearchKind::Resource => json!({"type": search.resource.kind, "id": id}),
        SearchKind::Action => json!({"name": id}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject_search(limit: Value) -> Value {
        json!({
            "subject": {"type": "user"},
            "action": {"name": "can_read_todos"},
            "resource": {"type": "todo", "id": "1"},
            "page": {"limit": limit},
        })
    }

    #[test]
    fn the_searched_entity_needs_no_id_and_the_others_do() {
        let s = read(SearchKind::Subject, &subject_search(json!(5)), 100).unwrap();
        assert_eq!(s.limit, 5);
        let mut no_resource_id = subject_search(json!(5));
        no_resource_id["resource"] = json!({"type": "todo"});
        assert!(read(SearchKind::Subject, &no_resource_id, 100).is_err());
        let actions = json!({"subject": {"type": "user", "id": "a"}, "resource": {"type": "todo", "id": "1"}});
        assert!(
            read(SearchKind::Action, &actions, 100)
                .unwrap()
                .action
                .is_none()
        );
        assert!(
            read(SearchKind::Resource, &actions, 100).is_err(),
            "no action"
        );
    }

    #[test]
    fn limits_are_capped_and_checked() {
        assert_eq!(
            read(SearchKind::Subject, &subject_search(json!(5000)), 100)
                .unwrap()
                .limit,
            100
        );
        assert!(read(SearchKind::Subject, &subject_search(json!(-1)), 100).is_err());
        assert!(read(SearchKind::Subject, &subject_search(json!("ten")), 100).is_err());
    }

    #[test]
    fn a_token_continues_only_its_own_request() {
        let s = read(SearchKind::Subject, &subject_search(json!(5)), 100).unwrap();
        let t = token("bob", &s.binding);
        let mut next = subject_search(json!(5));
        next["page"]["token"] = json!(t);
        let continued = read(SearchKind::Subject, &next, 100).unwrap();
        assert_eq!(start(&continued).unwrap(), "bob");
        let mut changed = next.clone();
        changed["action"]["name"] = json!("can_delete_todo");
        assert!(start(&read(SearchKind::Subject, &changed, 100).unwrap()).is_err());
        let mut other_limit = next.clone();
        other_limit["page"]["limit"] = json!(6);
        assert!(start(&read(SearchKind::Subject, &other_limit, 100).unwrap()).is_err());
        next["page"]["token"] = json!("garbage!");
        assert!(start(&read(SearchKind::Subject, &next, 100).unwrap()).is_err());
    }
}
