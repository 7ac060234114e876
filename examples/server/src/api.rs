//! The JSON API. Passwords and sessions are the application's business (here); every
//! second-factor decision (codes, backup codes, challenges, replay, rate limits) is the crate's
//! service's: each handler maps the service's outcome to a response. Generic over the
//! [`Backend`], instantiated once per database in `main`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use twofactor::service::LoginStart;
use twofactor::{
    BackupCode, ConfirmOutcome, DisableOutcome, EnrolmentStart, RegenerateOutcome, TwoFactor,
    VerifyOutcome,
};

use crate::db::{Backend, Db, User};
use crate::error::{ApiError, Json};

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
    /// An Argon2id hash of a random password: unknown emails are checked against it so they
    /// take as long as a wrong password.
    pub dummy_hash: String,
}

/// The router: the page, the API, JSON 404/405 fallbacks and the 64 KiB body limit.
pub fn router<S: Backend>(state: Arc<AppState<S>>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/signup", post(signup::<S>))
        .route("/api/login", post(login::<S>))
        .route("/api/login/2fa", post(login_2fa::<S>))
        .route("/api/logout", post(logout::<S>))
        .route("/api/me", get(me::<S>))
        .route("/api/2fa/setup", post(setup::<S>))
        .route("/api/2fa/verify-setup", post(verify_setup::<S>))
        .route("/api/2fa/backup-codes", post(backup_codes::<S>))
        .route("/api/2fa/disable", post(disable::<S>))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 img-src data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        include_str!("index.html"),
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
fn normalise_email(email: &str) -> Result<String, ApiError> {
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

fn unavailable_on_join(e: &tokio::task::JoinError) -> ApiError {
    ApiError::infra("password hashing task failed", e)
}

/// Argon2id with the crate's default parameters (19 MiB, 2 passes: OWASP's recommendation), off
/// the async threads.
pub async fn hash_password(password: Zeroizing<String>) -> Result<String, ApiError> {
    use argon2::password_hash::PasswordHasher as _;
    tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| unavailable_on_join(&e))?
    .map_err(|e| ApiError::infra("password hashing failed", &e))
}

/// Checks a password against a PHC string; `false` for a wrong password or a broken hash.
async fn verify_password(password: Zeroizing<String>, hash: String) -> Result<bool, ApiError> {
    use argon2::password_hash::PasswordVerifier as _;
    tokio::task::spawn_blocking(move || {
        argon2::password_hash::phc::PasswordHash::new(&hash).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .map_err(|e| unavailable_on_join(&e))
}

/// Issues a session: 256 random bits, base64url; only its SHA-256 is stored.
async fn new_session(db: &impl Db, user_id: &str) -> Result<Zeroizing<String>, ApiError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    crate::random::fill(&mut raw[..]).map_err(|e| ApiError::infra("no OS randomness", &e))?;
    let token = Zeroizing::new(data_encoding::BASE64URL_NOPAD.encode(&raw[..]));
    db.create_session(&hash_token(&token), user_id, now() + SESSION_TTL_SECS)
        .await
        .map_err(|e| ApiError::infra("storing a session failed", &e))?;
    Ok(token)
}

/// The logged-in user, from `Authorization: Bearer <token>`.
pub struct Authenticated {
    user: User,
    token_hash: [u8; 32],
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
struct SecretString(Zeroizing<String>);

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
struct Credentials {
    email: String,
    password: SecretString,
    #[serde(rename = "totpCode", default)]
    totp_code: Option<SecretString>,
}

#[derive(Deserialize)]
struct CodeBody {
    code: SecretString,
}

#[derive(Deserialize)]
struct ChallengeBody {
    challenge: SecretString,
    code: SecretString,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    email: String,
    two_factor_enabled: bool,
    backup_codes_remaining: u32,
}

const BAD_CREDENTIALS: ApiError = ApiError::Unauthorized("wrong email or password");
const BAD_LOGIN_CODE: ApiError =
    ApiError::Unauthorized("wrong, expired or already used code; log in again if it keeps failing");

async fn signup<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    Json(body): Json<Credentials>,
) -> Result<Response, ApiError> {
    let email = normalise_email(&body.email)?;
    let length = body.password.chars().count();
    if length < 8 {
        return Err(ApiError::BadRequest(
            "the password needs at least 8 characters".into(),
        ));
    }
    if length > 1024 {
        return Err(ApiError::BadRequest(
            "the password may have at most 1024 characters".into(),
        ));
    }
    let hash = hash_password(body.password.0).await?;
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

async fn login<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    Json(body): Json<Credentials>,
) -> Result<Response, ApiError> {
    // A malformed email gets the same 401 as an unknown one (after the same work).
    let email = normalise_email(&body.email).unwrap_or_default();
    let user = if email.is_empty() {
        None
    } else {
        state
            .db
            .user_by_email(&email)
            .await
            .map_err(|e| ApiError::infra("reading a user failed", &e))?
    };
    let Some(user) = user else {
        // Same Argon2 work as for a real account, so timing does not reveal which emails exist.
        let _ = verify_password(body.password.0, state.dummy_hash.clone()).await?;
        return Err(BAD_CREDENTIALS);
    };
    if !verify_password(body.password.0, user.password_hash.clone()).await? {
        return Err(BAD_CREDENTIALS);
    }
    let status = state.twofa.status(&user.id).await?;
    if !status.enabled {
        return session_response(&state, &user.id).await;
    }
    match body.totp_code {
        Some(code) if !code.trim().is_empty() => match state.twofa.verify(&user.id, &code).await? {
            VerifyOutcome::Success { .. } => session_response(&state, &user.id).await,
            VerifyOutcome::RateLimited { retry_after_secs } => Err(too_many(retry_after_secs)),
            // `Rejected`, and fail closed on any outcome added later.
            _ => Err(BAD_LOGIN_CODE),
        },
        _ => match state.twofa.start_login(&user.id).await? {
            LoginStart::Required { challenge, .. } => Ok(axum::Json(serde_json::json!({
                "requiresTwoFactor": true,
                "challenge": challenge.as_str(),
            }))
            .into_response()),
            // 2FA was switched off between the status read and now: the password suffices.
            LoginStart::NotRequired => session_response(&state, &user.id).await,
            _ => Err(ApiError::Unavailable),
        },
    }
}

async fn session_response<S: Backend>(
    state: &AppState<S>,
    user_id: &str,
) -> Result<Response, ApiError> {
    let token = new_session(&state.db, user_id).await?;
    Ok(axum::Json(serde_json::json!({ "token": token.as_str() })).into_response())
}

async fn login_2fa<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    Json(body): Json<ChallengeBody>,
) -> Result<Response, ApiError> {
    match state
        .twofa
        .complete_login(&body.challenge, &body.code)
        .await?
    {
        VerifyOutcome::Success { user_id, .. } => session_response(&state, &user_id).await,
        VerifyOutcome::RateLimited { retry_after_secs } => Err(too_many(retry_after_secs)),
        _ => Err(BAD_LOGIN_CODE),
    }
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
        backup_codes_remaining: status.backup_codes_remaining,
    }))
}

async fn setup<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    let EnrolmentStart::Started(enrolment) = state
        .twofa
        .start_enrolment(&auth.user.id, &auth.user.email)
        .await?
    else {
        return Err(ApiError::Conflict(
            "two-factor authentication is already on; disable it first",
        ));
    };
    let qr = enrolment
        .qr()
        .map_err(|e| ApiError::infra("QR code failed", &e))?;
    Ok(axum::Json(serde_json::json!({
        "secret": enrolment.secret_base32().as_str(),
        "otpauthUri": enrolment.otpauth_uri().as_str(),
        "qrSvg": qr.to_svg().as_str(),
    }))
    .into_response())
}

fn codes_response(codes: &[BackupCode]) -> Response {
    let codes: Vec<&str> = codes.iter().map(BackupCode::as_str).collect();
    axum::Json(serde_json::json!({ "backupCodes": codes })).into_response()
}

fn too_many(retry_after: u64) -> ApiError {
    ApiError::TooManyRequests { retry_after }
}

/// A wrong code on an authenticated endpoint (a 400: a 401 would read as "session expired").
const WRONG_CODE: ApiError =
    ApiError::WrongCode("wrong or already used code; check your phone's clock if this repeats");

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
        ConfirmOutcome::RateLimited { retry_after_secs } => Err(too_many(retry_after_secs)),
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
        RegenerateOutcome::RateLimited { retry_after_secs } => Err(too_many(retry_after_secs)),
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
            tracing::info!("two-factor authentication disabled");
            Ok(axum::Json(serde_json::json!({ "twoFactorEnabled": false })).into_response())
        }
        DisableOutcome::RateLimited { retry_after_secs } => Err(too_many(retry_after_secs)),
        _ => Err(WRONG_CODE),
    }
}
