//! The steps every HTTP test takes before it tests anything: sign up, log in, turn 2FA on, the
//! password step of a 2FA login and the code step. Each asserts what a working demo answers, so
//! a test that builds on them fails at the step that broke.

use std::collections::HashSet;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Http, Resp, TempDir, totp_at, unix_now, wait_for_step_room};

/// The password of every test account.
pub const PASSWORD: &str = "correct horse battery";

/// The demo's SQLite database in `dir`.
pub fn sqlite_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("demo.db").display())
}

/// Signs up `email` with `password` (201).
pub async fn signup(http: &Http, email: &str, password: &str) {
    let r = http
        .post(
            "/api/signup",
            None,
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
}

/// The password step, whatever it answers.
pub async fn login(http: &Http, email: &str, password: &str) -> Resp {
    http.post(
        "/api/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

/// Signs up and logs in a fresh user without 2FA; returns the session token.
pub async fn signup_and_login(http: &Http, email: &str) -> String {
    signup(http, email, PASSWORD).await;
    let r = login(http, email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    r.str("token")
}

/// Enrols the logged-in user; returns (secret, backup codes). Uses the code of the previous
/// step (within the ±1 window), so the current and next steps stay free for the test.
pub async fn enrol(http: &Http, token: &str) -> (String, Vec<String>) {
    let r = http.post("/api/2fa/setup", Some(token), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let secret = r.str("secret");
    wait_for_step_room(8);
    let code = totp_at(&secret, unix_now() - 30);
    let r = http
        .post("/api/2fa/verify-setup", Some(token), json!({"code": code}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let codes = backup_codes(&r);
    (secret, codes)
}

/// Signs up, logs in and turns 2FA on; returns (session, secret, backup codes).
pub async fn enrolled(http: &Http, email: &str) -> (String, String, Vec<String>) {
    let token = signup_and_login(http, email).await;
    let (secret, codes) = enrol(http, &token).await;
    (token, secret, codes)
}

/// The eight distinct backup codes of a response.
pub fn backup_codes(r: &Resp) -> Vec<String> {
    let codes: Vec<String> = r.json["backupCodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no backupCodes in {r:?}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 8);
    assert_eq!(
        codes.iter().collect::<HashSet<_>>().len(),
        8,
        "codes repeat"
    );
    codes
}

/// Password step of a 2FA login: returns the challenge.
pub async fn challenge(http: &Http, email: &str) -> String {
    let r = login(http, email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json["requiresTwoFactor"], json!(true), "{r:?}");
    assert!(r.json.get("token").is_none(), "a token before the 2FA step");
    r.str("challenge")
}

/// The code step for `challenge`, from a browser without a device cookie, whatever it answers.
pub async fn code_step(http: &Http, challenge: &str, code: &str) -> Resp {
    http.post(
        "/api/login/2fa",
        None,
        json!({"challenge": challenge, "code": code}),
    )
    .await
}

/// `GET /api/me` with the session (200).
pub async fn me(http: &Http, token: &str) -> Value {
    let r = http.get("/api/me", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    r.json
}
