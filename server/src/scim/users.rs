//! SCIM Users: each provisions a human. The SCIM document is kept as sent; the human's
//! e-mail (the primary one), display name, title, department and manager are derived
//! from it, and `active: false` (or DELETE) offboards the human in the same transaction.
//! A User whose userName or e-mail names a human registered before provisioning (by the
//! CLI, say) takes that human over instead of duplicating them.

use serde_json::{Map, Value};

use super::patch::{self, PatchRequest};
use super::schema::{self, ResourceKind};
use super::{ListQuery, ScimError, check_required, etag, list_response, normalize_body, render};
use crate::directory::{self, offboarding};
use crate::ids::Subject;
use crate::store::humans::HumanRecord;
use crate::store::scim::ScimRecord;
use crate::store::{Store, Tx};

const KIND: ResourceKind = ResourceKind::User;
const DEPROVISIONED: &str = "deprovisioned by the identity provider (SCIM)";

/// Who is calling and where the SCIM base URL is.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub store: &'a Store,
    /// `{issuer}/scim/v2`.
    pub base: &'a str,
    pub now_ms: i64,
    /// `scim-token:ID`.
    pub actor: &'a str,
    /// What deprovisioning does with the human's agents.
    pub fate: crate::config::AgentFate,
}

/// What the human's record takes from a User document.
struct HumanFields {
    email: Option<String>,
    name: String,
    title: String,
    department: String,
    /// The SCIM id of the manager's User.
    manager_id: Option<String>,
    active: bool,
}

fn text<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a str> {
    v?.get(key)?.as_str().filter(|s| !s.trim().is_empty())
}

fn fields_of(doc: &Map<String, Value>) -> HumanFields {
    let user_name = doc
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let emails = doc.get("emails").and_then(Value::as_array);
    let email = emails
        .and_then(|e| {
            e.iter()
                .find(|m| m.get("primary") == Some(&Value::Bool(true)))
                .or_else(|| e.first())
        })
        .and_then(|m| m.get("value"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| user_name.contains('@').then(|| user_name.to_owned()));
    let name_obj = doc.get("name");
    let name = doc
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| text(name_obj, "formatted").map(str::to_owned))
        .or_else(|| {
            let parts: Vec<&str> = ["givenName", "familyName"]
                .iter()
                .filter_map(|k| text(name_obj, k))
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
        .unwrap_or_else(|| user_name.to_owned());
    let enterprise = doc.get(schema::ENTERPRISE);
    let manager = enterprise.and_then(|e| e.get("manager"));
    let manager_id = text(manager, "value").map(str::to_owned).or_else(|| {
        text(manager, "$ref")
            .and_then(|r| r.rsplit('/').next())
            .map(str::to_owned)
    });
    HumanFields {
        email,
        name,
        title: doc
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        department: text(enterprise, "department")
            .unwrap_or_default()
            .to_owned(),
        manager_id,
        active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
    }
}

fn name_key(doc: &Map<String, Value>) -> String {
    doc.get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase()
}

/// The human's record with `f` applied (e-mail falls back to one that cannot collide).
async fn apply_fields(
    caller: Caller<'_>,
    mut human: HumanRecord,
    f: &HumanFields,
) -> Result<HumanRecord, ScimError> {
    human.email = f
        .email
        .clone()
        .unwrap_or_else(|| format!("{}@scim.invalid", human.subject));
    directory::check_email(&human.email)?;
    human.name = f.name.clone();
    directory::check_name(&human.name)?;
    directory::check_text("title", &f.title, 200)?;
    directory::check_text("department", &f.department, 200)?;
    human.title = f.title.clone();
    human.department = f.department.clone();
    human.manager = match &f.manager_id {
        Some(id) => caller
            .store
            .scim_resource(KIND.name(), id)
            .await?
            .map(|m| Subject::new(m.target))
            .filter(|m| *m != human.subject),
        None => None,
    };
    Ok(human)
}

fn conflict(e: crate::store::StoreError) -> ScimError {
    match e {
        crate::store::StoreError::Conflict => {
            ScimError::uniqueness("a user with this userName or e-mail exists".into())
        }
        other => other.into(),
    }
}

pub async fn create(caller: Caller<'_>, body: &Value) -> Result<Value, ScimError> {
    let (external_id, doc) = normalize_body(KIND, body)?;
    let key = name_key(&doc);
    let store = caller.store;
    let all = store.scim_resources(KIND.name()).await?;
    if all.iter().any(|r| r.name_key == key) {
        return Err(ScimError::uniqueness(format!("userName {key:?} is taken")));
    }
    let f = fields_of(&doc);
    let user_name = doc
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let existing = unprovisioned_human(store, &all, user_name, f.email.as_deref()).await?;
    let id = countersign_jose::random_b64url(16);
    let mut tx = store.begin().await?;
    let was_active = existing.as_ref().map(|h| h.active);
    let human = match existing {
        Some(cached) => take_over(caller, &mut tx, cached, &f).await?,
        None => {
            let subject = if directory::check_identifier("subject", user_name).is_ok()
                && store.human(user_name).await?.is_none()
            {
                user_name.to_owned()
            } else {
                id.clone()
            };
            register(caller, &mut tx, subject, &f).await?
        }
    };
    set_active(
        caller,
        &mut tx,
        &human.subject,
        was_active.unwrap_or(true),
        f.active,
    )
    .await?;
    let record = ScimRecord {
        id,
        resource_type: KIND.name().into(),
        name_key: key,
        external_id,
        target: human.subject.to_string(),
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

/// A human registered before provisioning and not provisioned yet, by user name or
/// e-mail: the new User takes them over.
async fn unprovisioned_human(
    store: &Store,
    provisioned: &[ScimRecord],
    user_name: &str,
    email: Option<&str>,
) -> Result<Option<HumanRecord>, ScimError> {
    for hint in [Some(user_name), email].into_iter().flatten() {
        if let Some(h) = store.human_by_hint(hint).await?
            && !provisioned.iter().any(|r| r.target == h.subject)
        {
            return Ok(Some(h));
        }
    }
    Ok(None)
}

/// Updates the human a new User takes over with its fields.
async fn take_over(
    caller: Caller<'_>,
    tx: &mut Tx<'_>,
    cached: HumanRecord,
    f: &HumanFields,
) -> Result<HumanRecord, ScimError> {
    let store = caller.store;
    // What the trail records as changed is read in the transaction.
    let old = store.human_in(tx, &cached.subject).await?.unwrap_or(cached);
    let h = apply_fields(caller, old.clone(), f).await?;
    directory::update_human_in(store, tx, caller.now_ms, caller.actor, &old, &h)
        .await
        .map_err(conflict)?;
    Ok(h)
}

/// Registers the human a new User provisions, as `subject`.
async fn register(
    caller: Caller<'_>,
    tx: &mut Tx<'_>,
    subject: String,
    f: &HumanFields,
) -> Result<HumanRecord, ScimError> {
    let h = HumanRecord {
        subject: Subject::new(subject),
        email: String::new(),
        name: String::new(),
        active: true,
        user_code_hash: None,
        created_at: caller.now_ms,
        department: String::new(),
        title: String::new(),
        role: String::new(),
        manager: None,
    };
    let h = apply_fields(caller, h, f).await?;
    directory::insert_human_in(caller.store, tx, caller.now_ms, caller.actor, &h)
        .await
        .map_err(conflict)?;
    Ok(h)
}

/// Moves the human from `was` to `now` active: deactivation offboards them.
async fn set_active(
    caller: Caller<'_>,
    tx: &mut Tx<'_>,
    subject: &str,
    was: bool,
    now: bool,
) -> Result<(), ScimError> {
    match (was, now) {
        (true, false) => {
            offboarding::offboard_in(
                caller.store,
                tx,
                caller.now_ms,
                subject,
                DEPROVISIONED,
                caller.actor,
                caller.fate,
            )
            .await?;
        }
        (false, true) => {
            offboarding::reactivate_in(caller.store, tx, caller.now_ms, subject, caller.actor)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

async fn load(caller: Caller<'_>, id: &str) -> Result<ScimRecord, ScimError> {
    caller
        .store
        .scim_resource(KIND.name(), id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no User {id:?}")))
}

fn check_version(record: &ScimRecord, if_match: Option<&str>) -> Result<(), ScimError> {
    match if_match {
        Some(tag) if tag.trim() != "*" && tag.trim() != etag(record.version) => {
            Err(ScimError::precondition_failed(format!(
                "the User is at version {}",
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

/// Writes the new document and what it changes of the human, in one transaction.
async fn store_doc(
    caller: Caller<'_>,
    record: ScimRecord,
    external_id: Option<String>,
    doc: Map<String, Value>,
) -> Result<Value, ScimError> {
    let store = caller.store;
    let key = name_key(&doc);
    if key != record.name_key
        && store
            .scim_resources(KIND.name())
            .await?
            .iter()
            .any(|r| r.name_key == key)
    {
        return Err(ScimError::uniqueness(format!("userName {key:?} is taken")));
    }
    let mut tx = store.begin().await?;
    let old = store
        .human_in(&mut tx, &record.target)
        .await?
        .ok_or_else(|| {
            ScimError::not_found(format!("the human of User {:?} is gone", record.id))
        })?;
    let f = fields_of(&doc);
    let was_active = old.active;
    let human = apply_fields(caller, old.clone(), &f).await?;
    directory::update_human_in(store, &mut tx, caller.now_ms, caller.actor, &old, &human)
        .await
        .map_err(conflict)?;
    set_active(caller, &mut tx, &human.subject, was_active, f.active).await?;
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
            "the User changed meanwhile; fetch it and retry".into(),
        ));
    }
    tx.commit().await?;
    store.forget_directory_cache();
    Ok(render(KIND, caller.base, &updated))
}

/// Deletes the User and offboards its human (who stays, inactive, for the audit trail);
/// the User leaves every provisioned group.
pub async fn delete(caller: Caller<'_>, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
    let store = caller.store;
    let record = load(caller, id).await?;
    check_version(&record, if_match)?;
    let human = store.human(&record.target).await?;
    let mut tx = store.begin().await?;
    if human.is_some_and(|h| h.active) {
        offboarding::offboard_in(
            store,
            &mut tx,
            caller.now_ms,
            &record.target,
            DEPROVISIONED,
            caller.actor,
            caller.fate,
        )
        .await?;
    }
    super::groups::forget_member(caller, &mut tx, id).await?;
    store.delete_scim_resource(&mut tx, KIND.name(), id).await?;
    tx.commit().await?;
    store.forget_directory_cache();
    Ok(())
}
