//! The embedded schema migrations of each backend, in order: `(version, description, SQL)`
//! from `migrations/{sqlite,postgres}/`. Versions may skip numbers; each is applied once.

pub(super) const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "initial schema",
        include_str!("../../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "renewal and audit",
        include_str!("../../../migrations/sqlite/0002_renewal_and_audit.sql"),
    ),
    (
        3,
        "wallets",
        include_str!("../../../migrations/sqlite/0003_wallets.sql"),
    ),
    (
        4,
        "push",
        include_str!("../../../migrations/sqlite/0004_push.sql"),
    ),
    (
        5,
        "policy",
        include_str!("../../../migrations/sqlite/0005_policy.sql"),
    ),
    (
        6,
        "scim",
        include_str!("../../../migrations/sqlite/0006_scim.sql"),
    ),
    (
        7,
        "agent access",
        include_str!("../../../migrations/sqlite/0007_agent_access.sql"),
    ),
    (
        8,
        "spend once",
        include_str!("../../../migrations/sqlite/0008_spend_once.sql"),
    ),
    (
        9,
        "transparency log",
        include_str!("../../../migrations/sqlite/0009_transparency_log.sql"),
    ),
    (
        10,
        "status list revisions",
        include_str!("../../../migrations/sqlite/0010_status_list_revisions.sql"),
    ),
    (
        11,
        "console",
        include_str!("../../../migrations/sqlite/0011_console.sql"),
    ),
    (
        12,
        "console figures",
        include_str!("../../../migrations/sqlite/0012_console_figures.sql"),
    ),
    (
        13,
        "trace facets",
        include_str!("../../../migrations/sqlite/0013_trace_facets.sql"),
    ),
    (
        14,
        "admin passkeys",
        include_str!("../../../migrations/sqlite/0014_admin_passkeys.sql"),
    ),
    (
        15,
        "human search",
        include_str!("../../../migrations/sqlite/0015_human_search.sql"),
    ),
    (
        16,
        "trace subject",
        include_str!("../../../migrations/sqlite/0016_trace_subject.sql"),
    ),
    (
        17,
        "credential pages",
        include_str!("../../../migrations/sqlite/0017_credential_pages.sql"),
    ),
    (
        18,
        "approval latency",
        include_str!("../../../migrations/sqlite/0018_approval_latency.sql"),
    ),
    (
        19,
        "access request uses",
        include_str!("../../../migrations/sqlite/0019_access_request_uses.sql"),
    ),
];
pub(super) const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "initial schema",
        include_str!("../../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "renewal and audit",
        include_str!("../../../migrations/postgres/0002_renewal_and_audit.sql"),
    ),
    (
        3,
        "wallets",
        include_str!("../../../migrations/postgres/0003_wallets.sql"),
    ),
    (
        4,
        "push",
        include_str!("../../../migrations/postgres/0004_push.sql"),
    ),
    (
        5,
        "policy",
        include_str!("../../../migrations/postgres/0005_policy.sql"),
    ),
    (
        6,
        "scim",
        include_str!("../../../migrations/postgres/0006_scim.sql"),
    ),
    (
        7,
        "agent access",
        include_str!("../../../migrations/postgres/0007_agent_access.sql"),
    ),
    (
        8,
        "spend once",
        include_str!("../../../migrations/postgres/0008_spend_once.sql"),
    ),
    (
        9,
        "transparency log",
        include_str!("../../../migrations/postgres/0009_transparency_log.sql"),
    ),
    (
        10,
        "status list revisions",
        include_str!("../../../migrations/postgres/0010_status_list_revisions.sql"),
    ),
    (
        11,
        "console",
        include_str!("../../../migrations/postgres/0011_console.sql"),
    ),
    (
        12,
        "console figures",
        include_str!("../../../migrations/postgres/0012_console_figures.sql"),
    ),
    (
        13,
        "trace facets",
        include_str!("../../../migrations/postgres/0013_trace_facets.sql"),
    ),
    (
        14,
        "admin passkeys",
        include_str!("../../../migrations/postgres/0014_admin_passkeys.sql"),
    ),
    (
        15,
        "human search",
        include_str!("../../../migrations/postgres/0015_human_search.sql"),
    ),
    (
        16,
        "trace subject",
        include_str!("../../../migrations/postgres/0016_trace_subject.sql"),
    ),
    (
        17,
        "credential pages",
        include_str!("../../../migrations/postgres/0017_credential_pages.sql"),
    ),
    (
        18,
        "approval latency",
        include_str!("../../../migrations/postgres/0018_approval_latency.sql"),
    ),
    (
        19,
        "access request uses",
        include_str!("../../../migrations/postgres/0019_access_request_uses.sql"),
    ),
];
