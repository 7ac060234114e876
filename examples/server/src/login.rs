//! Logging in and changing the password: the password step behind the guess limits of
//! [`crate::guard`] and the bounded hasher, the second step through the crate's service with the
//! browser's device token, and the owner's notice of failed attempts since the last login.
//!
//! The device token lives in an `HttpOnly`, `Secure`, `SameSite=Strict` cookie scoped to
//! `/api/login`, one per account (named after a hash of the email): page scripts cannot read
//! it, so script injection cannot carry it away, and the browser sends it only to the login
//! endpoints. A known token gives the owner's browser its own budgets and skips nothing; a token
//! the user asked to trust ("remember this browser for 30 days", the same cookie) also lets the
//! password alone in, until it expires or is revoked (by the user in the Security panel, or by
//! the service on a password change or when 2FA is turned off).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use twofactor::VerifyOutcome;
use twofactor::rate_limit::LimiterState;
use twofactor::service::{CompleteLogin, LoginStart, Remember, SecondFactor, StartLogin, Verify};
use twofactor::store::TokenHash;

use crate::api::{
    AppState, Authenticated, BAD_CREDENTIALS, BAD_LOGIN_CODE, ClientAddr, SecretString, WRONG_CODE,
    new_session, normalise_email, not_a_code, now, too_many,
};
use crate::db::{Backend, Db as _};
use crate::error::{ApiError, Json};
use crate::guard::{self, Guess};
use crate::user_agent::browser_label;

/// Longest device token looked at (the crate's are 43 characters).
const MAX_DEVICE_TOKEN: usize = 128;

#[derive(Deserialize)]
pub struct Credentials {
    pub email: String,
    pub password: SecretString,
    #[serde(rename = "totpCode", default)]
    pub totp_code: Option<SecretString>,
}

#[derive(Deserialize)]
pub struct ChallengeBody {
    challenge: SecretString,
    code: SecretString,
    /// The email of the password step: picks the account's device cookie. A wrong one only
    /// means no device budget (a token of another account is ignored by the service).
    #[serde(default)]
    email: Option<String>,
    /// "Remember this browser for 30 days": the new device token is trusted, so the next
    /// logins from this browser need the password only.
    #[serde(default)]
    remember: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChange {
    current_password: SecretString,
    new_password: SecretString,
    #[serde(default)]
    code: Option<SecretString>,
}

/// What the owner is told after logging in: failed attempts (wrong passwords on the account,
/// wrong second factors on the user's budget) since the previous login, and when that was.
#[derive(Clone, Copy, Default)]
struct Notice {
    failed: u32,
    last_login_at: Option<u64>,
}

/// Checks the length of a new password (8 to 1024 characters).
pub fn check_new_password(password: &str) -> Result<(), ApiError> {
    let length = password.chars().count();
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
    Ok(())
}

/// The device cookie's name for an account: `tf_device_` and 16 hex digits of the SHA-256 of
/// the normalised email (no email in the cookie jar).
fn device_cookie_name(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    format!(
        "tf_device_{}",
        &data_encoding::HEXLOWER.encode(&digest[..8])
    )
}

/// The account's device token from the `Cookie` headers, if any.
pub(crate) fn device_cookie(headers: &HeaderMap, email: &str) -> Option<Zeroizing<String>> {
    let name = device_cookie_name(email);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= MAX_DEVICE_TOKEN)
        .map(|v| Zeroizing::new(v.to_owned()))
}

/// `Set-Cookie` for a new device token (the token is base64url: no quoting needed).
fn set_device_cookie(response: &mut Response, email: &str, token: &str, max_age: u64) {
    let cookie = Zeroizing::new(format!(
        "{}={token}; Max-Age={max_age}; Path=/api; HttpOnly; Secure; SameSite=Strict",
        device_cookie_name(email)
    ));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The hash of `token` if it is a live device token of `user_id` (what the service checks in
/// `CompleteLogin::device`: the SHA-256 of the token, bound to the user). A revoked token
/// is gone from the store, so it picks no budget either.
async fn known_device<S: Backend>(
    state: &AppState<S>,
    user_id: &str,
    token: &str,
    now: u64,
) -> Result<Option<TokenHash>, ApiError> {
    let hash: TokenHash = Sha256::digest(token.as_bytes()).into();
    let record = state
        .twofa
        .credential_store()
        .use_device(&hash, now)
        .await
        .map_err(|e| ApiError::infra("reading a device token failed", &e))?;
    Ok(record.filter(|d| d.user_id == user_id).map(|_| hash))
}

/// Where the notice waits between the password step and the second step: a limiter row (the
/// crate's store, shared by every server process) keyed by the challenge's hash, holding the
/// count in `since_success` and the previous login in `last_success_at`.
fn notice_key(challenge: &str) -> String {
    format!(
        "demo:notice:{}",
        data_encoding::HEXLOWER.encode(&Sha256::digest(challenge.as_bytes()))
    )
}

async fn save_notice<S: Backend>(state: &AppState<S>, challenge: &str, n: Notice, until: u64) {
    let saved = LimiterState::from_parts(0, 0, 0, 0, 0, n.failed, n.last_login_at.unwrap_or(0));
    if let Err(e) = state
        .twofa
        .ephemeral_store()
        .update_limiter(&notice_key(challenge), until, move |_| saved)
        .await
    {
        tracing::warn!(error = %e, "could not keep the login notice");
    }
}

async fn take_notice<S: Backend>(state: &AppState<S>, challenge: &str) -> Notice {
    match state
        .twofa
        .ephemeral_store()
        .get_limiter(&notice_key(challenge))
        .await
    {
        Ok(s) => Notice {
            failed: s.since_success,
            last_login_at: (s.last_success_at > 0).then_some(s.last_success_at),
        },
        Err(e) => {
            tracing::warn!(error = %e, "could not read the login notice");
            Notice::default()
        }
    }
}

async fn session_response<S: Backend>(
    state: &AppState<S>,
    user_id: &str,
    notice: Notice,
) -> Result<Response, ApiError> {
    Ok(session_body(state, user_id, notice, false, true).await?.0)
}

/// A session for a browser the user trusts (the password was enough): as
/// [`session_response`], with `trustedBrowser: true` so the page can say why no code was asked.
async fn trusted_session_response<S: Backend>(
    state: &AppState<S>,
    user_id: &str,
    notice: Notice,
) -> Result<Response, ApiError> {
    Ok(session_body(state, user_id, notice, true, true).await?.0)
}

/// A new session's response, and the account's email (for a device cookie's name). `apply_changes`: apply the user's due scheduled changes first;
/// pass `false` only after a login whose factor was established ([`FactorProof::is_established`](twofactor::service::FactorProof::is_established)), which
/// cancelled every scheduled change of the user (the service's `delete_changes`): there is
/// none left to apply, and one scheduled since is not due before the change delay.
async fn session_body<S: Backend>(
    state: &AppState<S>,
    user_id: &str,
    notice: Notice,
    trusted: bool,
    apply_changes: bool,
) -> Result<(Response, Option<String>), ApiError> {
    // Due scheduled changes of factors take effect at login. A failure here leaves the
    // factors as they were (nothing is taken away), so it does not stop the login.
    if apply_changes {
        match state.twofa.complete_scheduled_changes(user_id).await {
            Ok(applied) if !applied.is_empty() => {
                tracing::info!(count = applied.len(), "scheduled changes applied");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not apply scheduled changes"),
        }
    }
    let (token, email) = new_session(&state.db, user_id).await?;
    let mut body = serde_json::json!({
        "token": token.as_str(),
        "failedAttempts": notice.failed,
        "lastLoginAt": notice.last_login_at,
    });
    if trusted {
        body["trustedBrowser"] = serde_json::Value::Bool(true);
    }
    Ok((axum::Json(body).into_response(), email))
}

/// `POST /api/login`: the password step (and the second factor in one go with `totpCode`).
pub async fn login<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    Json(body): Json<Credentials>,
) -> Result<Response, ApiError> {
    let now = now();
    let store = state.twofa.ephemeral_store();
    // A malformed email gets the same limits, work and 401 as an unknown one.
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
    let device_token = device_cookie(&headers, &body.email);
    // Looked up whether or not the account exists, so a cookie does not time the difference.
    let device = match &device_token {
        Some(token) => {
            let owner = user.as_ref().map_or("", |u| u.id.as_str());
            known_device(&state, owner, token, now).await?
        }
        None => None,
    };
    let account_key = guard::account_key(&body.email);
    let budgets = match &device {
        Some(hash) => vec![(guard::device_key(hash), guard::account_policy())],
        None => vec![
            (account_key.clone(), guard::account_policy()),
            (guard::address_key(ip), state.address_policy),
        ],
    };
    let guess = match Guess::take(store, budgets, now).await? {
        Ok(guess) => guess,
        Err(retry_after) => return Err(too_many(retry_after)),
    };
    // Same Argon2 work for an unknown email (against a dummy hash) as for a wrong password.
    let hash = user
        .as_ref()
        .map_or_else(|| state.dummy_hash.clone(), |u| u.password_hash.clone());
    let right = match state.hasher.verify(body.password.0, hash).await {
        Ok(right) => right,
        Err(e) => {
            guess.release(store).await;
            return Err(e);
        }
    };
    let Some(user) = user.filter(|_| right) else {
        guess.fail();
        return Err(BAD_CREDENTIALS);
    };
    // The account's failures since its last correct password: from this acquisition, or (on
    // a known device, whose budget the attacker never touched) from the account's own row.
    let account = if device.is_some() {
        let account = store
            .get_limiter(&account_key)
            .await
            .map_err(|e| ApiError::infra("password rate limiter failed", &e));
        match account {
            Ok(account) => account,
            Err(e) => {
                guess.release(store).await;
                return Err(e);
            }
        }
    } else {
        guess.before
    };
    guess.succeed(store).await;
    if device.is_some() {
        // The owner is told now: the account's count starts again (its budget is untouched).
        let policy = guard::account_policy();
        if let Err(e) = store
            .update_limiter(&account_key, policy.expire_at(now), move |s| {
                policy.note_success(s, now)
            })
            .await
        {
            tracing::warn!(error = %e, "could not update a password rate limiter");
        }
    }
    let status = state.twofa.status(&user.id).await?;
    let notice = Notice {
        failed: account
            .since_success
            .saturating_add(status.failures_since_login),
        last_login_at: if status.enabled {
            status.last_login_at
        } else {
            (account.last_success_at > 0).then_some(account.last_success_at)
        },
    };
    if !status.enabled {
        return session_response(&state, &user.id, notice).await;
    }
    let device_token = device_token.as_deref().map(|t| t.as_str());
    match body.totp_code {
        Some(code) if !code.trim().is_empty() => match state
            .twofa
            .verify(Verify::new(&user.id, SecondFactor::Typed(&code)).device(device_token))
            .await?
        {
            VerifyOutcome::Success { .. } => session_response(&state, &user.id, notice).await,
            VerifyOutcome::RateLimited { retry_after_secs } => Err(too_many(retry_after_secs)),
            // `Rejected`, and fail closed on any outcome added later.
            _ => Err(BAD_LOGIN_CODE),
        },
        // A browser the user trusts skips the code; any other token (known only, revoked,
        // expired, forged, another account's) is ignored by the service and a code is asked.
        _ => match state
            .twofa
            .start_login(StartLogin::new(&user.id).device(device_token))
            .await?
        {
            LoginStart::TrustedDevice => {
                tracing::info!("login from a trusted browser");
                trusted_session_response(&state, &user.id, notice).await
            }
            LoginStart::Required {
                challenge,
                expires_at,
            } => {
                save_notice(&state, challenge.as_str(), notice, expires_at).await;
                Ok(axum::Json(serde_json::json!({
                    "requiresTwoFactor": true,
                    "challenge": challenge.as_str(),
                }))
                .into_response())
            }
            // 2FA was switched off between the status read and now: the password suffices.
            LoginStart::NotRequired => session_response(&state, &user.id, notice).await,
            _ => Err(ApiError::Unavailable),
        },
    }
}

/// `POST /api/login/2fa`: the second step, on the device's own budget when the browser holds
/// the account's device token; a browser without one (or with one past half its life) gets a
/// new one. With `remember`, the new token is trusted (labelled from the `User-Agent`) and
/// replaces the browser's old one in the same cookie.
pub async fn login_2fa<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    Json(body): Json<ChallengeBody>,
) -> Result<Response, ApiError> {
    let device_token = body
        .email
        .as_deref()
        .and_then(|email| device_cookie(&headers, email));
    let label = body.remember.then(|| browser_label(&headers));
    let remember = match &label {
        Some(label) => Remember::Trusted(label),
        None => Remember::Device,
    };
    let attempt = CompleteLogin::new(&body.challenge, SecondFactor::Typed(&body.code))
        .device(device_token.as_deref().map(|t| t.as_str()))
        .remember(remember);
    let outcome = state.twofa.complete_login(attempt).await?;
    match outcome {
        VerifyOutcome::Success {
            user_id,
            device_token,
            proof,
            ..
        } => {
            let notice = take_notice(&state, &body.challenge).await;
            let apply_changes = !proof.is_established();
            let (mut response, email) =
                session_body(&state, &user_id, notice, false, apply_changes).await?;
            // Named after the account's real email (read with the session insert), whatever
            // the body said.
            if let (Some(token), Some(email)) = (device_token, email) {
                set_device_cookie(
                    &mut response,
                    &email,
                    token.as_str(),
                    state.twofa.config().device_ttl_secs,
                );
            }
            Ok(response)
        }
        VerifyOutcome::RateLimited { retry_after_secs } => Err(too_many(retry_after_secs)),
        // A typo costs nothing and is said so; the challenge already proved the password.
        VerifyOutcome::Malformed { digits } => Err(not_a_code(digits)),
        _ => Err(BAD_LOGIN_CODE),
    }
}

/// `POST /api/password`: the current password and, with 2FA on, a code or backup code (through
/// the service: limited, single use); then the new hash, every other session ended, the service
/// told (with an established app's code the 2FA lockout ends) and the account's password budget
/// cleared.
///
/// The current password is checked on the session's own guess budget: a stolen session is no
/// password oracle, and an attacker who keeps the account's login budget locked cannot stop
/// the logged-in owner from changing the password.
pub async fn change_password<S: Backend>(
    State(state): State<Arc<AppState<S>>>,
    auth: Authenticated,
    Json(body): Json<PasswordChange>,
) -> Result<Response, ApiError> {
    check_new_password(&body.new_password)?;
    let user = &auth.user;
    let store = state.twofa.ephemeral_store();
    let status = state.twofa.status(&user.id).await?;
    let code = body.code.filter(|c| !c.trim().is_empty());
    if status.enabled && code.is_none() {
        return Err(ApiError::BadRequest(
            "enter a code from your authenticator app or a backup code".into(),
        ));
    }
    let now = now();
    let budget = vec![(
        guard::session_key(&auth.token_hash),
        guard::account_policy(),
    )];
    let guess = match Guess::take(store, budget, now).await? {
        Ok(guess) => guess,
        Err(retry_after) => return Err(too_many(retry_after)),
    };
    let right = match state
        .hasher
        .verify(body.current_password.0, user.password_hash.clone())
        .await
    {
        Ok(right) => right,
        Err(e) => {
            guess.release(store).await;
            return Err(e);
        }
    };
    if !right {
        guess.fail();
        return Err(ApiError::WrongCode("the current password is wrong"));
    }
    guess.succeed(store).await;
    let mut proof = None;
    if let (true, Some(code)) = (status.enabled, &code) {
        let factor = SecondFactor::Typed(code);
        match state.twofa.verify(Verify::new(&user.id, factor)).await? {
            VerifyOutcome::Success { proof: p, .. } => proof = Some(p),
            VerifyOutcome::RateLimited { retry_after_secs } => {
                return Err(too_many(retry_after_secs));
            }
            VerifyOutcome::Malformed { digits } => return Err(not_a_code(digits)),
            _ => return Err(WRONG_CODE),
        }
    }
    let hash = state.hasher.hash(body.new_password.0).await?;
    if !state
        .db
        .set_password_hash(&user.id, &hash)
        .await
        .map_err(|e| ApiError::infra("storing a password failed", &e))?
    {
        return Err(ApiError::Unauthorized(
            "not logged in, or the session expired",
        ));
    }
    state
        .db
        .delete_other_sessions(&user.id, &auth.token_hash)
        .await
        .map_err(|e| ApiError::infra("ending other sessions failed", &e))?;
    // The code checked above is the proof that lets the change end a lockout.
    state
        .twofa
        .password_changed(&user.id, proof.as_ref())
        .await?;
    guard::reset_account(store, &user.email, now).await?;
    tracing::info!("password changed");
    Ok(axum::Json(serde_json::json!({ "passwordChanged": true })).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_device_cookie_is_found_by_account_and_bounded() {
        let mut h = HeaderMap::new();
        let name = device_cookie_name("Alice@Example.com");
        assert!(!name.contains("alice"));
        h.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {name}=tok123 ; c=d")).unwrap(),
        );
        assert_eq!(
            device_cookie(&h, " alice@example.com").unwrap().as_str(),
            "tok123"
        );
        assert!(device_cookie(&h, "bob@example.com").is_none());
        let long = "x".repeat(MAX_DEVICE_TOKEN + 1);
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("{name}={long}")).unwrap(),
        );
        assert!(device_cookie(&h, "alice@example.com").is_none());
    }
}
