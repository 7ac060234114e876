//! The server example over HTTP: the compiled binary is started on a free port with a temp
//! SQLite file (always) or a fresh PostgreSQL database (when `TWOFACTOR_TEST_POSTGRES_URL` is
//! set) and driven through the whole issue-8 API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_common;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use server_common::{
    Http, PASSWORD, PgTestDb, Resp, Server, TempDir, backup_codes, challenge, code_step, enrol, me,
    signup_and_login, sqlite_url, switch_on, totp_at, unix_now, wait_for_step_room,
};

/// Waits until the 30-second step of `t` has begun, so the code of the step after it is inside
/// the ±1 window.
fn wait_for_step_of(t: u64) {
    let start = t - t % 30;
    let now = unix_now();
    if now < start {
        std::thread::sleep(Duration::from_secs(start - now));
    }
}

/// The whole flow on one database; `restart` starts a second server process on the same
/// database to check that state survives.
async fn full_flow(database_url: &str, dir: &TempDir) {
    let mut server = Server::start(dir.path(), database_url);
    let http = Http::new(&server.base);
    let email = "Alice@Example.com";
    let mut secrets_seen: Vec<String> = vec![PASSWORD.to_owned()];

    // Sign-up; the email is normalised, so a different case is a duplicate.
    let token = signup_and_login(&http, email).await;
    secrets_seen.push(token.clone());
    let r = http
        .post(
            "/api/signup",
            None,
            json!({"email": "alice@example.COM", "password": "another password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    assert!(!r.error().is_empty());
    let m = me(&http, &token).await;
    assert_eq!(
        m,
        json!({
            "email": "alice@example.com",
            "twoFactorEnabled": false,
            "authenticators": 0,
            "backupCodesRemaining": 0,
            "failuresSinceLogin": 0,
            "lastLoginAt": null,
            "scheduledChanges": 0
        })
    );

    // Unknown email and wrong password look the same.
    let unknown = http
        .post(
            "/api/login",
            None,
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    let wrong = http
        .post(
            "/api/login",
            None,
            json!({"email": email, "password": "wrong password"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.text, wrong.text);

    // Setup twice: the second secret replaces the first; 2FA stays off until confirmed.
    let first = http.post("/api/2fa/setup", Some(&token), json!({})).await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    let first_secret = first.str("secret");
    assert!(first.str("otpauthUri").starts_with("otpauth://totp/"));
    assert!(first.str("qrSvg").contains("<svg"));
    assert!(
        !me(&http, &token).await["twoFactorEnabled"]
            .as_bool()
            .unwrap()
    );
    let second = http.post("/api/2fa/setup", Some(&token), json!({})).await;
    assert_eq!(second.status, StatusCode::OK, "{second:?}");
    let secret = second.str("secret");
    assert_ne!(first_secret, secret);
    secrets_seen.push(secret.clone());
    wait_for_step_room(10);
    let now = unix_now();
    // The replaced secret's code no longer confirms (unless it collides, one in a million).
    let stale = totp_at(&first_secret, now);
    if stale != totp_at(&secret, now) {
        let r = http
            .post(
                "/api/2fa/verify-setup",
                Some(&token),
                json!({"code": stale}),
            )
            .await;
        assert!(r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::UNAUTHORIZED);
        assert!(!r.error().is_empty());
    }
    assert!(
        !me(&http, &token).await["twoFactorEnabled"]
            .as_bool()
            .unwrap()
    );
    // Confirm with the previous step's code (inside the ±1 window).
    let r = http
        .post(
            "/api/2fa/verify-setup",
            Some(&token),
            json!({"code": totp_at(&secret, now - 30)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let codes = backup_codes(&r);
    secrets_seen.extend(codes.iter().cloned());
    let m = me(&http, &token).await;
    assert_eq!(m["twoFactorEnabled"], json!(true));
    assert_eq!(m["authenticators"], json!(1));
    assert_eq!(m["backupCodesRemaining"], json!(8));
    // Setup while enabled is refused: a pending secret never replaces the active one.
    let r = http.post("/api/2fa/setup", Some(&token), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");

    // Login now asks for the second factor; the current step's code completes it.
    let ch = challenge(&http, email).await;
    let code = totp_at(&secret, now);
    let r = code_step(&http, &ch, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let token2 = r.str("token");
    secrets_seen.push(token2.clone());
    assert_eq!(me(&http, &token2).await["twoFactorEnabled"], json!(true));
    // The used challenge is gone.
    let r = code_step(&http, &ch, &code).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    // Replay: the same code on a fresh challenge is refused.
    let ch = challenge(&http, email).await;
    let r = code_step(&http, &ch, &code).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "replayed code accepted: {r:?}"
    );
    assert!(!r.error().is_empty());
    // A made-up challenge is refused like a wrong code.
    let r = code_step(&http, "not-a-challenge", &totp_at(&secret, now + 30)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");

    // The failed attempt did not use the challenge up (the service's choice: a typo must not
    // send the user back to the password step; the rate limit bounds guesses). A backup code in
    // lower case with spaces completes it, once.
    let backup = &codes[0];
    let mangled: String = backup
        .to_lowercase()
        .chars()
        .enumerate()
        .flat_map(|(i, c)| if i == 4 { vec![' ', c] } else { vec![c] })
        .collect();
    let r = code_step(&http, &ch, &format!(" {mangled} ")).await;
    assert_eq!(r.status, StatusCode::OK, "backup code refused: {r:?}");
    let token3 = r.str("token");
    assert_eq!(me(&http, &token3).await["backupCodesRemaining"], json!(7));
    let ch = challenge(&http, email).await;
    let r = code_step(&http, &ch, backup).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "backup code reused: {r:?}"
    );

    // /api/login with totpCode in one go (next step's code, still in the window).
    let next = totp_at(&secret, now + 30);
    let r = http
        .post(
            "/api/login",
            None,
            json!({"email": email, "password": PASSWORD, "totpCode": next}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(r.json.get("token").is_some());

    // /api/me without or with a bad token.
    assert_eq!(
        http.get("/api/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = http.get("/api/me", Some("bogus")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!r.error().is_empty());

    // New backup codes need a valid code (a wrong one: Bob's part below). A backup code is a
    // new factor: it only schedules them (202, the codes shown now, valid from notBefore).
    assert_eq!(me(&http, &token).await["backupCodesRemaining"], json!(7));
    let r = http
        .post(
            "/api/2fa/backup-codes",
            Some(&token),
            // Without the hyphen.
            json!({"code": codes[1].replace('-', "")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{r:?}");
    assert_eq!(r.json["scheduled"], json!(true), "{r:?}");
    assert_eq!(r.json["changeId"], json!("regenerate"), "{r:?}");
    let not_before = r.json["notBefore"].as_u64().expect("notBefore");
    assert!(not_before >= unix_now() + 71 * 3600, "{r:?}");
    assert!(r.str("message").contains("notBefore"), "{r:?}");
    let scheduled_codes = backup_codes(&r);
    secrets_seen.extend(scheduled_codes.iter().cloned());
    let m = me(&http, &token).await;
    assert_eq!(
        m["backupCodesRemaining"],
        json!(6),
        "the old set stays until then"
    );
    assert_eq!(m["scheduledChanges"], json!(1));
    // Asking again while one set is scheduled: 409, nothing changes.
    let r = http
        .post(
            "/api/2fa/backup-codes",
            Some(&token),
            json!({"code": codes[3]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    assert_eq!(r.json["notBefore"], json!(not_before), "{r:?}");
    assert!(r.error().contains("already scheduled"), "{r:?}");
    assert!(r.json.get("backupCodes").is_none(), "{r:?}");
    // A code of the first app (the step after the three used above) regenerates at once, and
    // cancels the scheduled set.
    wait_for_step_of(now + 30);
    let r = http
        .post(
            "/api/2fa/backup-codes",
            Some(&token),
            json!({"code": totp_at(&secret, now + 60)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(r.json.get("scheduled").is_none(), "{r:?}");
    let new_codes = backup_codes(&r);
    secrets_seen.extend(new_codes.iter().cloned());
    let m = me(&http, &token).await;
    assert_eq!(m["backupCodesRemaining"], json!(8));
    assert_eq!(m["scheduledChanges"], json!(0));
    // The old set is void (each wrong code counts on Alice's budget of 5, so only one here).
    let ch = challenge(&http, email).await;
    let r = code_step(&http, &ch, &codes[2]).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "old backup code still works: {r:?}"
    );

    // Every wrong code counts against the user's budget (5 per 10 minutes, not reset by a
    // success), so the wrong-code checks that remain run as a second user, Bob.
    let bob = "bob@example.com";
    let bob_token = signup_and_login(&http, bob).await;
    let (bob_secret, _) = enrol(&http, &bob_token).await;
    secrets_seen.extend([bob_token.clone(), bob_secret.clone()]);
    let bob_code = totp_at(&bob_secret, unix_now());
    let ch = challenge(&http, bob).await;
    let r = code_step(&http, &ch, &bob_code).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    // New backup codes need a valid code; a wrong one changes nothing.
    let r = http
        .post(
            "/api/2fa/backup-codes",
            Some(&bob_token),
            json!({"code": "000000"}),
        )
        .await;
    assert!(
        r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::UNAUTHORIZED,
        "{r:?}"
    );
    assert_eq!(
        me(&http, &bob_token).await["backupCodesRemaining"],
        json!(8)
    );

    // Restart on the same database: session and 2FA state survive.
    let status = server.terminate(Duration::from_secs(10)).expect("no exit");
    assert!(status.success(), "{status:?}");
    let log1 = server.log_text();
    drop(server);
    let server = Server::start(dir.path(), database_url);
    let http = Http::new(&server.base);
    let m = me(&http, &token).await;
    assert_eq!(m["twoFactorEnabled"], json!(true));
    assert_eq!(m["backupCodesRemaining"], json!(8));
    // The code used before the restart is still refused (replay state is durable).
    let ch = challenge(&http, bob).await;
    let r = code_step(&http, &ch, &bob_code).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    // A new backup code logs in after the restart.
    let ch = challenge(&http, email).await;
    let r = code_step(&http, &ch, &new_codes[0]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");

    // Disable needs a valid code.
    let r = http
        .post("/api/2fa/disable", Some(&bob_token), json!({"code": "123"}))
        .await;
    assert!(r.status.is_client_error(), "{r:?}");
    assert_eq!(me(&http, &bob_token).await["twoFactorEnabled"], json!(true));
    // A backup code only schedules it: 202, and 2FA stays on.
    let r = http
        .post(
            "/api/2fa/disable",
            Some(&token),
            json!({"code": new_codes[1]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{r:?}");
    assert_eq!(r.json["scheduled"], json!(true), "{r:?}");
    assert_eq!(r.json["changeId"], json!("disable"), "{r:?}");
    assert!(r.json["notBefore"].as_u64().unwrap() >= unix_now() + 71 * 3600);
    let m = me(&http, &token).await;
    assert_eq!(m["twoFactorEnabled"], json!(true));
    assert_eq!(m["scheduledChanges"], json!(1));
    let r = http.get("/api/2fa/authenticators", Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let changes = r.json["scheduledChanges"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{r:?}");
    assert_eq!(changes[0]["kind"], json!("disable"), "{r:?}");
    assert_eq!(r.json["applied"], json!([]), "{r:?}");
    let ch = challenge(&http, email).await;
    let r = code_step(&http, &ch, &new_codes[2]).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "2FA still asked for and met: {r:?}"
    );
    // Bob's first app turns it off at once (the step after his login's).
    let r = http
        .post(
            "/api/2fa/disable",
            Some(&bob_token),
            json!({"code": totp_at(&bob_secret, unix_now() + 30)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let m = me(&http, &bob_token).await;
    assert_eq!(m["twoFactorEnabled"], json!(false));
    assert_eq!(m["backupCodesRemaining"], json!(0));
    // Password alone logs in again.
    let r = http
        .post(
            "/api/login",
            None,
            json!({"email": bob, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(r.json.get("token").is_some());

    // Log out: the token stops working.
    let r = http
        .raw(Method::POST, "/api/logout", Some(&token), None, Vec::new())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(
        http.get("/api/me", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Nothing secret reached the logs (which run at debug level here).
    let log2 = server.log_text();
    for log in [&log1, &log2] {
        assert!(
            log.contains("/api/login/2fa"),
            "request log missing:\n{log}"
        );
        for s in &secrets_seen {
            assert!(!log.contains(s.as_str()), "a secret value is in the log");
        }
        assert!(!log.contains(&code), "a TOTP code is in the log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn full_flow_on_sqlite() {
    let dir = TempDir::new("server-flow");
    full_flow(&sqlite_url(&dir), &dir).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn full_flow_on_postgres() {
    if !switch_on("TWOFACTOR_TEST_POSTGRES_URL", "server test on PostgreSQL") {
        return;
    }
    let admin = std::env::var("TWOFACTOR_TEST_POSTGRES_URL").unwrap();
    let db = PgTestDb::create(&admin, "flow").await;
    let dir = TempDir::new("server-pg-flow");
    full_flow(&db.url, &dir).await;
    db.drop_db().await;
}

/// Every kind of bad input gets a 4xx with a JSON `{error}`, never a 5xx.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_4xx_json() {
    let dir = TempDir::new("server-bad-input");
    let server = Server::start(dir.path(), &sqlite_url(&dir));
    let http = Http::new(&server.base);
    let token = signup_and_login(&http, "bob@example.com").await;

    let json_ct = Some("application/json");
    // (name, path, content type, body, expected status)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, StatusCode);
    let cases: Vec<Case> = vec![
        (
            "malformed",
            "/api/login",
            json_ct,
            b"{\"email\": ".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "not json",
            "/api/signup",
            json_ct,
            b"email=a&password=b".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "trailing junk",
            "/api/login",
            json_ct,
            b"{\"email\":\"a@b\",\"password\":\"x\"} x".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong type",
            "/api/login",
            json_ct,
            br#"{"email": 5, "password": "x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong type code",
            "/api/login/2fa",
            json_ct,
            br#"{"challenge": "x", "code": 123456}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "array body",
            "/api/signup",
            json_ct,
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "null body",
            "/api/signup",
            json_ct,
            b"null".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "missing field",
            "/api/signup",
            json_ct,
            br#"{"email": "x@y.z"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "missing code",
            "/api/login/2fa",
            json_ct,
            br#"{"challenge": "x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "empty body",
            "/api/login",
            json_ct,
            Vec::new(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "no content type",
            "/api/login",
            None,
            br#"{"email":"a@b","password":"x"}"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "invalid utf-8",
            "/api/login",
            json_ct,
            b"{\"email\": \"\xff\xfe\", \"password\": \"x\"}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad email",
            "/api/signup",
            json_ct,
            br#"{"email": "no-at-sign", "password": "long enough"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "short password",
            "/api/signup",
            json_ct,
            br#"{"email": "c@d.e", "password": "short"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "oversized",
            "/api/signup",
            json_ct,
            {
                let mut b = br#"{"email": "big@example.com", "password": ""#.to_vec();
                b.extend(std::iter::repeat_n(b'a', 70 * 1024));
                b.extend(br#""}"#);
                b
            },
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (name, path, ct, body, expected) in cases {
        let r = http.raw(Method::POST, path, None, ct, body).await;
        assert_eq!(r.status, expected, "{name}: {r:?}");
        assert!(!r.error().is_empty(), "{name}: no error text");
        assert!(
            !r.error().contains("struct "),
            "{name}: Rust type names leak: {r:?}"
        );
    }
    // Messages say what is wrong.
    let r = http
        .post("/api/signup", None, json!({"email": "x@y.z"}))
        .await;
    assert_eq!(r.error(), "missing field `password`");
    let r = http.post("/api/signup", None, json!("text")).await;
    assert_eq!(r.error(), "the body must be a JSON object");
    let r = http
        .post("/api/login", None, json!({"email": 5, "password": "x"}))
        .await;
    assert_eq!(r.error(), "wrong type: expected a string");
    // Authenticated endpoints too, and values are never echoed back.
    let r = http
        .raw(
            Method::POST,
            "/api/2fa/verify-setup",
            Some(&token),
            json_ct,
            br#"{"code": 987654}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert!(
        !r.text.contains("987654"),
        "the value was echoed: {}",
        r.text
    );
    let r = http
        .raw(
            Method::POST,
            "/api/2fa/verify-setup",
            Some(&token),
            json_ct,
            br#"{"code": "123456"}"#.to_vec(),
        )
        .await;
    assert!(
        r.status.is_client_error(),
        "verify-setup with no pending setup: {r:?}"
    );
    assert!(!r.error().is_empty());
    // Unknown route and wrong method.
    let r = http.get("/api/nope", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.error().is_empty());
    let r = http.get("/api/login", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!r.error().is_empty());
    // Malformed Authorization headers.
    for header in [
        "",
        "Bearer",
        "Bearer ",
        "Basic abc",
        "bearer x y",
        &token[1..],
    ] {
        let r = http.get_with_authorization("/api/me", header).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{header:?}");
    }
    // The page itself.
    let r = http.get("/", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("id=\"signup-form\""));
    // Still alive and well.
    assert_eq!(me(&http, &token).await["email"], json!("bob@example.com"));
}

/// The issue's typos on the second step: each is a 400 that says what a code looks like and
/// spends nothing, and the right code then logs in (before: 429 for ten minutes).
#[tokio::test(flavor = "multi_thread")]
async fn typos_on_the_second_step_cost_nothing() {
    let dir = TempDir::new("server-typos");
    let server = Server::start(dir.path(), &sqlite_url(&dir));
    let http = Http::new(&server.base);
    let email = "tia@example.com";
    let token = signup_and_login(&http, email).await;
    let (secret, _) = enrol(&http, &token).await;
    let ch = challenge(&http, email).await;
    for typo in [
        "abc",
        "",
        "12345",
        "1234567",
        "12 34 5x",
        "AAAAA-BBBB",
        "12345678901",
    ] {
        let r = code_step(&http, &ch, typo).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{typo:?}: {r:?}");
        assert!(r.error().contains("6-digit code"), "{r:?}");
    }
    let r = http
        .post(
            "/api/2fa/disable",
            Some(&token),
            json!({"code": "12 34 5x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert!(r.error().contains("6-digit code"), "{r:?}");
    let r = code_step(&http, &ch, &totp_at(&secret, unix_now())).await;
    assert_eq!(r.status, StatusCode::OK, "the owner gets in: {r:?}");
}

/// Five wrong codes, then even a valid code gets 429 with Retry-After, on every path that
/// checks a code, backup codes included (one budget per user: the service's design).
#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_applies_even_to_a_valid_code() {
    let dir = TempDir::new("server-limit");
    let server = Server::start(dir.path(), &sqlite_url(&dir));
    let http = Http::new(&server.base);
    let email = "carol@example.com";
    let token = signup_and_login(&http, email).await;
    let (secret, codes) = enrol(&http, &token).await;
    let ch = challenge(&http, email).await;
    let valid = totp_at(&secret, unix_now());
    let wrong = if valid == "000000" {
        "111111"
    } else {
        "000000"
    };
    for i in 0..5 {
        let r = code_step(&http, &ch, wrong).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}: {r:?}");
    }
    let r = code_step(&http, &ch, &valid).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    let wait = r.retry_after().expect("Retry-After header");
    assert!(wait > 0 && wait <= 600, "Retry-After {wait}");
    assert_eq!(r.json["retryAfter"], json!(wait));
    assert!(!r.error().is_empty());
    // The one-step login and the authenticated endpoints share the limit.
    let r = http
        .post(
            "/api/login",
            None,
            json!({"email": email, "password": PASSWORD, "totpCode": valid}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    assert!(r.retry_after().is_some());
    for path in ["/api/2fa/disable", "/api/2fa/backup-codes"] {
        let r = http.post(path, Some(&token), json!({"code": valid})).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{path}: {r:?}");
        assert!(r.retry_after().is_some());
    }
    assert_eq!(me(&http, &token).await["twoFactorEnabled"], json!(true));

    // Backup codes share the user's budget: a valid one is refused with 429 too, and stays
    // unused.
    let r = code_step(&http, &ch, &codes[0]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    assert!(r.retry_after().is_some());
    assert_eq!(me(&http, &token).await["backupCodesRemaining"], json!(8));
}

/// Five parallel requests with one valid code: exactly one 200, on one challenge and on five.
#[tokio::test(flavor = "multi_thread")]
async fn parallel_logins_with_one_code_let_exactly_one_in() {
    let dir = TempDir::new("server-race");
    let server = Server::start(dir.path(), &sqlite_url(&dir));
    let http = Http::new(&server.base);
    for (n, same_challenge) in [(0, false), (1, true)] {
        let email = format!("dave{n}@example.com");
        let token = signup_and_login(&http, &email).await;
        let (secret, _) = enrol(&http, &token).await;
        let code = totp_at(&secret, unix_now());
        let mut chs = Vec::new();
        for _ in 0..5 {
            chs.push(challenge(&http, &email).await);
        }
        let tasks: Vec<_> = (0..5)
            .map(|i| {
                let http = http.clone();
                let ch = if same_challenge {
                    chs[0].clone()
                } else {
                    chs[i].clone()
                };
                let code = code.clone();
                tokio::spawn(async move { code_step(&http, &ch, &code).await })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            let r = t.await.unwrap();
            match r.status {
                StatusCode::OK => ok += 1,
                StatusCode::UNAUTHORIZED => {}
                other => panic!("unexpected {other}: {r:?}"),
            }
        }
        assert_eq!(ok, 1, "same_challenge={same_challenge}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_zero_promptly() {
    let dir = TempDir::new("server-sigterm");
    let mut server = Server::start(dir.path(), &sqlite_url(&dir));
    let http = Http::new(&server.base);
    assert_eq!(http.get("/", None).await.status, StatusCode::OK);
    let started = Instant::now();
    let status = server
        .terminate(Duration::from_secs(10))
        .expect("still running 10 s after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(server.log_text().contains("shut down cleanly"));
}

/// Starts the example without `TWOFACTOR_KEY` (stdout and stderr piped).
fn spawn_without_key(dir: &std::path::Path, url: &str) -> std::process::Child {
    std::process::Command::new(server_common::server_binary())
        .current_dir(dir)
        .env("TWOFACTOR_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", url)
        .env_remove("TWOFACTOR_KEY")
        .env_remove("TWOFACTOR_BACKUP_PEPPER")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs the example without a key until it listens, then stops it; returns its stderr.
fn run_until_listening(dir: &std::path::Path, url: &str) -> String {
    use std::io::BufRead as _;
    let mut child = spawn_without_key(dir, url);
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on "), "{line:?}");
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Without TWOFACTOR_KEY the demo creates a key file (0600) once, says so, and reuses it.
#[test]
fn demo_key_file_is_created_once() {
    let dir = TempDir::new("server-keyfile");
    let url = sqlite_url(&dir);
    let key_path = dir.path().join("twofactor-demo.key");
    let stderr = run_until_listening(dir.path(), &url);
    let key = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(key.trim().len(), 64);
    assert!(stderr.contains("TWOFACTOR_KEY is not set"), "{stderr}");
    assert!(
        stderr.contains("generated a NEW encryption key"),
        "{stderr}"
    );
    assert!(!stderr.contains(key.trim()), "the key was printed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let stderr = run_until_listening(dir.path(), &url);
    assert!(!stderr.contains("generated a NEW"), "{stderr}");
    assert!(stderr.contains("using the demo key"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), key);
}

/// Runs the example with `env` until it exits (it must fail at start-up); returns its stderr.
fn start_failure(env: &[(&str, &str)]) -> String {
    let dir = TempDir::new("server-config");
    let mut cmd = std::process::Command::new(server_common::server_binary());
    cmd.current_dir(dir.path())
        .env("TWOFACTOR_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", sqlite_url(&dir))
        .env_remove("TWOFACTOR_KEY")
        .env_remove("TWOFACTOR_BACKUP_PEPPER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "started with {env:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Bad configuration stops the server at start with a message in words that never repeats a
/// key; the key ring format works with a separate pepper.
#[tokio::test(flavor = "multi_thread")]
async fn configuration_errors_are_clear_and_key_rings_work() {
    let key = server_common::TEST_KEY;
    let ring = format!("1:{},2:{};current=2", "11".repeat(32), "22".repeat(32));
    let err = start_failure(&[("TWOFACTOR_KEY", &ring)]);
    assert!(err.contains("TWOFACTOR_BACKUP_PEPPER"), "{err}");
    let bad_hex = format!("{}zz", "ab".repeat(31));
    let err = start_failure(&[("TWOFACTOR_KEY", &bad_hex)]);
    assert!(err.contains("TWOFACTOR_KEY"), "{err}");
    assert!(!err.contains(&bad_hex), "the key was printed: {err}");
    let err = start_failure(&[("TWOFACTOR_KEY", "1:short")]);
    assert!(err.contains("TWOFACTOR_KEY"), "{err}");
    let err = start_failure(&[("TWOFACTOR_KEY", key), ("TWOFACTOR_BACKUP_PEPPER", "xyz")]);
    assert!(err.contains("TWOFACTOR_BACKUP_PEPPER"), "{err}");
    let err = start_failure(&[("TWOFACTOR_KEY", key), ("DATABASE_URL", "mysql://x")]);
    assert!(err.contains("DATABASE_URL"), "{err}");
    let err = start_failure(&[("TWOFACTOR_KEY", key), ("TWOFACTOR_ADDR", "nonsense")]);
    assert!(err.contains("TWOFACTOR_ADDR"), "{err}");

    // A key ring with a pepper: enrolment and login work.
    let dir = TempDir::new("server-ring");
    let pepper = "33".repeat(32);
    let server = Server::start_with(
        dir.path(),
        &sqlite_url(&dir),
        &[
            ("TWOFACTOR_KEY", &ring),
            ("TWOFACTOR_BACKUP_PEPPER", &pepper),
        ],
    );
    let http = Http::new(&server.base);
    let email = "ivan@example.com";
    let token = signup_and_login(&http, email).await;
    let (_, codes) = enrol(&http, &token).await;
    let ch = challenge(&http, email).await;
    let r = code_step(&http, &ch, &codes[0]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

/// Two server processes on one PostgreSQL database behave as one.
#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_one_postgres_behave_as_one() {
    if !switch_on("TWOFACTOR_TEST_POSTGRES_URL", "two-server PostgreSQL test") {
        return;
    }
    let admin = std::env::var("TWOFACTOR_TEST_POSTGRES_URL").unwrap();
    let db = PgTestDb::create(&admin, "two").await;
    let dir = TempDir::new("server-pg-two");
    let a = Server::start(dir.path(), &db.url);
    let b = Server::start(dir.path(), &db.url);
    let (ha, hb) = (Http::new(&a.base), Http::new(&b.base));
    let email = "erin@example.com";
    let token = signup_and_login(&ha, email).await;
    // A session made by A works on B.
    assert_eq!(me(&hb, &token).await["email"], json!(email));
    let (secret, codes) = enrol(&ha, &token).await;

    // A code accepted by A is refused by B; a challenge from A works on B.
    let code = totp_at(&secret, unix_now());
    let ch = challenge(&ha, email).await;
    let r = code_step(&hb, &ch, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let ch = challenge(&hb, email).await;
    let r = code_step(&ha, &ch, &code).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "replay across servers: {r:?}"
    );
    // A backup code used on B is gone on A.
    let ch = challenge(&hb, email).await;
    let r = code_step(&hb, &ch, &codes[0]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let ch = challenge(&ha, email).await;
    let r = code_step(&ha, &ch, &codes[0]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");

    // Limits count across both: failures alternate between A and B, then both say 429.
    let email2 = "frank@example.com";
    let token2 = signup_and_login(&ha, email2).await;
    let (secret2, _) = enrol(&hb, &token2).await;
    let mut chs = Vec::new();
    for i in 0..6 {
        chs.push(challenge(if i % 2 == 0 { &ha } else { &hb }, email2).await);
    }
    let valid = totp_at(&secret2, unix_now());
    let wrong = if valid == "000000" {
        "111111"
    } else {
        "000000"
    };
    for (i, ch) in chs.iter().take(5).enumerate() {
        let h = if i % 2 == 0 { &ha } else { &hb };
        let r = code_step(h, ch, wrong).await;
        assert!(r.status.is_client_error(), "{r:?}");
    }
    let r = code_step(&ha, &chs[5], &valid).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    let r = hb
        .post(
            "/api/login",
            None,
            json!({"email": email2, "password": PASSWORD, "totpCode": valid}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    drop((a, b));
    db.drop_db().await;
}

// ---- Several authenticators, a new phone, trusted browsers (issue 15). ----

/// A desktop Chrome's `User-Agent`.
const CHROME_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like \
                            Gecko) Chrome/131.0.0.0 Safari/537.36";

/// Signs up, logs in and starts the setup; returns (session, secret). Confirm it yourself.
async fn signup_and_setup(http: &Http, email: &str) -> (String, String) {
    let token = signup_and_login(http, email).await;
    let r = http.post("/api/2fa/setup", Some(&token), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    (token, r.str("secret"))
}

/// Signs up and turns 2FA on with the code of the step before now, early in a step (so the
/// codes of steps t-1, t and t+1 stay valid for a while); returns (session, secret, backup
/// codes, t).
async fn enrolled_at_step_start(http: &Http, email: &str) -> (String, String, Vec<String>, u64) {
    let (token, secret) = signup_and_setup(http, email).await;
    wait_for_step_room(25);
    let t = unix_now();
    let r = http
        .post(
            "/api/2fa/verify-setup",
            Some(&token),
            json!({"code": totp_at(&secret, t - 30)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let codes = backup_codes(&r);
    (token, secret, codes, t)
}

/// Password step and code step (no device cookie, nothing remembered).
async fn login_with_code(http: &Http, email: &str, code: &str) -> Resp {
    let ch = challenge(http, email).await;
    http.post(
        "/api/login/2fa",
        None,
        json!({"challenge": ch, "code": code, "email": email}),
    )
    .await
}

/// The user's authenticators: (id, name) oldest first.
async fn authenticators(http: &Http, token: &str) -> Vec<(String, String)> {
    let r = http.get("/api/2fa/authenticators", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json["max"], json!(5), "{r:?}");
    r.json["authenticators"]
        .as_array()
        .unwrap_or_else(|| panic!("no list in {r:?}"))
        .iter()
        .map(|a| {
            assert!(a["createdAt"].as_u64().unwrap() > 0, "{a}");
            assert!(a.get("secret").is_none(), "{a}");
            (
                a["id"].as_str().unwrap().to_owned(),
                a["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Names a request may not set, each refused with 400 before any code is looked at.
fn bad_names() -> Vec<String> {
    vec![
        String::new(),
        "   ".into(),
        "x".repeat(65),
        "é".repeat(65),
        "bell\u{7}".into(),
        "two\nlines".into(),
        "nul\u{0}".into(),
        "del\u{7f}".into(),
    ]
}

/// Adding a second app, logging in with each, removing one (a code from another factor only),
/// the last one staying, and bad input: all through the API.
async fn authenticators_flow(database_url: &str, dir: &TempDir) {
    let server = Server::start(dir.path(), database_url);
    let http = Http::new(&server.base);
    let email = "mia@example.com";
    // Every code below is of step T-1, T or T+1: valid while the server is in step T or T+1.
    let (token, s1, codes, t) = enrolled_at_step_start(&http, email).await;
    let list = authenticators(&http, &token).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].1, "Authenticator app");
    let id1 = list[0].0.clone();

    // Bad names are refused first (no code spent); so are missing fields and wrong types.
    for name in bad_names() {
        let r = http
            .post(
                "/api/2fa/authenticators/add",
                Some(&token),
                json!({"name": name, "code": codes[0]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name:?}: {r:?}");
        assert!(r.error().contains("64 characters"), "{r:?}");
        let r = http
            .post(
                "/api/2fa/authenticators/rename",
                Some(&token),
                json!({"id": id1, "name": name}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name:?}: {r:?}");
    }
    for (path, body, field) in [
        (
            "/api/2fa/authenticators/add",
            json!({"code": "123456"}),
            "name",
        ),
        ("/api/2fa/authenticators/add", json!({"name": "x"}), "code"),
        ("/api/2fa/authenticators/rename", json!({"name": "x"}), "id"),
        ("/api/2fa/authenticators/remove", json!({"id": id1}), "code"),
        (
            "/api/2fa/authenticators/replace",
            json!({"id": id1, "code": "123456"}),
            "name",
        ),
        ("/api/2fa/authenticators/confirm", json!({}), "code"),
        ("/api/2fa/trusted-devices/revoke", json!({}), "id"),
    ] {
        let r = http.post(path, Some(&token), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {r:?}");
        assert_eq!(r.error(), format!("missing field `{field}`"), "{path}");
    }
    let r = http
        .post(
            "/api/2fa/authenticators/rename",
            Some(&token),
            json!({"id": 7, "name": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    // Without a session: 401 on every route.
    for path in [
        "/api/2fa/authenticators/add",
        "/api/2fa/authenticators/confirm",
        "/api/2fa/authenticators/rename",
        "/api/2fa/authenticators/remove",
        "/api/2fa/authenticators/replace",
        "/api/2fa/trusted-devices/revoke",
    ] {
        let r = http
            .post(
                path,
                None,
                json!({"id": id1, "name": "x", "code": codes[0]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {r:?}");
    }
    for path in ["/api/2fa/authenticators", "/api/2fa/trusted-devices"] {
        assert_eq!(
            http.get(path, Some("bogus")).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Unknown ids: 404, whatever their length.
    for id in ["nope".to_owned(), "A".repeat(22), "x".repeat(5000)] {
        let r = http
            .post(
                "/api/2fa/authenticators/rename",
                Some(&token),
                json!({"id": id, "name": "x"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{r:?}");
        assert!(r.error().contains("no authenticator"), "{r:?}");
        for path in [
            "/api/2fa/authenticators/remove",
            "/api/2fa/authenticators/replace",
        ] {
            let r = http
                .post(
                    path,
                    Some(&token),
                    json!({"id": id, "name": "x", "code": codes[0]}),
                )
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {r:?}");
        }
        let r = http
            .post(
                "/api/2fa/trusted-devices/revoke",
                Some(&token),
                json!({"id": id}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{r:?}");
    }
    // Nothing pending to confirm: a code is refused like a wrong one.
    let r = http
        .post(
            "/api/2fa/authenticators/confirm",
            Some(&token),
            json!({"code": totp_at(&s1, t)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");

    // Add a second app with a backup code; the new app's code (of step T-1) confirms it. A
    // second later than the first, so the first is the oldest (a tie is broken by id).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = http
        .post(
            "/api/2fa/authenticators/add",
            Some(&token),
            json!({"name": "  Work phone ", "code": codes[0]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let s2 = r.str("secret");
    assert_ne!(s2, s1);
    assert!(r.str("qrSvg").contains("<svg"));
    assert!(r.str("otpauthUri").starts_with("otpauth://totp/"));
    // Pending: not listed, not counted, its codes log nobody in yet.
    assert_eq!(authenticators(&http, &token).await.len(), 1);
    let r = http
        .post(
            "/api/2fa/authenticators/confirm",
            Some(&token),
            json!({"code": totp_at(&s2, t - 30)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let id2 = r.str("authenticator");
    assert_eq!(r.json["replaced"], Value::Null);
    assert!(r.json.get("backupCodes").is_none(), "{r:?}");
    // Oldest first; the two may share a second (then the store orders them by id).
    let mut list = authenticators(&http, &token).await;
    list.sort();
    let mut expected = vec![
        (id1.clone(), "Authenticator app".to_owned()),
        (id2.clone(), "Work phone".to_owned()),
    ];
    expected.sort();
    assert_eq!(list, expected);
    let m = me(&http, &token).await;
    assert_eq!(m["authenticators"], json!(2));
    assert_eq!(m["backupCodesRemaining"], json!(7), "the backup codes stay");

    // Rename.
    let r = http
        .post(
            "/api/2fa/authenticators/rename",
            Some(&token),
            json!({"id": id1, "name": "Home phone"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(
        authenticators(&http, &token)
            .await
            .contains(&(id1.clone(), "Home phone".to_owned()))
    );

    // Removing the work phone with one of its own codes is refused, and the code stays unused.
    let s2_now = totp_at(&s2, t);
    let r = http
        .post(
            "/api/2fa/authenticators/remove",
            Some(&token),
            json!({"id": id2, "code": s2_now}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert!(r.error().contains("another app"), "{r:?}");
    assert_eq!(authenticators(&http, &token).await.len(), 2);
    // Log in with each app.
    let r = login_with_code(&http, email, &s2_now).await;
    assert_eq!(r.status, StatusCode::OK, "work phone: {r:?}");
    let r = login_with_code(&http, email, &totp_at(&s1, t)).await;
    assert_eq!(r.status, StatusCode::OK, "home phone: {r:?}");
    // A backup code only schedules the work phone's removal: 202, and it stays listed.
    let r = http
        .post(
            "/api/2fa/authenticators/remove",
            Some(&token),
            json!({"id": id2, "code": codes[2]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{r:?}");
    assert_eq!(r.json["scheduled"], json!(true), "{r:?}");
    assert_eq!(r.json["removed"], json!(false), "{r:?}");
    let not_before = r.json["notBefore"].as_u64().expect("notBefore");
    assert!(not_before >= unix_now() + 71 * 3600, "{r:?}");
    let change_id = r.str("changeId");
    assert_eq!(authenticators(&http, &token).await.len(), 2);
    let r = http.get("/api/2fa/authenticators", Some(&token)).await;
    assert_eq!(
        r.json["scheduledChanges"],
        json!([{
            "id": change_id,
            "kind": "remove_authenticator",
            "authenticator": id2,
            "requestedAt": r.json["scheduledChanges"][0]["requestedAt"],
            "notBefore": not_before,
        }]),
        "{r:?}"
    );
    // The first app is established; the work phone is new for 72 hours.
    for a in r.json["authenticators"].as_array().unwrap() {
        if a["id"] == json!(id1) {
            assert_eq!(a["newUntil"], Value::Null, "{a}");
        } else {
            assert!(
                a["newUntil"].as_u64().unwrap() >= unix_now() + 71 * 3600,
                "{a}"
            );
        }
    }
    assert_eq!(me(&http, &token).await["scheduledChanges"], json!(1));
    // A code from the home phone removes the work phone at once.
    let r = http
        .post(
            "/api/2fa/authenticators/remove",
            Some(&token),
            json!({"id": id2, "code": totp_at(&s1, t + 30)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(
        authenticators(&http, &token).await,
        vec![(id1.clone(), "Home phone".to_owned())]
    );
    let m = me(&http, &token).await;
    assert_eq!(m["authenticators"], json!(1));
    assert_eq!(m["scheduledChanges"], json!(0));
    // Its codes no longer log in (this one was never used).
    let r = login_with_code(&http, email, &totp_at(&s2, t + 30)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "removed app: {r:?}");
    // The last app stays (turning 2FA off removes it), and the backup code is not spent.
    let r = http
        .post(
            "/api/2fa/authenticators/remove",
            Some(&token),
            json!({"id": id1, "code": codes[1]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    assert!(r.error().contains("only authenticator"), "{r:?}");
    assert_eq!(me(&http, &token).await["backupCodesRemaining"], json!(6));
    // Removing what was already removed: 404.
    let r = http
        .post(
            "/api/2fa/authenticators/remove",
            Some(&token),
            json!({"id": id2, "code": codes[1]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{r:?}");

    // Another user's authenticator is nobody's as far as this user is concerned.
    let other = "ned@example.com";
    let other_token = signup_and_login(&http, other).await;
    enrol(&http, &other_token).await;
    let r = http
        .post(
            "/api/2fa/authenticators/rename",
            Some(&other_token),
            json!({"id": id1, "name": "mine now"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{r:?}");
    assert_eq!(authenticators(&http, &token).await[0].1, "Home phone");
    // Adding without 2FA on: 409.
    let plain = signup_and_login(&http, "olga@example.com").await;
    let r = http
        .post(
            "/api/2fa/authenticators/add",
            Some(&plain),
            json!({"name": "x", "code": "123456"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    assert!(authenticators(&http, &plain).await.is_empty());
    assert!(!server.log_text().contains(&s2), "a secret in the log");
}

/// A new phone: the old phone's code (or a backup code) starts it, the new phone's code
/// confirms it, and then exactly one app is left and the old phone's codes are refused. Also
/// the limit of five apps, which a replacement does not hit.
async fn replace_flow(database_url: &str, dir: &TempDir) {
    let server = Server::start(dir.path(), database_url);
    let http = Http::new(&server.base);
    let email = "pia@example.com";
    let (token, old, codes, t) = enrolled_at_step_start(&http, email).await;
    let old_id = authenticators(&http, &token).await[0].0.clone();

    // A wrong code starts nothing.
    let valid = totp_at(&old, t);
    let wrong = if valid == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = http
        .post(
            "/api/2fa/authenticators/replace",
            Some(&token),
            json!({"id": old_id, "name": "New phone", "code": wrong}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    let r = http
        .post(
            "/api/2fa/authenticators/confirm",
            Some(&token),
            json!({"code": valid}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "nothing pending: {r:?}");
    // The old phone's code starts the replacement.
    let r = http
        .post(
            "/api/2fa/authenticators/replace",
            Some(&token),
            json!({"id": old_id, "name": "New phone", "code": valid}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let new = r.str("secret");
    // Until confirmed, the old phone is the one listed.
    assert_eq!(authenticators(&http, &token).await.len(), 1);
    let r = http
        .post(
            "/api/2fa/authenticators/confirm",
            Some(&token),
            json!({"code": totp_at(&new, t - 30)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json["replaced"], json!(old_id));
    let new_id = r.str("authenticator");
    assert_eq!(
        authenticators(&http, &token).await,
        vec![(new_id.clone(), "New phone".to_owned())]
    );
    assert_eq!(me(&http, &token).await["authenticators"], json!(1));
    // The old phone's next code (never used) is refused; the new phone's works.
    let r = login_with_code(&http, email, &totp_at(&old, t + 30)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "old phone: {r:?}");
    let r = login_with_code(&http, email, &totp_at(&new, t)).await;
    assert_eq!(r.status, StatusCode::OK, "new phone: {r:?}");

    // A backup code starts a replacement too, but the old phone's removal is only scheduled:
    // after the confirmation both are listed.
    let r = http
        .post(
            "/api/2fa/authenticators/replace",
            Some(&token),
            json!({"id": new_id, "name": "Spare phone", "code": codes[0]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let removal = &r.json["scheduledRemoval"];
    assert!(
        removal["notBefore"].as_u64().unwrap() >= unix_now() + 71 * 3600,
        "{r:?}"
    );
    let spare = r.str("secret");
    let r = http
        .post(
            "/api/2fa/authenticators/confirm",
            Some(&token),
            json!({"code": totp_at(&spare, unix_now())}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json["replaced"], Value::Null, "{r:?}");
    assert_eq!(authenticators(&http, &token).await.len(), 2);
    let r = http.get("/api/2fa/authenticators", Some(&token)).await;
    assert_eq!(
        r.json["scheduledChanges"][0]["authenticator"],
        json!(new_id),
        "{r:?}"
    );

    // Up to five apps (each started with a backup code, confirmed by its own code); a sixth
    // is refused before any code is spent; at the limit a backup code cannot replace one (its
    // replacement would add now and remove later). A code of the established phone could, but
    // with five apps each TOTP guess weighs five on the user's budget, which the failures above
    // already hold.
    for (i, code) in codes.iter().skip(1).take(3).enumerate() {
        let r = http
            .post(
                "/api/2fa/authenticators/add",
                Some(&token),
                json!({"name": format!("Tablet {i}"), "code": code}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        let secret = r.str("secret");
        let r = http
            .post(
                "/api/2fa/authenticators/confirm",
                Some(&token),
                json!({"code": totp_at(&secret, unix_now())}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
    }
    assert_eq!(authenticators(&http, &token).await.len(), 5);
    let r = http
        .post(
            "/api/2fa/authenticators/add",
            Some(&token),
            json!({"name": "Sixth", "code": codes[4]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    assert!(r.error().contains("most authenticators"), "{r:?}");
    assert_eq!(me(&http, &token).await["backupCodesRemaining"], json!(4));
    let r = http
        .post(
            "/api/2fa/authenticators/replace",
            Some(&token),
            json!({"id": new_id, "name": "Newer phone", "code": codes[4]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    assert!(r.error().contains("app you have had longer"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn several_authenticators_on_sqlite() {
    let dir = TempDir::new("server-authenticators");
    authenticators_flow(&sqlite_url(&dir), &dir).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn new_phone_on_sqlite() {
    let dir = TempDir::new("server-replace");
    replace_flow(&sqlite_url(&dir), &dir).await;
}

/// The device cookie a response sets: `name=value` (its attributes checked).
fn set_device_cookie(r: &Resp) -> String {
    let set = r
        .headers
        .get_all(axum::http::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("tf_device_"))
        .unwrap_or_else(|| panic!("no device cookie in {r:?}"));
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/api;",
        "Max-Age=7776000",
    ] {
        assert!(set.contains(attribute), "{set}");
    }
    set.split(';').next().unwrap().to_owned()
}

/// Both login steps with "remember this browser" ticked, from Chrome on Linux holding `cookie`
/// (the browser's device cookie, or `""`); returns the new cookie.
async fn log_in_remembering(
    http: &Http,
    email: &str,
    password: &str,
    code: &str,
    cookie: &str,
) -> String {
    let ch = password_step(http, email, password, cookie)
        .await
        .expect_err("a code must be asked");
    let r = http
        .post_with(
            "/api/login/2fa",
            None,
            &[("user-agent", CHROME_LINUX), ("cookie", cookie)],
            json!({"challenge": ch, "code": code, "email": email, "remember": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    set_device_cookie(&r)
}

/// The password step with this cookie: `Ok(session)` when the browser is trusted,
/// `Err(challenge)` when a code is asked.
async fn password_step(
    http: &Http,
    email: &str,
    password: &str,
    cookie: &str,
) -> Result<String, String> {
    let r = http
        .post_with(
            "/api/login",
            None,
            &[("cookie", cookie)],
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    if r.json["requiresTwoFactor"] == json!(true) {
        assert!(r.json.get("token").is_none());
        Err(r.str("challenge"))
    } else {
        assert_eq!(r.json["trustedBrowser"], json!(true), "{r:?}");
        Ok(r.str("token"))
    }
}

/// The trusted browsers: (id, label).
async fn trusted(http: &Http, token: &str) -> Vec<(String, String)> {
    let r = http.get("/api/2fa/trusted-devices", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    r.json["devices"]
        .as_array()
        .unwrap_or_else(|| panic!("no list in {r:?}"))
        .iter()
        .map(|d| {
            let since = d["createdAt"].as_u64().unwrap();
            assert_eq!(d["trustedUntil"].as_u64().unwrap() - since, 30 * 24 * 3600);
            assert!(d["lastUsedAt"].as_u64().unwrap() >= since);
            (
                d["id"].as_str().unwrap().to_owned(),
                d["label"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// "Remember this browser": the password alone logs in until the browser is revoked, the
/// password changes or 2FA is turned off; forged and foreign cookies are ignored.
async fn trusted_browser_flow(database_url: &str, dir: &TempDir) {
    let server = Server::start(dir.path(), database_url);
    let http = Http::new(&server.base);
    let email = "nora@example.com";
    let token = signup_and_login(&http, email).await;
    let (first_secret, codes) = enrol(&http, &token).await;
    assert!(trusted(&http, &token).await.is_empty());

    // Without "remember", the browser gets a known token, which skips nothing.
    let r = challenge(&http, email).await;
    let r = http
        .post(
            "/api/login/2fa",
            None,
            json!({"challenge": r, "code": codes[0], "email": email}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let known = set_device_cookie(&r);
    assert!(password_step(&http, email, PASSWORD, &known).await.is_err());
    assert!(trusted(&http, &token).await.is_empty());
    // `remember` must be a boolean.
    let ch = challenge(&http, email).await;
    let r = http
        .post(
            "/api/login/2fa",
            None,
            json!({"challenge": ch, "code": codes[1], "email": email, "remember": "yes"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");

    // Remembered: the password step alone logs in from this browser, and only from it.
    let cookie = log_in_remembering(&http, email, PASSWORD, &codes[1], &known).await;
    assert_eq!(
        cookie.split('=').next(),
        known.split('=').next(),
        "one cookie per account and browser"
    );
    let session = password_step(&http, email, PASSWORD, &cookie)
        .await
        .expect("the trusted browser was asked for a code");
    assert_eq!(me(&http, &session).await["email"], json!(email));
    let list = trusted(&http, &token).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].1, "Chrome on Linux");
    let device_id = list[0].0.clone();
    // The list marks the browser that asks, and only that one.
    for (headers, mine) in [
        (vec![("cookie", cookie.as_str())], true),
        (vec![("cookie", known.as_str())], false),
        (vec![], false),
    ] {
        let r = http
            .get_with("/api/2fa/trusted-devices", Some(&session), &headers)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_eq!(
            r.json["devices"][0]["thisBrowser"],
            json!(mine),
            "{headers:?}"
        );
    }
    // The password is still checked.
    let r = http
        .post_with(
            "/api/login",
            None,
            &[("cookie", &cookie)],
            json!({"email": email, "password": "not the password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    // Another browser still needs a code; so does a forged cookie.
    let r = http
        .post(
            "/api/login",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.json["requiresTwoFactor"], json!(true), "{r:?}");
    let name = cookie.split('=').next().unwrap();
    let forged = format!("{name}=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert!(
        password_step(&http, email, PASSWORD, &forged)
            .await
            .is_err()
    );
    let oversized = format!("{name}={}", "A".repeat(4000));
    assert!(
        password_step(&http, email, PASSWORD, &oversized)
            .await
            .is_err()
    );

    // Another account's trusted token, under this account's cookie name or its own, is ignored.
    let other = "otto@example.com";
    let other_token = signup_and_login(&http, other).await;
    let (_, other_codes) = enrol(&http, &other_token).await;
    let other_cookie = log_in_remembering(&http, other, PASSWORD, &other_codes[0], "").await;
    let other_value = other_cookie.split_once('=').unwrap().1;
    assert!(
        password_step(&http, email, PASSWORD, &format!("{name}={other_value}"))
            .await
            .is_err()
    );
    assert!(
        password_step(&http, email, PASSWORD, &other_cookie)
            .await
            .is_err()
    );
    // Nor can this user revoke the other's browser.
    let other_device = trusted(&http, &other_token).await[0].0.clone();
    let r = http
        .post(
            "/api/2fa/trusted-devices/revoke",
            Some(&token),
            json!({"id": other_device}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{r:?}");
    assert!(
        password_step(&http, other, PASSWORD, &other_cookie)
            .await
            .is_ok()
    );

    // A hostile User-Agent makes a plain, short label.
    let ch = challenge(&http, other).await;
    let hostile = format!("<script>x</script>{}", "z".repeat(3000));
    let r = http
        .post_with(
            "/api/login/2fa",
            None,
            &[("user-agent", &hostile)],
            json!({"challenge": ch, "code": other_codes[1], "email": other, "remember": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let mut labels: Vec<String> = trusted(&http, &other_token)
        .await
        .into_iter()
        .map(|d| d.1)
        .collect();
    labels.sort();
    assert_eq!(labels, vec!["Chrome on Linux", "This browser"]);

    // Revoked: the next login from the browser asks for a code again.
    let r = http
        .post(
            "/api/2fa/trusted-devices/revoke",
            Some(&token),
            json!({"id": device_id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(trusted(&http, &token).await.is_empty());
    assert!(
        password_step(&http, email, PASSWORD, &cookie)
            .await
            .is_err()
    );
    let r = http
        .post(
            "/api/2fa/trusted-devices/revoke",
            Some(&token),
            json!({"id": device_id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{r:?}");

    // Trusted again, then the password changes: a code is asked again.
    let cookie = log_in_remembering(&http, email, PASSWORD, &codes[2], &cookie).await;
    assert!(password_step(&http, email, PASSWORD, &cookie).await.is_ok());
    let new_password = "a brand new password";
    let r = http
        .post(
            "/api/password",
            Some(&token),
            json!({"currentPassword": PASSWORD, "newPassword": new_password, "code": codes[3]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(trusted(&http, &token).await.is_empty());
    assert!(
        password_step(&http, email, new_password, &cookie)
            .await
            .is_err()
    );

    // Trusted again, then 2FA goes off and on again: a code is asked again.
    let cookie = log_in_remembering(&http, email, new_password, &codes[4], &cookie).await;
    assert!(
        password_step(&http, email, new_password, &cookie)
            .await
            .is_ok()
    );
    // With a code of the first app (none was used since the enrolment's): at once.
    let r = http
        .post(
            "/api/2fa/disable",
            Some(&token),
            json!({"code": totp_at(&first_secret, unix_now())}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = http.post("/api/2fa/setup", Some(&token), json!({})).await;
    let secret = r.str("secret");
    wait_for_step_room(8);
    let r = http
        .post(
            "/api/2fa/verify-setup",
            Some(&token),
            json!({"code": totp_at(&secret, unix_now())}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(
        password_step(&http, email, new_password, &cookie)
            .await
            .is_err()
    );
    assert!(trusted(&http, &token).await.is_empty());

    let log = server.log_text();
    assert!(log.contains("login from a trusted browser"), "{log}");
    for c in [&cookie, &other_cookie] {
        let value = c.split_once('=').unwrap().1;
        assert!(!log.contains(value), "a device token is in the log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_browsers_on_sqlite() {
    let dir = TempDir::new("server-trusted");
    trusted_browser_flow(&sqlite_url(&dir), &dir).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn several_authenticators_and_trusted_browsers_on_postgres() {
    if !switch_on("TWOFACTOR_TEST_POSTGRES_URL", "server test on PostgreSQL") {
        return;
    }
    let admin = std::env::var("TWOFACTOR_TEST_POSTGRES_URL").unwrap();
    let db = PgTestDb::create(&admin, "issue15").await;
    let dir = TempDir::new("server-pg-issue15");
    authenticators_flow(&db.url, &dir).await;
    db.drop_db().await;
    let db = PgTestDb::create(&admin, "issue15b").await;
    replace_flow(&db.url, &dir).await;
    db.drop_db().await;
    let db = PgTestDb::create(&admin, "issue15c").await;
    trusted_browser_flow(&db.url, &dir).await;
    db.drop_db().await;
}

// ---- Authenticator apps that ignore the QR code's parameters (issue 22). ----

/// The code of `secret` at `t` under `algorithm` / `digits` (30 s).
fn totp_with(secret: &str, t: u64, algorithm: twofactor::Algorithm, digits: u32) -> String {
    let secret = twofactor::Secret::from_base32(secret).unwrap();
    let totp = twofactor::Totp::builder(&secret)
        .algorithm(algorithm)
        .digits(digits)
        .build()
        .unwrap();
    totp.generate_at(t).unwrap().as_str().to_owned()
}

/// On a server configured with `algorithm` / `digits`: a setup confirmed with the SHA-1 / 6 / 30
/// code of its secret answers 409 with the offer and leaves 2FA off; setup with `defaults`
/// then enrols with SHA-1 / 6 / 30, whose code turns 2FA on and logs in. An app that reads the
/// settings still works, and the code of the ignored settings never logs in.
async fn ignored_settings_flow(algorithm: twofactor::Algorithm, digits: u32) {
    let dir = TempDir::new("server-ignored");
    let digits_env = digits.to_string();
    let server = Server::start_with(
        dir.path(),
        &sqlite_url(&dir),
        &[
            ("TWOFACTOR_TOTP_ALGORITHM", algorithm.as_str()),
            ("TWOFACTOR_TOTP_DIGITS", &digits_env),
        ],
    );
    let http = Http::new(&server.base);
    let email = format!("ignored-{}-{digits}@example.com", algorithm.as_str());
    let (token, secret) = signup_and_setup(&http, &email).await;
    wait_for_step_room(20);
    let t = unix_now();
    let r = http
        .post(
            "/api/2fa/verify-setup",
            Some(&token),
            json!({"code": totp_at(&secret, t)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    assert_eq!(r.json["offer"], json!("enrol-with-defaults"), "{r:?}");
    assert!(r.error().contains("ignored"), "{r:?}");
    assert_eq!(me(&http, &token).await["twoFactorEnabled"], json!(false));
    let r = server_common::login(&http, &email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(r.json.get("requiresTwoFactor").is_none(), "{r:?}");
    assert!(!r.str("token").is_empty());

    // Again with the standard settings: a new secret, SHA-1 / 6 / 30 in the URI.
    let r = http
        .post("/api/2fa/setup", Some(&token), json!({"defaults": true}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let uri = r.str("otpauthUri");
    for part in ["algorithm=SHA1", "digits=6", "period=30"] {
        assert!(uri.contains(part), "{uri}");
    }
    let secret2 = r.str("secret");
    assert_ne!(secret2, secret);
    let r = http
        .post(
            "/api/2fa/verify-setup",
            Some(&token),
            json!({"code": totp_at(&secret2, t - 30)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    backup_codes(&r);
    assert_eq!(me(&http, &token).await["twoFactorEnabled"], json!(true));
    let ch = challenge(&http, &email).await;
    let r = code_step(&http, &ch, &totp_at(&secret2, t)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");

    // An app that honours the settings: refused first with the ignored-settings code, it
    // confirms with its own; at login the ignored-settings code is refused, its own logs in.
    let email2 = format!("honours-{}-{digits}@example.com", algorithm.as_str());
    let token2 = signup_and_login(&http, &email2).await;
    let r = http.post("/api/2fa/setup", Some(&token2), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let uri = r.str("otpauthUri");
    assert!(
        uri.contains(&format!("algorithm={}", algorithm.as_str())),
        "{uri}"
    );
    assert!(uri.contains(&format!("digits={digits}")), "{uri}");
    let secret3 = r.str("secret");
    wait_for_step_room(10);
    let t = unix_now();
    let r = http
        .post(
            "/api/2fa/verify-setup",
            Some(&token2),
            json!({"code": totp_at(&secret3, t - 30)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    let r = http
        .post(
            "/api/2fa/verify-setup",
            Some(&token2),
            json!({"code": totp_with(&secret3, t - 30, algorithm, digits)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let ch = challenge(&http, &email2).await;
    let r = code_step(&http, &ch, &totp_at(&secret3, t)).await;
    assert_ne!(
        r.status,
        StatusCode::OK,
        "the ignored-settings code logged in: {r:?}"
    );
    assert!(r.json.get("token").is_none(), "{r:?}");
    if digits == 6 {
        // Well-formed, so evaluated and refused like any wrong code.
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    } else {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    }
    let r = code_step(&http, &ch, &totp_with(&secret3, t, algorithm, digits)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn app_ignoring_sha256_is_offered_defaults() {
    ignored_settings_flow(twofactor::Algorithm::Sha256, 6).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn app_ignoring_eight_digits_is_offered_defaults() {
    ignored_settings_flow(twofactor::Algorithm::Sha1, 8).await;
}

/// With the default parameters, `{"defaults": true}` is a normal setup, an empty body too; a
/// bad `defaults` is a 400 and bad TOTP settings stop the server at start.
#[tokio::test(flavor = "multi_thread")]
async fn setup_defaults_with_default_parameters_and_bad_totp_settings() {
    let key = server_common::TEST_KEY;
    for (name, value) in [
        ("TWOFACTOR_TOTP_ALGORITHM", "MD5"),
        ("TWOFACTOR_TOTP_DIGITS", "9"),
        ("TWOFACTOR_TOTP_DIGITS", "five"),
        ("TWOFACTOR_TOTP_PERIOD", "5"),
        ("TWOFACTOR_TOTP_PERIOD", "3600"),
    ] {
        let err = start_failure(&[("TWOFACTOR_KEY", key), (name, value)]);
        assert!(err.contains(name), "{name}={value}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }

    let dir = TempDir::new("server-defaults");
    let server = Server::start(dir.path(), &sqlite_url(&dir));
    let http = Http::new(&server.base);
    let token = signup_and_login(&http, "dora@example.com").await;
    let r = http
        .raw(
            Method::POST,
            "/api/2fa/setup",
            Some(&token),
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = http
        .post("/api/2fa/setup", Some(&token), json!({"defaults": "yes"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    let r = http
        .post("/api/2fa/setup", Some(&token), json!({"defaults": true}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let uri = r.str("otpauthUri");
    for part in ["algorithm=SHA1", "digits=6", "period=30"] {
        assert!(uri.contains(part), "{uri}");
    }
    let secret = r.str("secret");
    wait_for_step_room(8);
    let r = http
        .post(
            "/api/2fa/verify-setup",
            Some(&token),
            json!({"code": totp_at(&secret, unix_now())}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(me(&http, &token).await["twoFactorEnabled"], json!(true));
}
