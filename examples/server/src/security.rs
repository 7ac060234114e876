//! The Security panel's API: the user's authenticator apps (list, add, rename, remove, replace
//! with a new phone) and the browsers they trust (list, revoke). As everywhere in the demo, each
//! decision is the crate's service's (which code may change what, the last authenticator, the
//! limits); the handlers check the session and map the service's outcome to a response.
//!
//! Ids travel in the JSON body, not in the path: one extractor validates every field and turns
//! a missing or mistyped one into a 400 that names it.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use twofactor::service::{
    AddAuthenticatorOutcome, RemoveAuthenticatorOutcome, ScheduledChange, ScheduledChangeKind,
};

use crate::api::{
    AppState, Authenticated, SecretString, WRONG_CODE, enrolment_body, not_a_code,
    scheduled_response, too_many,
};
use crate::db::Backend;
use crate::error::{ApiError, Json};

/// Longest id looked at: the service's authenticator ids are 22 characters, device ids 32.
const MAX_ID_LEN: usize = 64;

const UNKNOWN_AUTHENTICATOR: ApiError =
    ApiError::UnknownId("you have no authenticator with this id; reload the page");
const UNKNOWN_DEVICE: ApiError =
    ApiError::UnknownId("you have no trusted browser with this id; reload the page");

#[derive(Deserialize)]
pub struct AddBody {
    name: String,
    code: SecretString,
}

#[derive(Deserialize)]
pub struct ReplaceBody {
    id: String,
    name: String,
    code: SecretString,
}

#[derive(Deserialize)]
pub struct RenameBody {
    id: String,
    name: String,
}

#[derive(Deserialize)]
pub struct RemoveBody {
    id: String,
    code: SecretString,
}

#[derive(Deserialize)]
pub struct IdBody {
    id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthenticatorView {
    id: String,
    name: String,
    created_at: u64,
    last_used_at: Option<u64>,
    /// Until when it is new: its codes can then only schedule taking a factor away.
    new_until: Option<u64>,
}

/// A scheduled change as the panel lists it: `kind` is `remove_authenticator` (with
/// `authenticator`), `regenerate_backup_codes` or `disable`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeView {
    id: String,
    kind: &'static str,
    authenticator: Option<String>,
    requested_at: u64,
    not_before: u64,
}

impl ChangeView {
    fn new(change: ScheduledChange) -> Self {
        let (kind, authenticator) = match change.kind {
            ScheduledChangeKind::RemoveAuthenticator { authenticator } => {
                ("remove_authenticator", Some(authenticator))
            }
            ScheduledChangeKind::RegenerateBackupCodes => ("regenerate_backup_codes", None),
            ScheduledChangeKind::Disable => ("disable", None),
            // A kind added later still shows, without claiming to know what it does.
            _ => ("other", None),
        };
        Self {
            id: change.id,
            kind,
            authenticator,
            requested_at: change.requested_at,
            not_before: change.not_before,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeviceView {
    id: String,
    label: String,
    created_at: u64,
    last_used_at: u64,
    trusted_until: u64,
    /// Whether it is the browser that asks (its device cookie is this device's token).
    this_browser: bool,
}

/// An id from a request, if it could be one (anything longer is nobody's).
fn plausible_id(id: &str) -> Result<&str, ApiError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(UNKNOWN_AUTHENTICATOR);
    }
    Ok(id)
}

/// `GET /api/2fa/authenticators`: `{authenticators: [{id, name, createdAt, lastUsedAt,
/// newUntil}], scheduledChanges: [{id, kind, authenticator, requestedAt, notBefore}], applied,
/// max}`, oldest first; names and times only, never a secret. Due scheduled changes take effect
/// first (`applied` lists them), so the page shows the factors as they now are.
pub async fn list_authenticators<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    let applied: Vec<ChangeView> = state
        .twofa
        .complete_scheduled_changes(&auth.user.id)
        .await?
        .into_iter()
        .map(ChangeView::new)
        .collect();
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "scheduled changes applied");
    }
    let changes: Vec<ChangeView> = state
        .twofa
        .scheduled_changes(&auth.user.id)
        .await?
        .into_iter()
        .map(ChangeView::new)
        .collect();
    let list: Vec<AuthenticatorView> = state
        .twofa
        .authenticators(&auth.user.id)
        .await?
        .into_iter()
        .map(|a| AuthenticatorView {
            id: a.id,
            name: a.name,
            created_at: a.created_at,
            last_used_at: a.last_used_at,
            new_until: a.new_until,
        })
        .collect();
    Ok(axum::Json(serde_json::json!({
        "authenticators": list,
        "scheduledChanges": changes,
        "applied": applied,
        "max": state.twofa.config().max_authenticators,
    }))
    .into_response())
}

/// What `add` and `replace` answer: the new app's QR code, or why not. A replacement asked for
/// with a new factor also carries `scheduledRemoval: {changeId, notBefore}`: the old app then
/// goes at that time, not when the new one is confirmed.
fn started(outcome: AddAuthenticatorOutcome) -> Result<Response, ApiError> {
    match outcome {
        AddAuthenticatorOutcome::Started(enrolment) => {
            let mut body = enrolment_body(&enrolment)?;
            if let Some(change) = enrolment.scheduled_removal() {
                body["scheduledRemoval"] = serde_json::json!({
                    "changeId": change.id,
                    "notBefore": change.not_before,
                });
            }
            Ok(axum::Json(body).into_response())
        }
        AddAuthenticatorOutcome::Rejected => Err(WRONG_CODE),
        AddAuthenticatorOutcome::Malformed { digits } => Err(not_a_code(digits)),
        AddAuthenticatorOutcome::RateLimited { retry_after_secs } => {
            Err(too_many(retry_after_secs))
        }
        AddAuthenticatorOutcome::NotEnabled => Err(ApiError::Conflict(
            "two-factor authentication is off: turn it on first",
        )),
        AddAuthenticatorOutcome::LimitReached => Err(ApiError::Conflict(
            "you have the most authenticators allowed: remove or replace one first",
        )),
        AddAuthenticatorOutcome::NotFound => Err(UNKNOWN_AUTHENTICATOR),
        // Fail closed on an outcome added later.
        _ => Err(ApiError::Conflict("the authenticator cannot be added now")),
    }
}

/// `POST /api/2fa/authenticators/add {name, code}`: a code from an app the user already has (or
/// a backup code) starts another one; confirm it with `/api/2fa/authenticators/confirm`.
pub async fn add_authenticator<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
    Json(body): Json<AddBody>,
) -> Result<Response, ApiError> {
    let outcome = state
        .twofa
        .add_authenticator(&auth.user.id, &body.name, &auth.user.email, &body.code)
        .await?;
    started(outcome)
}

/// `POST /api/2fa/authenticators/replace {id, name, code}`: a new phone. The code may come from
/// the old phone or be a backup code; once the new app's code confirms it, the old one is gone
/// in the same step (until then it keeps working). With a code from a new factor the old one's
/// removal is scheduled instead (`scheduledRemoval` in the answer).
pub async fn replace_authenticator<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
    Json(body): Json<ReplaceBody>,
) -> Result<Response, ApiError> {
    let id = plausible_id(&body.id)?;
    let outcome = state
        .twofa
        .replace_authenticator(&auth.user.id, id, &body.name, &auth.user.email, &body.code)
        .await?;
    if matches!(outcome, AddAuthenticatorOutcome::LimitReached) {
        // Only a code from a new factor gets here: the old app would go later, the new one now.
        return Err(ApiError::Conflict(
            "you have the most authenticators allowed, and a backup code or a new app cannot \
             replace one at once: use a code from an app you have had longer, or remove one first",
        ));
    }
    started(outcome)
}

/// `POST /api/2fa/authenticators/rename {id, name}`.
pub async fn rename_authenticator<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
    Json(body): Json<RenameBody>,
) -> Result<Response, ApiError> {
    let id = plausible_id(&body.id)?;
    if !state
        .twofa
        .rename_authenticator(&auth.user.id, id, &body.name)
        .await?
    {
        return Err(UNKNOWN_AUTHENTICATOR);
    }
    Ok(axum::Json(serde_json::json!({ "renamed": true })).into_response())
}

/// `POST /api/2fa/authenticators/remove {id, code}`: the code must come from a factor that
/// stays (another app or a backup code); the last app is only removed by turning 2FA off. A code
/// from a new factor (a backup code, an app added within the change delay) only schedules the
/// removal: 202 with `notBefore`.
pub async fn remove_authenticator<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
    Json(body): Json<RemoveBody>,
) -> Result<Response, ApiError> {
    let id = plausible_id(&body.id)?;
    match state
        .twofa
        .remove_authenticator(&auth.user.id, id, &body.code)
        .await?
    {
        RemoveAuthenticatorOutcome::Removed => {
            tracing::info!("authenticator removed");
            Ok(axum::Json(serde_json::json!({ "removed": true })).into_response())
        }
        RemoveAuthenticatorOutcome::Rejected => Err(ApiError::WrongCode(
            "that code was not accepted: it is wrong, already used, or comes from the app you \
             are removing; use another app or a backup code",
        )),
        RemoveAuthenticatorOutcome::Malformed { digits } => Err(not_a_code(digits)),
        RemoveAuthenticatorOutcome::RateLimited { retry_after_secs } => {
            Err(too_many(retry_after_secs))
        }
        RemoveAuthenticatorOutcome::LastAuthenticator => Err(ApiError::Conflict(
            "this is your only authenticator: replace it, or turn two-factor authentication off",
        )),
        RemoveAuthenticatorOutcome::NotFound => Err(UNKNOWN_AUTHENTICATOR),
        RemoveAuthenticatorOutcome::Scheduled { not_before } => {
            tracing::info!(not_before, "authenticator removal scheduled");
            // The change's id, for the page to match it with its listing.
            let change = state
                .twofa
                .scheduled_changes(&auth.user.id)
                .await?
                .into_iter()
                .find(|c| {
                    matches!(&c.kind, ScheduledChangeKind::RemoveAuthenticator { authenticator }
                        if authenticator == id)
                })
                .map(|c| c.id);
            Ok(scheduled_response(
                change.as_deref(),
                not_before,
                "the app is removed at notBefore (until then it keeps working); a code from an \
                 app you have had longer, or a browser you trusted before, cancels the removal",
                serde_json::json!({ "removed": false }),
            ))
        }
        _ => Err(ApiError::Conflict(
            "the authenticator cannot be removed now",
        )),
    }
}

/// `GET /api/2fa/trusted-devices`: `{devices: [{id, label, createdAt, lastUsedAt,
/// trustedUntil}]}`, the browsers that skip the code now, oldest first (never a token).
pub async fn list_devices<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let cookie = crate::login::device_cookie(&headers, &auth.user.email);
    let list: Vec<DeviceView> = state
        .twofa
        .trusted_devices(&auth.user.id)
        .await?
        .into_iter()
        .map(|d| DeviceView {
            this_browser: cookie.as_ref().is_some_and(|c| d.is_token(c)),
            id: d.id,
            label: d.label,
            created_at: d.created_at,
            last_used_at: d.last_used_at,
            trusted_until: d.trusted_until,
        })
        .collect();
    Ok(axum::Json(serde_json::json!({ "devices": list })).into_response())
}

/// `POST /api/2fa/trusted-devices/revoke {id}`: that browser's token is deleted, so its next
/// login asks for a code (and it draws on the account's password budget again).
pub async fn revoke_device<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
    Json(body): Json<IdBody>,
) -> Result<Response, ApiError> {
    if body.id.is_empty() || body.id.len() > MAX_ID_LEN {
        return Err(UNKNOWN_DEVICE);
    }
    if !state
        .twofa
        .revoke_trusted_device(&auth.user.id, &body.id)
        .await?
    {
        return Err(UNKNOWN_DEVICE);
    }
    tracing::info!("trusted browser revoked");
    Ok(axum::Json(serde_json::json!({ "revoked": true })).into_response())
}
