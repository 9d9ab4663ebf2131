//! A policy document: Cedar text with Countersign's annotations, parsed, validated against
//! the schema and prepared for fast evaluation.
//!
//! Annotations (on `permit` unless noted):
//! - `@id("name")` on every policy: its stable id, reported with every decision.
//! - `@step_up`: a match needs a human's approval instead of passing at once.
//! - `@approver("user" | "owner" | "manager" | "group:NAME" | "role:NAME")`: who approves
//!   (default `user`, the human the request names).
//! - `@four_eyes`: the agent's owner may not approve.
//! - `@validity("PT15M")`: how long the credential is valid (ISO 8601 duration).
//! - `@max_uses("3")` or `@max_uses("unlimited")`: how often the credential may be used
//!   within its validity (default once: an approval is spent by the call it approved).
//! - `@reason("...")`: the human-readable reason shown to approvers and in the trace.
//!
//! Cedar evaluates every policy of a set; the engine only needs those whose action scope
//! can match the request's action, so the document keeps one slice per declared action
//! (the answer is the same: a policy whose scope does not match is never satisfied).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use cedar_policy::{ActionConstraint, Policy, PolicyId, PolicySet, ValidationMode, Validator};
use miette::Diagnostic;
use serde::Serialize;
use utoipa::ToSchema;

use super::annotations::{meta_of, valid_id};
use super::schema::CountersignSchema;
use super::{ApproverRoute, PolicyRef};

/// A problem in a policy document, where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = PolicyProblem)]
pub struct Problem {
    /// 1-based line and column (0 when the problem has no position).
    pub line: usize,
    pub column: usize,
    /// The policy it concerns, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: ", self.line, self.column)?;
        }
        if let Some(p) = &self.policy {
            write!(f, "policy {p:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// What the engine needs to know of one policy besides its Cedar meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyMeta {
    pub id: String,
    pub forbid: bool,
    pub step_up: bool,
    pub approver: Option<ApproverRoute>,
    pub four_eyes: bool,
    pub validity_secs: Option<u64>,
    pub max_uses: Option<super::UseLimit>,
    /// Its `@reason`, else "policy ID permits / forbids / requires approval for this action".
    pub reason: String,
}

/// A compiled, validated policy set of one version.
#[derive(Debug, Clone)]
pub struct PolicyDocument {
    pub version: i64,
    pub source: String,
    pub policies: BTreeMap<String, PolicyMeta>,
    /// Per declared action, the policies whose scope can match it, compiled.
    slices: HashMap<String, Vec<CompiledPolicy>>,
    /// The action entities and their groups (`action in Action::"external"` needs them),
    /// to which each request adds its own.
    pub base_entities: cedar_policy::Entities,
}

/// A policy ready to evaluate: its whole condition (scope constraints and `when` /
/// `unless` clauses as one expression), built once here rather than by Cedar's
/// authorizer for every policy of every request.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub id: String,
    pub forbid: bool,
    pub condition: cedar_policy_core::ast::Expr,
    pub slots: cedar_policy_core::ast::SlotEnv,
}

impl PolicyDocument {
    pub fn slice(&self, action: &str) -> Option<&[CompiledPolicy]> {
        self.slices.get(action).map(Vec::as_slice)
    }

    pub fn meta(&self, id: &str) -> Option<&PolicyMeta> {
        self.policies.get(id)
    }

    pub fn reference(&self, id: &str) -> PolicyRef {
        PolicyRef {
            id: id.to_owned(),
            version: self.version,
        }
    }
}

/// Longest accepted policy document (it is stored and compiled on every replica).
pub const MAX_SOURCE_BYTES: usize = 60_000;

/// The policy a server runs before any version is activated: every action needs the
/// approval of the human the request names (what a CIBA server does with no policy).
pub const DEFAULT_POLICY: &str = r#"@id("default-step-up")
@step_up
@reason("every action needs the approval of the person it was requested for until a policy says otherwise")
permit (principal, action, resource);
"#;

/// 1-based line and column of byte `offset` in `source`.
fn position(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn problems_of(source: &str, diagnostic: &dyn Diagnostic, policy: Option<String>) -> Problem {
    let offset = diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset());
    let (line, column) = offset.map_or((0, 0), |o| position(source, o));
    let mut message = diagnostic.to_string();
    if let Some(help) = diagnostic.help() {
        message.push_str(&format!(" ({help})"));
    }
    Problem {
        line,
        column,
        policy,
        message,
    }
}

/// Byte offsets where each statement (policy) of `source` starts, in order. Cedar ends
/// every policy with `;`, which appears nowhere else outside strings and comments.
fn statement_offsets(source: &str) -> Vec<usize> {
    let bytes = source.as_bytes();
    let mut starts = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                start.get_or_insert(i);
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b';' => {
                if let Some(s) = start.take() {
                    starts.push(s);
                }
            }
            b if b.is_ascii_whitespace() => {}
            _ => {
                start.get_or_insert(i);
            }
        }
        i += 1;
    }
    starts
}

/// Where policy `p` (as parsed, ids `policy0`, `policy1`, ... in source order) starts.
fn offset_of(p: &Policy, starts: &[usize]) -> Option<usize> {
    let index: usize = p.id().to_string().strip_prefix("policy")?.parse().ok()?;
    starts.get(index).copied()
}

pub(super) fn problem_at(
    source: &str,
    at: Option<usize>,
    id: Option<&str>,
    message: String,
) -> Problem {
    let (line, column) = at.map_or((0, 0), |o| position(source, o));
    Problem {
        line,
        column,
        policy: id.map(str::to_owned),
        message,
    }
}

/// Whether a policy with this action scope can match `action` (whose class is `class`).
fn scope_matches(constraint: &ActionConstraint, action: &str, class: &str) -> bool {
    let names = |uid: &cedar_policy::EntityUid| {
        let id = uid.id().unescaped();
        id == action || (!class.is_empty() && id == class)
    };
    match constraint {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => uid.id().unescaped() == action,
        ActionConstraint::In(uids) => uids.iter().any(names),
    }
}

/// Compiles `source` as version `version`: parse, ids, annotations, schema validation.
/// Every problem found is returned, each with its line and column.
pub fn compile(
    source: &str,
    version: i64,
    schema: &CountersignSchema,
    max_validity_secs: u64,
) -> Result<PolicyDocument, Vec<Problem>> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(vec![Problem {
            line: 0,
            column: 0,
            policy: None,
            message: format!("a policy document is at most {MAX_SOURCE_BYTES} bytes"),
        }]);
    }
    let parsed = PolicySet::from_str(source).map_err(|errors| {
        errors
            .iter()
            .map(|e| problems_of(source, e, None))
            .collect::<Vec<_>>()
    })?;
    let mut problems = shape_problems(&parsed);
    let (set, policies) = named_policies(source, &parsed, max_validity_secs, &mut problems);
    let result = Validator::new(schema.schema.clone()).validate(&set, ValidationMode::Strict);
    for e in result.validation_errors() {
        problems.push(problems_of(source, e, Some(e.policy_id().to_string())));
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| (p.line, p.column));
        // The validator reports a mistake once per action the policy applies to.
        problems.dedup_by(|a, b| {
            a.line == b.line && a.column == b.column && a.policy == b.policy && a.line > 0
        });
        return Err(problems);
    }
    let slices = slices_of(schema, &set);
    let base_entities = schema.schema.action_entities().map_err(|e| {
        vec![Problem {
            line: 0,
            column: 0,
            policy: None,
            message: format!("the schema's actions: {e}"),
        }]
    })?;
    Ok(PolicyDocument {
        version,
        source: source.to_owned(),
        policies,
        slices,
        base_entities,
    })
}

/// What is wrong with the document as a whole: no policies, or templates.
fn shape_problems(parsed: &PolicySet) -> Vec<Problem> {
    let mut problems = Vec::new();
    if parsed.policies().next().is_none() && parsed.templates().next().is_none() {
        // An empty set denies everything; that is almost always a mistake, and a
        // deployment that means it can say `forbid (principal, action, resource);`.
        problems.push(Problem {
            line: 0,
            column: 0,
            policy: None,
            message: "the document has no policies".into(),
        });
    }
    if parsed.templates().next().is_some() {
        problems.push(Problem {
            line: 0,
            column: 0,
            policy: None,
            message: "templates (?principal, ?resource) are not supported".into(),
        });
    }
    problems
}

/// The document's policies under their `@id`s, in source order, with what their
/// annotations say; a policy without a valid, unique `@id` is a problem.
fn named_policies(
    source: &str,
    parsed: &PolicySet,
    max_validity_secs: u64,
    problems: &mut Vec<Problem>,
) -> (PolicySet, BTreeMap<String, PolicyMeta>) {
    let starts = statement_offsets(source);
    let mut set = PolicySet::new();
    let mut policies = BTreeMap::new();
    let mut ordered: Vec<(Option<usize>, &Policy)> = parsed
        .policies()
        .map(|p| (offset_of(p, &starts), p))
        .collect();
    ordered.sort_by_key(|(at, _)| *at);
    for (at, p) in ordered {
        let Some(id) = p.annotation("id") else {
            problems.push(problem_at(
                source,
                at,
                None,
                "every policy needs an @id(\"...\") annotation".into(),
            ));
            continue;
        };
        if !valid_id(id) {
            problems.push(problem_at(
                source,
                at,
                Some(id),
                "@id must be 1-128 characters of letters, digits and . _ - :".into(),
            ));
            continue;
        }
        if policies.contains_key(id) {
            problems.push(problem_at(
                source,
                at,
                Some(id),
                "another policy has the same @id".into(),
            ));
            continue;
        }
        let meta = meta_of(source, p, at, id, max_validity_secs, problems);
        if set.add(p.new_id(PolicyId::new(id))).is_err() {
            problems.push(problem_at(source, at, Some(id), "cannot be added".into()));
        }
        policies.insert(id.to_owned(), meta);
    }
    (set, policies)
}

/// Each declared action's policies (those whose action scope can match it), compiled.
fn slices_of(schema: &CountersignSchema, set: &PolicySet) -> HashMap<String, Vec<CompiledPolicy>> {
    let mut slices = HashMap::new();
    for (action, class) in &schema.classes {
        let slice: Vec<CompiledPolicy> = set
            .policies()
            .filter(|p| scope_matches(&p.action_constraint(), action, class))
            .map(|p| {
                let core: &cedar_policy_core::ast::Policy = p.as_ref();
                CompiledPolicy {
                    id: p.id().to_string(),
                    forbid: p.effect() == cedar_policy::Effect::Forbid,
                    condition: core.condition(),
                    slots: core.env().clone(),
                }
            })
            .collect();
        slices.insert(action.clone(), slice);
    }
    slices
}

/// The ids of the policies in a document, for listings.
pub fn policy_ids(doc: &PolicyDocument) -> BTreeSet<String> {
    doc.policies.keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn schema() -> CountersignSchema {
        let c = Config::default();
        CountersignSchema::new(&c.policy, &c.authorization_details_types).unwrap()
    }

    #[test]
    fn statements_start_after_comments_and_ignore_semicolons_in_strings() {
        let source = "// a; comment\n@id(\"x;\") permit (principal, action, resource);\n  forbid (principal, action, resource) when { \"\\\";\" == \"\" };";
        let starts = statement_offsets(source);
        assert_eq!(starts.len(), 2, "{starts:?}");
        assert_eq!(&source[starts[0]..starts[0] + 3], "@id");
        assert_eq!(&source[starts[1]..starts[1] + 6], "forbid");
    }

    #[test]
    fn the_default_policy_compiles() {
        let doc = compile(DEFAULT_POLICY, 0, &schema(), 86_400).unwrap();
        let meta = doc.meta("default-step-up").unwrap();
        assert!(meta.step_up && !meta.forbid);
        assert_eq!(doc.slice("purchase_order").unwrap().len(), 1);
    }

    #[test]
    fn problems_name_line_column_and_policy() {
        let source = "@id(\"a\")\npermit (principal, action, resource)\nwhen { context.arguments.amout > 3 };\n";
        let problems = compile(source, 1, &schema(), 86_400).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].policy.as_deref(), Some("a"));
        assert_eq!(problems[0].line, 3, "{problems:?}");
        assert!(problems[0].message.contains("amout"), "{problems:?}");

        let syntax = "@id(\"a\")\npermit (principal, action, resource)\nwhen { 1 < };\n";
        let problems = compile(syntax, 1, &schema(), 86_400).unwrap_err();
        assert_eq!(
            (problems[0].line, problems[0].policy.as_ref()),
            (3, None),
            "{problems:?}"
        );

        let annotations = "permit (principal, action, resource);\n\
            @id(\"b\") @approver(\"boss\") @step_up permit (principal, action, resource);\n\
            @id(\"c\") @validity(\"PT15M\") forbid (principal, action, resource);\n\
            @id(\"c\") permit (principal, action, resource);\n\
            @id(\"d\") @step_up @validity(\"P30D\") permit (principal, action, resource);\n\
            @id(\"e\") @four_eyes permit (principal, action, resource);\n\
            @id(\"f\") @max_uses(\"0\") permit (principal, action, resource);\n\
            @id(\"g\") @max_uses(\"once\") permit (principal, action, resource);\n\
            @id(\"h\") @max_uses(\"2\") forbid (principal, action, resource);\n";
        let problems = compile(annotations, 1, &schema(), 86_400).unwrap_err();
        let lines: Vec<(usize, &str)> = problems
            .iter()
            .map(|p| (p.line, p.message.as_str()))
            .collect();
        assert_eq!(problems.len(), 9, "{lines:?}");
        assert!(lines[6].1.contains("@max_uses(\"0\")"), "{lines:?}");
        assert!(lines[7].1.contains("@max_uses(\"once\")"), "{lines:?}");
        assert!(lines[8].1.contains("forbid"), "{lines:?}");
        assert!(lines[0].1.contains("@id"), "{lines:?}");
        assert!(lines[1].1.contains("@approver(\"boss\")"), "{lines:?}");
        assert!(lines[2].1.contains("forbid"), "{lines:?}");
        assert!(lines[3].1.contains("same @id"), "{lines:?}");
        assert!(lines[4].1.contains("max_validity_secs"), "{lines:?}");
        assert!(lines[5].1.contains("need @step_up"), "{lines:?}");
        assert_eq!(
            lines.iter().map(|l| l.0).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 7, 8, 9]
        );
    }

    #[test]
    fn slices_keep_only_policies_whose_action_scope_can_match() {
        let source = r#"
@id("any") permit (principal, action, resource);
@id("po") permit (principal, action == Action::"purchase_order", resource);
@id("external") forbid (principal, action in Action::"external", resource) when { context.time.hour < 6 };
@id("destructive") forbid (principal, action in [Action::"destructive"], resource);
@id("login") permit (principal, action == Action::"authenticate", resource);
"#;
        let doc = compile(source, 3, &schema(), 86_400).unwrap();
        let ids = |action: &str| -> BTreeSet<String> {
            doc.slice(action)
                .unwrap()
                .iter()
                .map(|p| p.id.clone())
                .collect()
        };
        assert_eq!(
            ids("purchase_order"),
            BTreeSet::from(["any".into(), "po".into(), "external".into()])
        );
        assert_eq!(
            ids("authenticate"),
            BTreeSet::from(["any".into(), "login".into()])
        );
        assert_eq!(
            doc.reference("po"),
            PolicyRef {
                id: "po".into(),
                version: 3
            }
        );
    }
}
