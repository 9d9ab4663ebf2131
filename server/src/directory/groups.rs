//! Groups of humans: approver routing `group:NAME` and `principal.owner in Group::"NAME"`
//! in policies, so who is in one decides who may approve. Every membership change is its
//! own event (`group.member_added` / `group.member_removed`, subject `group:NAME`, detail
//! `{"group", "subject"}`), whichever surface made it.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{DirectoryError, check_identifier, check_text};
use crate::audit::{self, Changes, EventKind, NewEvent};
use crate::store::groups::Membership;
use crate::store::{Store, StoreError, Tx};

/// A group of humans (approver routing `group:NAME`, `principal.owner in Group::"NAME"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub name: String,
    pub display_name: String,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._@:-]+$")]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
}

/// Creates a group; `actor` is recorded as having done it (`group.created`).
pub async fn add_group(
    store: &Store,
    new: NewGroup,
    now_ms: i64,
    actor: &str,
) -> Result<Group, DirectoryError> {
    check_identifier("name", &new.name)?;
    let display = new.display_name.unwrap_or_else(|| new.name.clone());
    check_text("display_name", &display, 200)?;
    let mut tx = store.begin().await?;
    match create_group_in(store, &mut tx, now_ms, actor, &new.name, &display, &[]).await {
        Err(StoreError::Conflict) => Err(DirectoryError::Conflict(format!("group {:?}", new.name))),
        Err(e) => Err(e.into()),
        Ok(()) => {
            tx.commit().await?;
            Ok(Group {
                name: new.name,
                display_name: display,
                members: Vec::new(),
            })
        }
    }
}

pub async fn list_groups(store: &Store) -> Result<Vec<Group>, DirectoryError> {
    Ok(store
        .list_groups()
        .await?
        .into_iter()
        .map(|(name, display_name, members)| Group {
            name,
            display_name,
            members,
        })
        .collect())
}

/// Adds or removes `subject` as a member of group `name`, recording `actor` with the
/// change. Adding a member again changes (and records) nothing and is not an error.
pub async fn set_group_member(
    store: &Store,
    name: &str,
    subject: &str,
    member: bool,
    now_ms: i64,
    actor: &str,
) -> Result<(), DirectoryError> {
    let mut tx = store.begin().await?;
    let changed = if member {
        match store.add_group_member(&mut tx, name, subject).await? {
            Membership::Added => true,
            Membership::AlreadyMember => false,
            Membership::Missing => {
                return Err(DirectoryError::NotFound(format!(
                    "group {name:?} or human {subject:?}"
                )));
            }
        }
    } else if store.remove_group_member(&mut tx, name, subject).await? {
        true
    } else {
        return Err(DirectoryError::NotFound(format!(
            "{subject:?} in group {name:?}"
        )));
    };
    if changed {
        record_member(store, &mut tx, now_ms, actor, name, subject, member).await?;
        tx.commit().await?;
    }
    Ok(())
}

async fn record_member(
    store: &Store,
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    group: &str,
    subject: &str,
    added: bool,
) -> Result<(), StoreError> {
    let event = NewEvent {
        actor,
        kind: if added {
            EventKind::GroupMemberAdded
        } else {
            EventKind::GroupMemberRemoved
        },
        subject: &format!("group:{group}"),
        detail: json!({ "group": group, "subject": subject }),
    };
    audit::record(store, tx, now_ms, event).await?;
    Ok(())
}

/// Creates group `name` with `members` inside `tx`: `group.created`, then one
/// `group.member_added` per member. `Conflict` when the group exists.
pub(crate) async fn create_group_in(
    store: &Store,
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    name: &str,
    display_name: &str,
    members: &[String],
) -> Result<(), StoreError> {
    store.insert_group(tx, name, display_name, now_ms).await?;
    let event = NewEvent {
        actor,
        kind: EventKind::GroupCreated,
        subject: &format!("group:{name}"),
        detail: json!({ "display_name": display_name }),
    };
    audit::record(store, tx, now_ms, event).await?;
    set_members_in(store, tx, now_ms, actor, name, members).await
}

/// Makes `subjects` exactly the members of group `name` inside `tx`, recording each
/// member removed and added (subjects that are not humans are skipped, as before).
pub(crate) async fn set_members_in(
    store: &Store,
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    name: &str,
    subjects: &[String],
) -> Result<(), StoreError> {
    let current = store.group_members_in(tx, name).await?;
    for gone in current.iter().filter(|s| !subjects.contains(s)) {
        if store.remove_group_member(tx, name, gone).await? {
            record_member(store, tx, now_ms, actor, name, gone, false).await?;
        }
    }
    for new in subjects.iter().filter(|s| !current.contains(s)) {
        if store.add_group_member(tx, name, new).await? == Membership::Added {
            record_member(store, tx, now_ms, actor, name, new, true).await?;
        }
    }
    Ok(())
}

/// Sets group `name`'s display name inside `tx`, recording `group.updated` when it
/// changes. False when there is no such group.
pub(crate) async fn rename_group_in(
    store: &Store,
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    name: &str,
    display_name: &str,
) -> Result<bool, StoreError> {
    let Some(old) = store.group_display_name_in(tx, name).await? else {
        return Ok(false);
    };
    if old == display_name {
        return Ok(true);
    }
    store.set_group_display_name(tx, name, display_name).await?;
    let mut changes = Changes::default();
    changes.field("display_name", old.as_str(), display_name);
    let event = NewEvent {
        actor,
        kind: EventKind::GroupUpdated,
        subject: &format!("group:{name}"),
        detail: changes.into_detail(),
    };
    audit::record(store, tx, now_ms, event).await?;
    Ok(true)
}

/// Deletes group `name` inside `tx`: each member's removal, then `group.deleted`. False
/// when there was no such group.
pub(crate) async fn delete_group_in(
    store: &Store,
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    name: &str,
) -> Result<bool, StoreError> {
    let Some(display_name) = store.group_display_name_in(tx, name).await? else {
        return Ok(false);
    };
    set_members_in(store, tx, now_ms, actor, name, &[]).await?;
    store.delete_group(tx, name).await?;
    let event = NewEvent {
        actor,
        kind: EventKind::GroupDeleted,
        subject: &format!("group:{name}"),
        detail: json!({ "display_name": display_name }),
    };
    audit::record(store, tx, now_ms, event).await?;
    Ok(true)
}
