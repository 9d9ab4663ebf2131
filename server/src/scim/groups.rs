//! SCIM Groups: each provisions a group of humans (approvals routed to `group:NAME`,
//! policies' `principal in Group::"NAME"`). The group's name is its displayName when that
//! is a valid identifier and free at creation (so policies can name it), else the SCIM id;
//! later renames change the display name only, never what policies refer to.

use serde_json::{Map, Value};

use super::patch::{self, PatchRequest};
use super::schema::ResourceKind;
use super::users::Caller;
use super::{ListQuery, ScimError, check_required, etag, list_response, normalize_body, render};
use crate::directory;
use crate::store::scim::ScimRecord;
use crate::store::{StoreError, Tx};

const KIND: ResourceKind = ResourceKind::Group;

fn display_name(doc: &Map<String, Value>) -> String {
    doc.get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The SCIM ids of the members (`value`, or the last segment of `$ref`).
fn member_ids(doc: &Map<String, Value>) -> Vec<String> {
    doc.get("members")
        .and_then(Value::as_array)
        .map(|members| {
            members
                .iter()
                .filter_map(|m| {
                    m.get("value")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .or_else(|| {
                            m.get("$ref")
                                .and_then(Value::as_str)
                                .and_then(|r| r.rsplit('/').next())
                                .map(str::to_owned)
                        })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The subjects of the humans the members provision; an unknown member is refused.
async fn member_subjects(
    caller: Caller<'_>,
    doc: &Map<String, Value>,
) -> Result<Vec<String>, ScimError> {
    let mut subjects = Vec::new();
    for id in member_ids(doc) {
        let user = caller
            .store
            .scim_resource(ResourceKind::User.name(), &id)
            .await?
            .ok_or_else(|| ScimError::invalid_value(format!("member {id:?} is not a User")))?;
        if !subjects.contains(&user.target) {
            subjects.push(user.target);
        }
    }
    Ok(subjects)
}

fn conflict(e: StoreError) -> ScimError {
    match e {
        StoreError::Conflict => {
            ScimError::uniqueness("a group with this displayName exists".into())
        }
        other => other.into(),
    }
}

pub async fn create(caller: Caller<'_>, body: &Value) -> Result<Value, ScimError> {
    let (external_id, doc) = normalize_body(KIND, body)?;
    let display = display_name(&doc);
    directory::check_text("displayName", &display, 200)?;
    let key = display.to_lowercase();
    let store = caller.store;
    if store
        .scim_resources(KIND.name())
        .await?
        .iter()
        .any(|r| r.name_key == key)
    {
        return Err(ScimError::uniqueness(format!(
            "displayName {display:?} is taken"
        )));
    }
    let subjects = member_subjects(caller, &doc).await?;
    let id = countersign_jose::random_b64url(16);
    let taken = store
        .list_groups()
        .await?
        .iter()
        .any(|(n, _, _)| *n == display);
    let name = if directory::check_identifier("name", &display).is_ok() && !taken {
        display.clone()
    } else {
        id.clone()
    };
    let mut tx = store.begin().await?;
    directory::create_group_in(
        store,
        &mut tx,
        caller.now_ms,
        caller.actor,
        &name,
        &display,
        &subjects,
    )
    .await
    .map_err(conflict)?;
    let record = ScimRecord {
        id,
        resource_type: KIND.name().into(),
        name_key: key,
        external_id,
        target: name,
        doc: Value::Object(doc).to_string(),
        version: 1,
        created_at: caller.now_ms,
        updated_at: caller.now_ms,
    };
    store
        .insert_scim_resource(&mut tx, &record)
        .await
        .map_err(conflict)?;
    tx.commit().await?;
    store.forget_directory_cache();
    Ok(render(KIND, caller.base, &record))
}

async fn load(caller: Caller<'_>, id: &str) -> Result<ScimRecord, ScimError> {
    caller
        .store
        .scim_resource(KIND.name(), id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no Group {id:?}")))
}

fn check_version(record: &ScimRecord, if_match: Option<&str>) -> Result<(), ScimError> {
    match if_match {
        Some(tag) if tag.trim() != "*" && tag.trim() != etag(record.version) => {
            Err(ScimError::precondition_failed(format!(
                "the Group is at version {}",
                etag(record.version)
            )))
        }
        _ => Ok(()),
    }
}

pub async fn get(caller: Caller<'_>, id: &str) -> Result<Value, ScimError> {
    Ok(render(KIND, caller.base, &load(caller, id).await?))
}

pub async fn list(caller: Caller<'_>, query: &ListQuery) -> Result<Value, ScimError> {
    let all = caller.store.scim_resources(KIND.name()).await?;
    let rendered = all.iter().map(|r| render(KIND, caller.base, r)).collect();
    list_response(rendered, query)
}

pub async fn replace(
    caller: Caller<'_>,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<Value, ScimError> {
    let record = load(caller, id).await?;
    check_version(&record, if_match)?;
    let (external_id, doc) = normalize_body(KIND, body)?;
    store_doc(caller, record, external_id, doc).await
}

pub async fn patch(
    caller: Caller<'_>,
    id: &str,
    request: &PatchRequest,
    if_match: Option<&str>,
) -> Result<Value, ScimError> {
    let record = load(caller, id).await?;
    check_version(&record, if_match)?;
    let mut doc = super::patchable(&record);
    patch::apply(KIND, &mut doc, request)?;
    check_required(KIND, &doc)?;
    let external_id = super::take_external_id(&mut doc);
    store_doc(caller, record, external_id, doc).await
}

async fn store_doc(
    caller: Caller<'_>,
    record: ScimRecord,
    external_id: Option<String>,
    doc: Map<String, Value>,
) -> Result<Value, ScimError> {
    let store = caller.store;
    let display = display_name(&doc);
    directory::check_text("displayName", &display, 200)?;
    let key = display.to_lowercase();
    if key != record.name_key
        && store
            .scim_resources(KIND.name())
            .await?
            .iter()
            .any(|r| r.name_key == key)
    {
        return Err(ScimError::uniqueness(format!(
            "displayName {display:?} is taken"
        )));
    }
    let subjects = member_subjects(caller, &doc).await?;
    let mut tx = store.begin().await?;
    let (now, actor) = (caller.now_ms, caller.actor);
    directory::rename_group_in(store, &mut tx, now, actor, &record.target, &display).await?;
    directory::set_members_in(store, &mut tx, now, actor, &record.target, &subjects).await?;
    let updated = ScimRecord {
        name_key: key,
        external_id,
        doc: Value::Object(doc).to_string(),
        version: record.version + 1,
        updated_at: caller.now_ms.max(record.updated_at),
        ..record
    };
    if !store
        .update_scim_resource(&mut tx, &updated)
        .await
        .map_err(conflict)?
    {
        return Err(ScimError::uniqueness(
            "the Group changed meanwhile; fetch it and retry".into(),
        ));
    }
    tx.commit().await?;
    store.forget_directory_cache();
    Ok(render(KIND, caller.base, &updated))
}

pub async fn delete(caller: Caller<'_>, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
    let store = caller.store;
    let record = load(caller, id).await?;
    check_version(&record, if_match)?;
    let mut tx = store.begin().await?;
    directory::delete_group_in(store, &mut tx, caller.now_ms, caller.actor, &record.target).await?;
    store.delete_scim_resource(&mut tx, KIND.name(), id).await?;
    tx.commit().await?;
    store.forget_directory_cache();
    Ok(())
}

/// Removes User `user_id` from every provisioned group's document, inside `tx` (the User
/// is being deleted).
pub(super) async fn forget_member(
    caller: Caller<'_>,
    tx: &mut Tx<'_>,
    user_id: &str,
) -> Result<(), ScimError> {
    let store = caller.store;
    for record in store.scim_resources(KIND.name()).await? {
        let mut doc: Map<String, Value> = serde_json::from_str(&record.doc).unwrap_or_default();
        if !member_ids(&doc).iter().any(|m| m == user_id) {
            continue;
        }
        if let Some(Value::Array(members)) = doc.get_mut("members") {
            members.retain(|m| m.get("value").and_then(Value::as_str) != Some(user_id));
            if members.is_empty() {
                doc.remove("members");
            }
        }
        let updated = ScimRecord {
            doc: Value::Object(doc).to_string(),
            version: record.version + 1,
            updated_at: caller.now_ms.max(record.updated_at),
            ..record
        };
        store.update_scim_resource(tx, &updated).await?;
    }
    Ok(())
}
