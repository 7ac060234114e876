//! The JSON API. Passwords and sessions are the application's business (here); every
//! second-factor decision (codes, backup codes, challenges, replay, rate limits) is the crate's
//! service's: each handler maps the service's outcome to a response. Generic over the
//! [`Backend`], instantiated once per database in `main`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use twofactor::rate_limit::RateLimitPolicy;
use twofactor::{
    BackupCode, ConfirmOutcome, DisableOutcome, Enrolment, EnrolmentStart, RegenerateOutcome,
    TwoFactor,
};

use crate::db::{Backend, Db, User};
use crate::error::{ApiError, Json, OptionalJson};
use crate::hashing::Hasher;
use crate::headers::PAGE_CSP;
use crate::login::{Credentials, change_password, check_new_password, login, login_2fa};
use crate::security;

/// How long a session lasts.
pub const SESSION_TTL_SECS: u64 = 12 * 60 * 60;
/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Shared state of every handler.
pub struct AppState<S: Backend> {
    /// Users and sessions.
    pub db: S::Db,
    /// The second factor.
    pub twofa: TwoFactor<S>,
    /// The second factor with the default TOTP parameters (SHA-1, 6 digits, 30 s), when
    /// `twofa` has others: `POST /api/2fa/setup {"defaults": true}` enrols through it.
    pub twofa_defaults: Option<TwoFactor<S>>,
    /// An Argon2id hash of a random password: unknown emails are checked against it so they
    /// take as long as a wrong password.
    pub dummy_hash: String,
    /// Password hashing, at most N at a time.
    pub hasher: Hasher,
    /// The per-address password-guess budget.
    pub address_policy: RateLimitPolicy,
    /// Take the client address from `X-Forwarded-For` (behind a trusted proxy only).
    pub trust_forwarded_for: bool,
}

/// The router: the page, the API, JSON 404/405 fallbacks and the 64 KiB body limit.
pub fn router<S: Backend>(state: Arc<AppState<S>>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/app.js", get(script))
        .route("/app.css", get(stylesheet))
        .route("/api/signup", post(signup::<S>))
        .route("/api/login", post(login::<S>))
        .route("/api/login/2fa", post(login_2fa::<S>))
        .route("/api/logout", post(logout::<S>))
        .route("/api/me", get(me::<S>))
        .route("/api/password", post(change_password::<S>))
        .route("/api/2fa/setup", post(setup::<S>))
        .route("/api/2fa/verify-setup", post(verify_setup::<S>))
        .route("/api/2fa/backup-codes", post(backup_codes::<S>))
        .route("/api/2fa/disable", post(disable::<S>))
        .route(
            "/api/2fa/authenticators",
            get(security::list_authenticators::<S>),
        )
        .route(
            "/api/2fa/authenticators/add",
            post(security::add_authenticator::<S>),
        )
        .route("/api/2fa/authenticators/confirm", post(verify_setup::<S>))
        .route(
            "/api/2fa/authenticators/rename",
            post(security::rename_authenticator::<S>),
        )
        .route(
            "/api/2fa/authenticators/remove",
            post(security::remove_authenticator::<S>),
        )
        .route(
            "/api/2fa/authenticators/replace",
            post(security::replace_authenticator::<S>),
        )
        .route("/api/2fa/trusted-devices", get(security::list_devices::<S>))
        .route(
            "/api/2fa/trusted-devices/revoke",
            post(security::revoke_device::<S>),
        )
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The page; the other security headers come from [`crate::headers`].
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        ],
        include_str!("index.html"),
    )
        .into_response()
}

/// The page's script, a file of its own so the page's CSP needs no `'unsafe-inline'`.
async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("app.js"),
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("app.css"),
    )
        .into_response()
}

/// Current Unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Trims and lower-cases an email and checks it looks like one.
pub fn normalise_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if valid {
        Ok(email)
    } else {
        Err(ApiError::BadRequest("enter a valid email address".into()))
    }
}

fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Issues a session: 256 random bits, base64url; only its SHA-256 is stored. Also returns the
/// account's email (see [`Db::create_session`]).
pub async fn new_session(
    db: &impl Db,
    user_id: &str,
) -> Result<(Zeroizing<String>, Option<String>), ApiError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    crate::random::fill(&mut raw[..]).map_err(|e| ApiError::infra("no OS randomness", &e))?;
    let token = Zeroizing::new(data_encoding::BASE64URL_NOPAD.encode(&raw[..]));
    let email = db
        .create_session(&hash_token(&token), user_id, now() + SESSION_TTL_SECS)
        .await
        .map_err(|e| ApiError::infra("storing a session failed", &e))?;
    Ok((token, email))
}

/// The logged-in user, from `Authorization: Bearer <token>`.
pub struct Authenticated {
    /// Whose session it is.
    pub user: User,
    /// The SHA-256 of the session token.
    pub token_hash: [u8; 32],
}

/// The client's address (see [`crate::guard::client_ip`]).
pub struct ClientAddr(pub IpAddr);

impl<S: Backend> FromRequestParts<Arc<AppState<S>>> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState<S>>,
    ) -> Result<Self, Self::Rejection> {
        // The server is always run with connect info; without it, every client is one address.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
        Ok(Self(crate::guard::client_ip(
            &parts.headers,
            peer,
            state.trust_forwarded_for,
        )))
    }
}

impl<S: Backend> FromRequestParts<Arc<AppState<S>>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState<S>>,
    ) -> Result<Self, Self::Rejection> {
        const NOT_LOGGED_IN: ApiError =
            ApiError::Unauthorized("not logged in, or the session expired");
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(NOT_LOGGED_IN)?;
        let token_hash = hash_token(token);
        let user = state
            .db
            .session_user(&token_hash, now())
            .await
            .map_err(|e| ApiError::infra("reading a session failed", &e))?
            .ok_or(NOT_LOGGED_IN)?;
        Ok(Self { user, token_hash })
    }
}

/// A string from a request body that is a secret (password, code, challenge): zeroized on drop,
/// redacted in `Debug`.
pub struct SecretString(pub Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self(Zeroizing::new(s)))
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl std::ops::Deref for SecretString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

#[derive(Deserialize)]
struct CodeBody {
    code: SecretString,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    email: String,
    two_factor_enabled: bool,
    /// Enabled authenticator apps.
    authenticators: u32,
    backup_codes_remaining: u32,
    /// Failed second factors on the user's budget since this login.
    failures_since_login: u32,
    last_login_at: Option<u64>,
    /// Changes of factors scheduled and not yet in effect.
    scheduled_changes: u32,
}

pub const BAD_CREDENTIALS: ApiError = ApiError::Unauthorized("wrong email or password");
pub const BAD_LOGIN_CODE: ApiError =
    ApiError::Unauthorized("wrong, expired or already used code; log in again if it keeps failing");

async fn signup<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    Json(body): Json<Credentials>,
) -> Result<Response, ApiError> {
    let email = normalise_email(&body.email)?;
    check_new_password(&body.password)?;
    let hash = state.hasher.hash(body.password.0).await?;
    let mut id = [0u8; 16];
    crate::random::fill(&mut id).map_err(|e| ApiError::infra("no OS randomness", &e))?;
    let id = data_encoding::HEXLOWER.encode(&id);
    let created = state
        .db
        .create_user(&id, &email, &hash, now())
        .await
        .map_err(|e| ApiError::infra("creating a user failed", &e))?;
    if !created {
        return Err(ApiError::Conflict(
            "an account with this email already exists",
        ));
    }
    tracing::info!("new account");
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "email": email })),
    )
        .into_response())
}

async fn logout<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    state
        .db
        .delete_session(&auth.token_hash)
        .await
        .map_err(|e| ApiError::infra("deleting a session failed", &e))?;
    Ok(axum::Json(serde_json::json!({ "loggedOut": true })).into_response())
}

async fn me<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
) -> Result<axum::Json<Me>, ApiError> {
    let status = state.twofa.status(&auth.user.id).await?;
    Ok(axum::Json(Me {
        email: auth.user.email,
        two_factor_enabled: status.enabled,
        authenticators: status.authenticators,
        backup_codes_remaining: status.backup_codes_remaining,
        failures_since_login: status.failures_since_login,
        last_login_at: status.last_login_at,
        scheduled_changes: status.scheduled_changes,
    }))
}

/// The optional body of `POST /api/2fa/setup`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SetupBody {
    /// Enrol with SHA-1 / 6 digits / 30 s whatever the configured parameters: for a user whose
    /// app ignored them (the `enrol-with-defaults` offer of `verify-setup`).
    #[serde(default)]
    defaults: bool,
}

async fn setup<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
    OptionalJson(body): OptionalJson<SetupBody>,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    // With the default parameters configured there is no second service: the first one is it.
    let service = match &state.twofa_defaults {
        Some(defaults) if body.defaults => defaults,
        _ => &state.twofa,
    };
    // Replaces any pending enrolment, so the one the app ignored is gone.
    let EnrolmentStart::Started(enrolment) = service
        .start_enrolment(&auth.user.id, &auth.user.email)
        .await?
    else {
        return Err(ApiError::Conflict(
            "two-factor authentication is already on; disable it first",
        ));
    };
    enrolment_response(&enrolment)
}

/// What an authenticator app needs: `{secret, otpauthUri, qrSvg}` (first setup, another app, a
/// new phone).
pub fn enrolment_response(enrolment: &Enrolment) -> Result<Response, ApiError> {
    Ok(axum::Json(enrolment_body(enrolment)?).into_response())
}

/// The body of [`enrolment_response`], for handlers that add to it.
pub fn enrolment_body(enrolment: &Enrolment) -> Result<serde_json::Value, ApiError> {
    let qr = enrolment
        .qr()
        .map_err(|e| ApiError::infra("QR code failed", &e))?;
    Ok(serde_json::json!({
        "secret": enrolment.secret_base32().as_str(),
        "otpauthUri": enrolment.otpauth_uri().as_str(),
        "qrSvg": qr.to_svg().as_str(),
    }))
}

fn codes_response(codes: &[BackupCode]) -> Response {
    let codes: Vec<&str> = codes.iter().map(BackupCode::as_str).collect();
    axum::Json(serde_json::json!({ "backupCodes": codes })).into_response()
}

/// A change a code from a new factor (a backup code, or an app added within the change delay)
/// could only schedule: 202 `{scheduled, changeId, notBefore, message}`, plus any `extra`
/// fields. The owner's other apps or a browser trusted before cancel it; it takes effect when
/// `complete_scheduled_changes` runs after `notBefore` (at login, or when the security panel
/// is loaded).
pub fn scheduled_response(
    change: Option<&str>,
    not_before: u64,
    message: &str,
    extra: serde_json::Value,
) -> Response {
    let mut body = serde_json::json!({
        "scheduled": true,
        "changeId": change,
        "notBefore": not_before,
        "message": message,
    });
    if let (Some(body), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

pub fn too_many(retry_after: u64) -> ApiError {
    ApiError::TooManyRequests { retry_after }
}

/// Input that cannot be a code (a typo: letters, the wrong length): a 400 that spent nothing.
pub fn not_a_code(digits: u32) -> ApiError {
    ApiError::BadRequest(format!(
        "that is not a {digits}-digit code or a backup code (XXXX-XXXX-XXXX); check what you typed"
    ))
}

/// A wrong code on an authenticated endpoint (a 400: a 401 would read as "session expired").
pub const WRONG_CODE: ApiError =
    ApiError::WrongCode("wrong or already used code; check your phone's clock if this repeats");

/// `POST /api/2fa/verify-setup` and `POST /api/2fa/authenticators/confirm`: a code from the app
/// being set up confirms whatever is pending: the first app (2FA turns on, backup codes once),
/// or another one (it joins the others; for a new phone the old one goes in the same step).
async fn verify_setup<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
    Json(body): Json<CodeBody>,
) -> Result<Response, ApiError> {
    match state
        .twofa
        .confirm_enrolment(&auth.user.id, &body.code)
        .await?
    {
        ConfirmOutcome::Confirmed { backup_codes } => {
            state
                .db
                .delete_other_sessions(&auth.user.id, &auth.token_hash)
                .await
                .map_err(|e| ApiError::infra("ending other sessions failed", &e))?;
            tracing::info!("two-factor authentication enabled");
            Ok(codes_response(&backup_codes))
        }
        ConfirmOutcome::Added {
            authenticator,
            replaced,
        } => {
            tracing::info!(replacement = replaced.is_some(), "authenticator added");
            Ok(axum::Json(serde_json::json!({
                "authenticator": authenticator,
                "replaced": replaced,
            }))
            .into_response())
        }
        ConfirmOutcome::RateLimited { retry_after_secs } => Err(too_many(retry_after_secs)),
        ConfirmOutcome::Malformed { digits } => Err(not_a_code(digits)),
        ConfirmOutcome::AppIgnoredSettings => {
            // Never a login: the code is refused. A first enrolment can start again with the
            // defaults the app used; an added app cannot (that needs a code), so no offer there.
            let first = !state.twofa.status(&auth.user.id).await?.enabled;
            let mut body = serde_json::json!({
                "error": "your authenticator app ignored the settings of the QR code (it shows \
                          6-digit SHA-1 codes every 30 s): its codes would never log you in; use \
                          an app that reads the settings, or set up again with the standard \
                          settings",
            });
            if first && let Some(body) = body.as_object_mut() {
                body.insert("offer".into(), "enrol-with-defaults".into());
            }
            Ok((StatusCode::CONFLICT, axum::Json(body)).into_response())
        }
        _ => Err(WRONG_CODE),
    }
}

async fn backup_codes<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
    Json(body): Json<CodeBody>,
) -> Result<Response, ApiError> {
    match state
        .twofa
        .regenerate_backup_codes(&auth.user.id, &body.code)
        .await?
    {
        RegenerateOutcome::Regenerated { backup_codes } => Ok(codes_response(&backup_codes)),
        RegenerateOutcome::Scheduled {
            backup_codes,
            change,
            not_before,
        } => {
            tracing::info!(not_before, "new backup codes scheduled");
            let codes: Vec<&str> = backup_codes.iter().map(BackupCode::as_str).collect();
            Ok(scheduled_response(
                Some(&change),
                not_before,
                "these new backup codes replace your current ones at notBefore (your current \
                 codes keep working until then); a code from an app you have had longer, or a \
                 browser you trusted before, cancels the change",
                serde_json::json!({ "backupCodes": codes }),
            ))
        }
        RegenerateOutcome::AlreadyScheduled { change, not_before } => Ok((
            StatusCode::CONFLICT,
            axum::Json(serde_json::json!({
                "error": "new backup codes are already scheduled (they were shown when you asked \
                          for them) and take effect at notBefore; a code from an app you have \
                          had longer, or a browser you trusted before, cancels them",
                "scheduled": true,
                "changeId": change,
                "notBefore": not_before,
            })),
        )
            .into_response()),
        RegenerateOutcome::RateLimited { retry_after_secs } => Err(too_many(retry_after_secs)),
        RegenerateOutcome::Malformed { digits } => Err(not_a_code(digits)),
        _ => Err(WRONG_CODE),
    }
}

async fn disable<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
    Json(body): Json<CodeBody>,
) -> Result<Response, ApiError> {
    match state.twofa.disable(&auth.user.id, &body.code).await? {
        DisableOutcome::Disabled => {
            // Whoever else holds a session must now prove the password alone again.
            state
                .db
                .delete_other_sessions(&auth.user.id, &auth.token_hash)
                .await
                .map_err(|e| ApiError::infra("ending other sessions failed", &e))?;
            tracing::info!("two-factor authentication disabled");
            Ok(axum::Json(serde_json::json!({ "twoFactorEnabled": false })).into_response())
        }
        DisableOutcome::Scheduled { change, not_before } => {
            tracing::info!(
                not_before,
                "turning two-factor authentication off scheduled"
            );
            Ok(scheduled_response(
                Some(&change),
                not_before,
                "two-factor authentication goes off at notBefore; until then it stays on, and a \
                 code from an app you have had longer, or a browser you trusted before, cancels \
                 the change",
                serde_json::json!({ "twoFactorEnabled": true }),
            ))
        }
        DisableOutcome::RateLimited { retry_after_secs } => Err(too_many(retry_after_secs)),
        DisableOutcome::Malformed { digits } => Err(not_a_code(digits)),
        _ => Err(WRONG_CODE),
    }
}
