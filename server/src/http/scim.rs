//! `/scim/v2`: the SCIM 2.0 protocol endpoints (RFC 7644) over [`crate::scim`]. Bodies
//! are `application/scim+json` (plain JSON accepted); every error is a SCIM error
//! document (a body over `max_body_bytes` too); authentication is a bearer SCIM token
//! (`countersign scim-token create`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use crate::admin::{self, Scope};
use crate::scim::patch::PatchRequest;
use crate::scim::users::Caller;
use crate::scim::{self, ListQuery, ScimError, groups, schema, users};
use crate::state::AppState;

const SCIM_JSON: &str = "application/scim+json";

pub fn router() -> Router<AppState> {
    let v2 = Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema_by_id))
        .route("/Users", get(list_users).post(create_user))
        .route("/Users/.search", post(search_users))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/Groups", get(list_groups).post(create_group))
        .route("/Groups/.search", post(search_groups))
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route("/.search", post(search_all))
        .fallback(|| async {
            ScimResponse::error(ScimError::not_found("no such SCIM endpoint".into()))
        })
        .method_not_allowed_fallback(|| async {
            ScimResponse::error(ScimError {
                status: 405,
                scim_type: None,
                detail: "method not allowed on this endpoint".into(),
            })
        });
    Router::new().nest("/scim/v2", v2)
}

/// A SCIM response: JSON body, `application/scim+json`, optional ETag and Location.
pub struct ScimResponse {
    status: StatusCode,
    body: Option<Value>,
    location: Option<String>,
    etag: Option<String>,
}

impl ScimResponse {
    fn ok(body: Value) -> Self {
        let etag = body["meta"]["version"].as_str().map(str::to_owned);
        Self {
            status: StatusCode::OK,
            body: Some(body),
            location: None,
            etag,
        }
    }

    fn created(body: Value) -> Self {
        let location = body["meta"]["location"].as_str().map(str::to_owned);
        Self {
            status: StatusCode::CREATED,
            location,
            ..Self::ok(body)
        }
    }

    fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: None,
            location: None,
            etag: None,
        }
    }

    fn error(e: ScimError) -> Self {
        Self {
            status: StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            body: Some(e.body()),
            location: None,
            etag: None,
        }
    }
}

impl IntoResponse for ScimResponse {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => (self.status, body.to_string()).into_response(),
            None => self.status.into_response(),
        };
        let headers = response.headers_mut();
        if self.status != StatusCode::NO_CONTENT {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        for (name, value) in [(header::LOCATION, self.location), (header::ETAG, self.etag)] {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(name, v);
            }
        }
        response
    }
}

impl From<ScimError> for ScimResponse {
    fn from(e: ScimError) -> Self {
        Self::error(e)
    }
}

type Answer = Result<ScimResponse, ScimResponse>;

/// Checks the bearer SCIM token; returns the actor to record.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, ScimResponse> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(presented) = presented else {
        return Err(ScimError::unauthorized().into());
    };
    match admin::verify_key(&state.store, presented, Scope::Scim, state.now_ms()).await {
        Ok(Some(key)) => Ok(Scope::Scim.subject(&key.id)),
        Ok(None) => Err(ScimError::unauthorized().into()),
        Err(e) => Err(ScimError::from(e).into()),
    }
}

fn base(state: &AppState) -> String {
    format!("{}/scim/v2", state.issuer.trim_end_matches('/'))
}

/// The authenticated actor and the SCIM base URL, from which a [`Caller`] borrows.
struct Context {
    actor: String,
    base: String,
    now_ms: i64,
}

async fn context(state: &AppState, headers: &HeaderMap) -> Result<Context, ScimResponse> {
    Ok(Context {
        actor: authenticate(state, headers).await?,
        base: base(state),
        now_ms: state.now_ms(),
    })
}

fn caller<'a>(state: &'a AppState, ctx: &'a Context) -> Caller<'a> {
    Caller {
        store: &state.store,
        base: &ctx.base,
        now_ms: ctx.now_ms,
        actor: &ctx.actor,
        fate: state.config.offboarding.agents,
    }
}

/// A body axum could not read: over `max_body_bytes` (413), or cut short.
fn unread(rejection: BytesRejection) -> ScimError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ScimError::too_large("the body is larger than this server accepts".into())
    } else {
        ScimError::invalid_syntax(format!("the body could not be read: {rejection}"))
    }
}

/// A query string that is not `name=value` pairs of text (or repeats a parameter).
fn bad_query(rejection: QueryRejection) -> ScimError {
    ScimError::invalid_value(format!("the query string: {}", rejection.body_text()))
}

/// The body as JSON. serde_json refuses nesting past 128 levels, and nothing after it
/// recurses further than the schemas do (attributes and their sub-attributes).
fn json_body(body: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(body)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not JSON: {e}")))
}

fn patch_body(body: &Bytes) -> Result<PatchRequest, ScimError> {
    serde_json::from_slice(body)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not a PatchOp: {e}")))
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The list parameters as sent (strings: bad numbers get a SCIM error, not a 400 from
/// the extractor).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    filter: Option<String>,
    start_index: Option<Value>,
    count: Option<Value>,
    attributes: Option<String>,
    excluded_attributes: Option<String>,
}

fn number(v: Option<&Value>, name: &str) -> Result<Option<i64>, ScimError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| ScimError::invalid_value(format!("{name} must be an integer"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer"))),
        Some(_) => Err(ScimError::invalid_value(format!(
            "{name} must be an integer"
        ))),
    }
}

fn list_query(p: &ListParams) -> Result<ListQuery, ScimError> {
    Ok(ListQuery {
        filter: p.filter.clone(),
        start_index: number(p.start_index.as_ref(), "startIndex")?,
        count: number(p.count.as_ref(), "count")?,
        attributes: p.attributes.clone(),
        excluded_attributes: p.excluded_attributes.clone(),
    })
}

/// A POST `.search` body (RFC 7644 §3.4.3).
fn search_query(body: &Bytes) -> Result<ListQuery, ScimError> {
    let v = json_body(body)?;
    let list = |key: &str| -> Option<String> {
        match scim::filter::get_ci(&v, key) {
            Some(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    };
    Ok(ListQuery {
        filter: scim::filter::get_ci(&v, "filter")
            .and_then(Value::as_str)
            .map(str::to_owned),
        start_index: number(scim::filter::get_ci(&v, "startIndex"), "startIndex")?,
        count: number(scim::filter::get_ci(&v, "count"), "count")?,
        attributes: list("attributes"),
        excluded_attributes: list("excludedAttributes"),
    })
}

/// `attributes` / `excludedAttributes` on a single-resource answer.
fn projected(resource: Value, p: &ListParams) -> ScimResponse {
    let etag = resource["meta"]["version"].as_str().map(str::to_owned);
    let body = scim::project(
        resource,
        p.attributes.as_deref(),
        p.excluded_attributes.as_deref(),
    );
    ScimResponse {
        etag,
        ..ScimResponse::ok(body)
    }
}

async fn service_provider_config(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    authenticate(&state, &headers).await?;
    Ok(ScimResponse::ok(schema::service_provider_config(
        &base(&state),
        scim::MAX_RESULTS,
    )))
}

fn discovery_list(resources: Vec<Value>) -> ScimResponse {
    let n = resources.len();
    ScimResponse::ok(serde_json::json!({
        "schemas": [schema::LIST_RESPONSE],
        "totalResults": n,
        "startIndex": 1,
        "itemsPerPage": n,
        "Resources": resources,
    }))
}

async fn resource_types(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    authenticate(&state, &headers).await?;
    Ok(discovery_list(schema::resource_types(&base(&state))))
}

async fn resource_type(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    authenticate(&state, &headers).await?;
    schema::resource_types(&base(&state))
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .map(ScimResponse::ok)
        .ok_or_else(|| ScimError::not_found(format!("no resource type {id:?}")).into())
}

async fn schemas(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    authenticate(&state, &headers).await?;
    Ok(discovery_list(schema::schemas(&base(&state))))
}

async fn schema_by_id(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    authenticate(&state, &headers).await?;
    schema::schemas(&base(&state))
        .into_iter()
        .find(|s| {
            s["id"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(&id))
        })
        .map(ScimResponse::ok)
        .ok_or_else(|| ScimError::not_found(format!("no schema {id:?}")).into())
}

async fn search_all(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    authenticate(&state, &headers).await?;
    Err(ScimError {
        status: 501,
        scim_type: None,
        detail: "searching several resource types at once is not supported; POST /Users/.search or /Groups/.search".into(),
    }
    .into())
}

/// One resource type's CRUD handlers, over its service module.
macro_rules! resource_handlers {
    ($service:ident, $list:ident, $search:ident, $create:ident, $get:ident, $replace:ident, $patch:ident, $delete:ident) => {
        async fn $list(
            State(state): State<AppState>,
            headers: HeaderMap,
            params: Result<Query<ListParams>, QueryRejection>,
        ) -> Answer {
            let ctx = context(&state, &headers).await?;
            let c = caller(&state, &ctx);
            let answer: Result<ScimResponse, ScimError> = async {
                let Query(params) = params.map_err(bad_query)?;
                let query = list_query(&params)?;
                Ok(ScimResponse::ok($service::list(c, &query).await?))
            }
            .await;
            answer.map_err(ScimResponse::from)
        }

        async fn $search(
            State(state): State<AppState>,
            headers: HeaderMap,
            body: Result<Bytes, BytesRejection>,
        ) -> Answer {
            let ctx = context(&state, &headers).await?;
            let c = caller(&state, &ctx);
            let answer: Result<ScimResponse, ScimError> = async {
                let query = search_query(&body.map_err(unread)?)?;
                Ok(ScimResponse::ok($service::list(c, &query).await?))
            }
            .await;
            answer.map_err(ScimResponse::from)
        }

        async fn $create(
            State(state): State<AppState>,
            headers: HeaderMap,
            body: Result<Bytes, BytesRejection>,
        ) -> Answer {
            let ctx = context(&state, &headers).await?;
            let c = caller(&state, &ctx);
            let answer: Result<ScimResponse, ScimError> = async {
                let body = json_body(&body.map_err(unread)?)?;
                Ok(ScimResponse::created($service::create(c, &body).await?))
            }
            .await;
            answer.map_err(ScimResponse::from)
        }

        async fn $get(
            State(state): State<AppState>,
            headers: HeaderMap,
            Path(id): Path<String>,
            params: Result<Query<ListParams>, QueryRejection>,
        ) -> Answer {
            let ctx = context(&state, &headers).await?;
            let c = caller(&state, &ctx);
            let answer: Result<ScimResponse, ScimError> = async {
                let Query(params) = params.map_err(bad_query)?;
                Ok(projected($service::get(c, &id).await?, &params))
            }
            .await;
            answer.map_err(ScimResponse::from)
        }

        async fn $replace(
            State(state): State<AppState>,
            headers: HeaderMap,
            Path(id): Path<String>,
            body: Result<Bytes, BytesRejection>,
        ) -> Answer {
            let tag = if_match(&headers);
            let ctx = context(&state, &headers).await?;
            let c = caller(&state, &ctx);
            let answer: Result<ScimResponse, ScimError> = async {
                let body = json_body(&body.map_err(unread)?)?;
                Ok(ScimResponse::ok(
                    $service::replace(c, &id, &body, tag.as_deref()).await?,
                ))
            }
            .await;
            answer.map_err(ScimResponse::from)
        }

        async fn $patch(
            State(state): State<AppState>,
            headers: HeaderMap,
            Path(id): Path<String>,
            body: Result<Bytes, BytesRejection>,
        ) -> Answer {
            let tag = if_match(&headers);
            let ctx = context(&state, &headers).await?;
            let c = caller(&state, &ctx);
            let answer: Result<ScimResponse, ScimError> = async {
                let request = patch_body(&body.map_err(unread)?)?;
                Ok(ScimResponse::ok(
                    $service::patch(c, &id, &request, tag.as_deref()).await?,
                ))
            }
            .await;
            answer.map_err(ScimResponse::from)
        }

        async fn $delete(
            State(state): State<AppState>,
            headers: HeaderMap,
            Path(id): Path<String>,
        ) -> Answer {
            let tag = if_match(&headers);
            let ctx = context(&state, &headers).await?;
            let c = caller(&state, &ctx);
            let answer: Result<ScimResponse, ScimError> = async {
                $service::delete(c, &id, tag.as_deref()).await?;
                Ok(ScimResponse::no_content())
            }
            .await;
            answer.map_err(ScimResponse::from)
        }
    };
}

resource_handlers!(
    users,
    list_users,
    search_users,
    create_user,
    get_user,
    replace_user,
    patch_user,
    delete_user
);
resource_handlers!(
    groups,
    list_groups,
    search_groups,
    create_group,
    get_group,
    replace_group,
    patch_group,
    delete_group
);
