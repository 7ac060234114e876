//! An axum app with a password login (stubbed: a fixed users table) and a second factor from
//! `twofactor`, on the app's own sqlx pool. Sessions are left out: each answer names the user.

use std::sync::Arc;

use axum::extract::{Json, State};
use axum::http::StatusCode;
use axum::{Router, routing::post};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::SqlitePool;
use twofactor::service::{CompleteLogin, Config, LoginStart, SecondFactor, StartLogin};
use twofactor::store::SqliteStore;
use twofactor::{BackupCodeKey, ConfirmOutcome, EnrolmentStart, Keyring, TwoFactor, VerifyOutcome};

/// What the handlers share.
pub struct App {
    pool: SqlitePool,
    twofactor: TwoFactor<SqliteStore>,
}

type Reply = Result<Json<Value>, StatusCode>;

/// The app's own database failing: 503, never a detail.
fn unavailable<E>(_: E) -> StatusCode {
    StatusCode::SERVICE_UNAVAILABLE
}

/// A service error by its kind: 400 for the caller's bad input, 503 while a store or the cipher
/// is unavailable, 500 for corrupt data. Wrong codes are outcomes, not errors.
fn status(e: twofactor::ServiceError) -> StatusCode {
    StatusCode::from_u16(e.kind().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The router over `pool`: creates the stub users table and the stores' tables.
///
/// # Errors
///
/// The database refused the schema, or `keys` is not a valid key ring configuration.
pub async fn app(pool: SqlitePool, keys: &str) -> Result<Router, Box<dyn std::error::Error>> {
    sqlx::query("CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, password TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    twofactor::store::sqlite::migrate(&pool).await?;
    let twofactor = TwoFactor::from_store(
        SqliteStore::new(pool.clone()),
        Keyring::from_config(keys)?,
        BackupCodeKey::derive(b"a master key kept outside the database"),
        Config::new("axum-app"),
    )?;
    let state = Arc::new(App { pool, twofactor });
    Ok(Router::new()
        .route("/login", post(login))
        .route("/login/code", post(login_code))
        .route("/enrol", post(enrol))
        .route("/enrol/confirm", post(confirm))
        .with_state(state))
}

#[derive(Deserialize)]
struct Password {
    user: String,
    password: String,
}

async fn login(State(app): State<Arc<App>>, Json(req): Json<Password>) -> Reply {
    // Stub: a real app compares a password hash (examples/server uses Argon2id).
    let found: Option<String> =
        sqlx::query_scalar("SELECT id FROM users WHERE id = ?1 AND password = ?2")
            .bind(&req.user)
            .bind(&req.password)
            .fetch_optional(&app.pool)
            .await
            .map_err(unavailable)?;
    let Some(user) = found else {
        return Err(StatusCode::UNAUTHORIZED);
    };
    let start = StartLogin::new(&user); // .device(cookie) skips the code for a trusted browser
    match app.twofactor.start_login(start).await.map_err(status)? {
        LoginStart::Required { challenge, .. } => {
            Ok(Json(json!({ "challenge": challenge.as_str() })))
        }
        _ => Ok(Json(json!({ "user": user }))),
    }
}

#[derive(Deserialize)]
struct Code {
    challenge: String,
    code: String,
}

async fn login_code(State(app): State<Arc<App>>, Json(req): Json<Code>) -> Reply {
    let attempt = CompleteLogin::new(&req.challenge, SecondFactor::Typed(&req.code));
    match app
        .twofactor
        .complete_login(attempt)
        .await
        .map_err(status)?
    {
        VerifyOutcome::Success { user_id, .. } => Ok(Json(json!({ "user": user_id }))),
        VerifyOutcome::RateLimited { .. } => Err(StatusCode::TOO_MANY_REQUESTS),
        _ => Err(StatusCode::UNAUTHORIZED), // wrong, replayed, expired: all look the same
    }
}

#[derive(Deserialize)]
struct User {
    user: String,
}

async fn enrol(State(app): State<Arc<App>>, Json(req): Json<User>) -> Reply {
    match app
        .twofactor
        .start_enrolment(&req.user, &req.user)
        .await
        .map_err(status)?
    {
        // Show it as a QR code (feature "qr"); never log it.
        EnrolmentStart::Started(e) => Ok(Json(json!({ "otpauth_uri": e.otpauth_uri().as_str() }))),
        _ => Err(StatusCode::CONFLICT),
    }
}

#[derive(Deserialize)]
struct Confirm {
    user: String,
    code: String,
}

async fn confirm(State(app): State<Arc<App>>, Json(req): Json<Confirm>) -> Reply {
    match app
        .twofactor
        .confirm_enrolment(&req.user, &req.code)
        .await
        .map_err(status)?
    {
        ConfirmOutcome::Confirmed { backup_codes } => {
            let codes: Vec<&str> = backup_codes.iter().map(|c| c.as_str()).collect();
            Ok(Json(json!({ "backup_codes": codes })))
        }
        _ => Err(StatusCode::UNAUTHORIZED),
    }
}
