//! The wallet API (`/wallet/v1`): enrollment, and for enrolled devices the pending
//! requests, the signed request object and the decision. Every call after enrollment is
//! authenticated by a `DPoP` proof signed with the device key (RFC 9449 shape: `htm`,
//! `htu`, `iat`, single-use `jti`); the wallet holds no bearer secret.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::convert::Infallible;

use countersign_shared::approval::{
    BeginEnrollment, CompleteEnrollment, DecisionRecorded, DecisionRequest, DisplayedRequest,
    EnrolledDevice, EnrollmentChallenge, PendingRequest, WALLET_PROOF_HEADER,
};

use super::admin::ApiJson;
use super::error::ProblemResponse;
use crate::approvals::{ApprovalError, enrollment, wallet};
use crate::oidc::dpop::{self, DpopError};
use crate::paths;
use crate::state::AppState;
use crate::store::devices::DeviceRecord;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::WALLET_ENROLLMENTS, post(begin_enrollment))
        .route(paths::WALLET_ENROLLMENT_COMPLETE, post(complete_enrollment))
        .route(paths::WALLET_REQUESTS, get(pending))
        .route("/wallet/v1/requests/{id}/display", post(display))
        .route("/wallet/v1/requests/{id}/decision", post(decide))
        .route("/wallet/v1/events", get(events))
        .route(paths::WALLET_DEVICE_REMOVE, post(remove_device))
}

fn single_proof(headers: &HeaderMap) -> Result<Option<&str>, ApprovalError> {
    let mut proofs = headers.get_all(WALLET_PROOF_HEADER).iter();
    match (proofs.next(), proofs.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(ApprovalError::Unauthenticated(
            "more than one DPoP header".into(),
        )),
        (Some(v), None) => v
            .to_str()
            .map(Some)
            .map_err(|_| ApprovalError::Unauthenticated("the DPoP header is not ASCII".into())),
    }
}

/// An enrolled, enabled device that proved possession of its key for this call.
pub struct WalletDevice(pub DeviceRecord);

impl FromRequestParts<AppState> for WalletDevice {
    type Rejection = ProblemResponse;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let proof = single_proof(&parts.headers)?;
        let url = state.endpoint(parts.uri.path());
        let device =
            wallet::authenticate(&state.approvals, proof, parts.method.as_str(), &url).await?;
        Ok(WalletDevice(device))
    }
}

/// Starts enrolling a wallet with an invitation: returns passkey creation options.
#[utoipa::path(post, path = "/wallet/v1/enrollments", tag = "wallet", request_body = BeginEnrollment,
    responses((status = 200, body = EnrollmentChallenge),
        (status = 403, description = "invitation unknown, expired or used", body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many requests from this address (Retry-After)", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn begin_enrollment(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BeginEnrollment>,
) -> Result<Json<EnrollmentChallenge>, ProblemResponse> {
    Ok(Json(enrollment::begin(&state.approvals, &body).await?))
}

/// Completes enrollment: the passkey registration, the device key (proven by the `DPoP`
/// proof it signs) and push details.
#[utoipa::path(post, path = "/wallet/v1/enrollments/complete", tag = "wallet", request_body = CompleteEnrollment,
    params(("DPoP" = String, Header, description = "proof signed by the device key being enrolled")),
    responses((status = 201, body = EnrolledDevice),
        (status = 401, description = "missing or invalid proof", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "invitation unknown, expired or used", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "device already enrolled", body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, description = "invalid details or the passkey ceremony failed", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many requests from this address (Retry-After)", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn complete_enrollment(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CompleteEnrollment>,
) -> Result<Response, ProblemResponse> {
    let proof = single_proof(&headers)?.ok_or_else(|| {
        ApprovalError::Unauthenticated("a DPoP proof signed by the device key is required".into())
    })?;
    let url = state.endpoint(paths::WALLET_ENROLLMENT_COMPLETE);
    let checked =
        dpop::check_proof(proof, "POST", &url, state.dpop_window()).map_err(|e| match e {
            DpopError::Invalid(m) => ApprovalError::Unauthenticated(format!("device proof: {m}")),
            DpopError::Store(s) => ApprovalError::Store(s),
        })?;
    let enrolled = enrollment::complete(&state.approvals, &body, &checked).await?;
    Ok((StatusCode::CREATED, Json(enrolled)).into_response())
}

/// Requests waiting for this device's human, newest first.
#[utoipa::path(get, path = "/wallet/v1/requests", tag = "wallet",
    params(("DPoP" = String, Header, description = "proof signed by the device key")),
    responses((status = 200, body = Vec<PendingRequest>),
        (status = 401, description = "missing or invalid device proof", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn pending(
    State(state): State<AppState>,
    WalletDevice(device): WalletDevice,
) -> Result<Json<Vec<PendingRequest>>, ProblemResponse> {
    Ok(Json(wallet::pending(&state.approvals, &device).await?))
}

/// The request as a server-signed request object, with a single-use passkey challenge
/// for this device and this transaction.
#[utoipa::path(post, path = "/wallet/v1/requests/{id}/display", tag = "wallet",
    params(("id" = String, Path), ("DPoP" = String, Header, description = "proof signed by the device key")),
    responses((status = 200, body = DisplayedRequest),
        (status = 401, description = "missing or invalid device proof", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "another human's request", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "already decided or expired", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn display(
    State(state): State<AppState>,
    WalletDevice(device): WalletDevice,
    Path(id): Path<crate::ids::AuthReqId>,
) -> Result<Json<DisplayedRequest>, ProblemResponse> {
    Ok(Json(wallet::display(&state.approvals, &device, &id).await?))
}

/// The human's decision: an approval JWS by the device key carrying the passkey assertion.
#[utoipa::path(post, path = "/wallet/v1/requests/{id}/decision", tag = "wallet", request_body = DecisionRequest,
    params(("id" = String, Path), ("DPoP" = String, Header, description = "proof signed by the device key")),
    responses((status = 200, body = DecisionRecorded),
        (status = 401, description = "missing or invalid device proof", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "another human's request", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "already decided or expired", body = super::error::Problem, content_type = "application/problem+json"),
        super::error::JsonBodyProblems,
        (status = 422, description = "the approval does not verify", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn decide(
    State(state): State<AppState>,
    WalletDevice(device): WalletDevice,
    Path(id): Path<crate::ids::AuthReqId>,
    ApiJson(body): ApiJson<DecisionRequest>,
) -> Result<Json<DecisionRecorded>, ProblemResponse> {
    Ok(Json(
        wallet::decide(&state.approvals, &device, &id, &body.approval).await?,
    ))
}

/// The device removes itself (its owner chose "remove this device" in the wallet): it is
/// disabled as an administrator would, and its proofs and approvals are refused from now
/// on. Repeating it is refused like any call from a disabled device.
#[utoipa::path(post, path = "/wallet/v1/device/remove", tag = "wallet",
    params(("DPoP" = String, Header, description = "proof signed by the device key")),
    responses((status = 200, body = crate::approvals::enrollment::Device),
        (status = 401, description = "missing or invalid device proof, or the device is already removed", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn remove_device(
    State(state): State<AppState>,
    WalletDevice(device): WalletDevice,
) -> Result<Json<crate::approvals::enrollment::Device>, ProblemResponse> {
    let actor = format!("device:{}", device.id);
    Ok(Json(
        enrollment::remove_device(
            &state.approvals,
            &device.id,
            "removed from the wallet by its owner",
            &actor,
        )
        .await?,
    ))
}

/// The live channel: server-sent events for this device's human. `ready` once subscribed;
/// `request` (`{"request_id", "server"}`) for each new request; `resync` when events were
/// missed (list the pending requests again). Comments keep the connection alive.
#[utoipa::path(get, path = "/wallet/v1/events", tag = "wallet",
    params(("DPoP" = String, Header, description = "proof signed by the device key")),
    responses((status = 200, description = "an event stream", content_type = "text/event-stream", body = String),
        (status = 401, description = "missing or invalid device proof", body = super::error::Problem, content_type = "application/problem+json")))]
pub(super) async fn events(
    State(state): State<AppState>,
    WalletDevice(device): WalletDevice,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    use crate::push::live::LiveMessage;
    use futures_util::StreamExt as _;
    use tokio::sync::broadcast::error::RecvError;
    let receiver = state.live.subscribe(&device.subject);
    let ready = Event::default()
        .event("ready")
        .data(serde_json::json!({ "device_id": device.id }).to_string());
    let updates = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(LiveMessage::Request(e)) => Event::default().event("request").data(
                serde_json::json!({ "request_id": e.request_id, "server": e.server }).to_string(),
            ),
            Ok(LiveMessage::Resync) | Err(RecvError::Lagged(_)) => {
                Event::default().event("resync").data("{}")
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), receiver))
    });
    Sse::new(futures_util::stream::once(async { Ok(ready) }).chain(updates))
        .keep_alive(KeepAlive::default())
}
