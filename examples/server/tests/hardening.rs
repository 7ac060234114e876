//! The demo under abuse, over HTTP against the spawned binary (SQLite): password guessing per
//! account, per known device and per address; bounded hashing under 128 concurrent logins
//! (peak memory read from /proc); password change; sessions ended; the owner's notice; and the
//! security headers on every kind of response. Each test counts what the attacker really got:
//! a 401 is a password that was checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_common;

use std::collections::BTreeMap;

use axum::http::{StatusCode, header};
use serde_json::json;
use server_common::{
    Http, PASSWORD, PgTestDb, Resp, Server, TempDir, code_step, enrolled, login, signup,
    sqlite_url, switch_on, totp_at, unix_now,
};

/// `name=value` of the device cookie a response sets (and its attributes, checked).
fn device_cookie(r: &Resp) -> String {
    let set = r
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("tf_device_"))
        .unwrap_or_else(|| panic!("no device cookie in {r:?}"));
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api;"] {
        assert!(set.contains(attribute), "{set}");
    }
    set.split(';').next().unwrap().to_owned()
}

/// Status counts, e.g. {401: 10, 429: 50}.
fn tally(statuses: &[StatusCode]) -> BTreeMap<u16, usize> {
    let mut t = BTreeMap::new();
    for s in statuses {
        *t.entry(s.as_u16()).or_default() += 1;
    }
    t
}

async fn wrong_passwords(http: &Http, email: &str, n: usize) -> Vec<StatusCode> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(
            login(http, email, &format!("wrong password {i}"))
                .await
                .status,
        );
    }
    out
}

#[tokio::test]
async fn sixty_wrong_passwords_lock_the_account_known_or_not() {
    let dir = TempDir::new("guess-account");
    let server = Server::start(dir.path(), &sqlite_url(&dir));
    let http = Http::new(&server.base);
    signup(&http, "alice@example.com", PASSWORD).await;

    let known = wrong_passwords(&http, "alice@example.com", 60).await;
    assert_eq!(tally(&known), BTreeMap::from([(401, 10), (429, 50)]));
    // The 10 that were checked came first; everything after was refused unchecked.
    assert!(known[..10].iter().all(|s| *s == StatusCode::UNAUTHORIZED));
    let r = login(&http, "alice@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    let retry = r.retry_after().expect("Retry-After");
    assert!((1..=900).contains(&retry), "{retry}");
    // Another spelling of the same email is the same account.
    let r = login(&http, "  ALICE@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    // An email nobody has: the very same sequence (no enumeration through 429s).
    let unknown = wrong_passwords(&http, "nobody@example.com", 60).await;
    assert_eq!(unknown, known);
    let r = login(&http, "nobody@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.error().starts_with("too many attempts"), "{r:?}");
}

#[tokio::test]
async fn racing_and_interleaving_with_the_owner_get_no_extra_guesses() {
    let dir = TempDir::new("guess-race");
    // A queue long enough that no guess is turned away by the hasher (that would give it back).
    let server = Server::start_with(
        dir.path(),
        &sqlite_url(&dir),
        &[("TWOFACTOR_HASH_QUEUE_SECS", "120")],
    );
    let http = Http::new(&server.base);
    signup(&http, "race@example.com", PASSWORD).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let http = http.clone();
        tasks.spawn(async move {
            login(&http, "race@example.com", &format!("wrong {i}"))
                .await
                .status
        });
    }
    let statuses: Vec<StatusCode> = tasks.join_all().await;
    assert_eq!(tally(&statuses), BTreeMap::from([(401, 10), (429, 30)]));
    let r = login(&http, "race@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    // The owner logging in between the attacker's guesses refills nothing.
    signup(&http, "mix@example.com", PASSWORD).await;
    let mut checked = 0;
    for round in 0..4 {
        for s in wrong_passwords(&http, "mix@example.com", 3).await {
            checked += usize::from(s == StatusCode::UNAUTHORIZED);
        }
        let r = login(&http, "mix@example.com", PASSWORD).await;
        if round < 3 {
            assert_eq!(r.status, StatusCode::OK, "round {round}: {r:?}");
        } else {
            // 9 checked so far; the 10th went in this round's first guess.
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
        }
    }
    assert_eq!(checked, 10);
}

#[tokio::test]
async fn the_owners_known_device_gets_in_while_the_attacker_is_locked_out() {
    let dir = TempDir::new("guess-device");
    let server = Server::start(dir.path(), &sqlite_url(&dir));
    let http = Http::new(&server.base);
    let (_, _secret, codes) = enrolled(&http, "owner@example.com").await;

    // The owner's browser completes a 2FA login and receives its device token.
    let r = login(&http, "owner@example.com", PASSWORD).await;
    let challenge = r.str("challenge");
    let r = http
        .post(
            "/api/login/2fa",
            None,
            json!({"challenge": challenge, "code": codes[0], "email": "owner@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let cookie = device_cookie(&r);

    // The attacker exhausts the account.
    let attack = wrong_passwords(&http, "owner@example.com", 60).await;
    assert_eq!(tally(&attack), BTreeMap::from([(401, 10), (429, 50)]));
    let r = login(&http, "owner@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.retry_after().is_some());
    // A made-up device token is no way around it.
    let forged = format!(
        "{}=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        cookie.split('=').next().unwrap()
    );
    let r = http
        .post_with(
            "/api/login",
            None,
            &[("cookie", &forged)],
            json!({"email": "owner@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    // The owner's browser: password, then second factor, both accepted.
    let r = http
        .post_with(
            "/api/login",
            None,
            &[("cookie", &cookie)],
            json!({"email": "owner@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let challenge = r.str("challenge");
    let r = http
        .post_with(
            "/api/login/2fa",
            None,
            &[("cookie", &cookie)],
            json!({"challenge": challenge, "code": codes[1], "email": "owner@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(!r.str("token").is_empty());
    // The owner is told: the attacker's 10 checked wrong passwords.
    assert_eq!(r.json["failedAttempts"], 10, "{r:?}");
    // A known token is not renewed before half its life: no new cookie.
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    // The attacker is still locked out.
    let r = login(&http, "owner@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_address_budget_counts_failures_only_and_stops_spraying() {
    let dir = TempDir::new("guess-address");
    let url = sqlite_url(&dir);
    let server = Server::start_with(dir.path(), &url, &[("TWOFACTOR_ADDR_FAILURES", "5")]);
    let http = Http::new(&server.base);
    signup(&http, "busy@example.com", PASSWORD).await;
    // Successes cost nothing: 12 logins from one address, all in.
    for _ in 0..12 {
        assert_eq!(
            login(&http, "busy@example.com", PASSWORD).await.status,
            StatusCode::OK
        );
    }
    // One password sprayed over 20 accounts: 5 checked, then the address is refused, whatever
    // it claims in X-Forwarded-For (not trusted by default).
    let mut statuses = Vec::new();
    for i in 0..20 {
        let r = http
            .post_with(
                "/api/login",
                None,
                &[("x-forwarded-for", &format!("198.51.100.{i}"))],
                json!({"email": format!("user{i}@example.com"), "password": "Summer2026!"}),
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(tally(&statuses), BTreeMap::from([(401, 5), (429, 15)]));
    let r = login(&http, "busy@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    drop(server);

    // Behind a trusted proxy: the last X-Forwarded-For entry is the client.
    let server = Server::start_with(
        dir.path(),
        &url,
        &[
            ("TWOFACTOR_ADDR_FAILURES", "5"),
            ("TWOFACTOR_TRUST_FORWARDED_FOR", "1"),
        ],
    );
    let http = Http::new(&server.base);
    let mut statuses = Vec::new();
    for i in 0..20 {
        let r = http
            .post_with(
                "/api/login",
                None,
                // The sprayer's own left-hand entries change; the proxy's does not.
                &[("x-forwarded-for", &format!("10.9.9.{i}, 203.0.113.7"))],
                json!({"email": format!("other{i}@example.com"), "password": "Summer2026!"}),
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(tally(&statuses), BTreeMap::from([(401, 5), (429, 15)]));
    // Another client behind the same proxy is not affected.
    let r = http
        .post_with(
            "/api/login",
            None,
            &[("x-forwarded-for", "203.0.113.8")],
            json!({"email": "busy@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_postgres_share_one_password_budget() {
    if !switch_on(
        "TWOFACTOR_TEST_POSTGRES_URL",
        "two-server PostgreSQL guess test",
    ) {
        return;
    }
    let admin = std::env::var("TWOFACTOR_TEST_POSTGRES_URL").unwrap();
    let db = PgTestDb::create(&admin, "guess").await;
    let dir = TempDir::new("guess-pg");
    let queue = [("TWOFACTOR_HASH_QUEUE_SECS", "120")];
    let a = Server::start_with(dir.path(), &db.url, &queue);
    let b = Server::start_with(dir.path(), &db.url, &queue);
    let (ha, hb) = (Http::new(&a.base), Http::new(&b.base));
    let (_, _secret, codes) = enrolled(&ha, "pg@example.com").await;
    // The owner's browser logs in through A and keeps its device cookie.
    let challenge = login(&ha, "pg@example.com", PASSWORD)
        .await
        .str("challenge");
    let r = ha
        .post(
            "/api/login/2fa",
            None,
            json!({"challenge": challenge, "code": codes[0], "email": "pg@example.com"}),
        )
        .await;
    let cookie = device_cookie(&r);

    // 60 concurrent wrong passwords, alternating between the two servers: 10 checked in all.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..60 {
        let http = if i % 2 == 0 { ha.clone() } else { hb.clone() };
        tasks.spawn(async move {
            login(&http, "pg@example.com", &format!("wrong {i}"))
                .await
                .status
        });
    }
    let statuses: Vec<StatusCode> = tasks.join_all().await;
    assert_eq!(tally(&statuses), BTreeMap::from([(401, 10), (429, 50)]));
    for http in [&ha, &hb] {
        let r = login(http, "pg@example.com", PASSWORD).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    }
    // The owner's device cookie, issued by A, is honoured by B.
    let r = hb
        .post_with(
            "/api/login",
            None,
            &[("cookie", &cookie)],
            json!({"email": "pg@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = hb
        .post_with(
            "/api/login/2fa",
            None,
            &[("cookie", &cookie)],
            json!({"challenge": r.str("challenge"), "code": codes[1], "email": "pg@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json["failedAttempts"], 10, "{r:?}");
    drop((a, b));
    db.drop_db().await;
}

/// Peak resident memory (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/<pid>/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn concurrent_logins_are_all_answered_within_bounded_memory() {
    let dir = TempDir::new("hash-bound");
    let server = Server::start(dir.path(), &sqlite_url(&dir));
    let http = Http::new(&server.base);
    for u in 0..8 {
        signup(&http, &format!("load{u}@example.com"), PASSWORD).await;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..128 {
        let http = http.clone();
        tasks.spawn(async move {
            let password = if i % 4 == 3 {
                "not the password"
            } else {
                PASSWORD
            };
            let r = login(&http, &format!("load{}@example.com", i % 8), password).await;
            if r.status == StatusCode::SERVICE_UNAVAILABLE
                || r.status == StatusCode::TOO_MANY_REQUESTS
            {
                assert!(r.retry_after().is_some(), "{r:?}");
            }
            r.status
        });
    }
    // Every request gets an answer (a dropped connection fails the client's unwrap).
    let statuses: Vec<StatusCode> = tasks.join_all().await;
    let counts = tally(&statuses);
    eprintln!("128 concurrent logins: {counts:?}");
    assert!(
        counts.keys().all(|s| [200, 401, 429, 503].contains(s)),
        "{counts:?}"
    );
    assert!(counts.get(&200).copied().unwrap_or(0) > 0, "{counts:?}");
    let peak = peak_rss_kib(server.pid());
    eprintln!("server peak resident memory (VmHWM): {} MiB", peak / 1024);
    assert!(peak < 400 * 1024, "peak resident memory {peak} KiB");
    // The server still serves normally afterwards.
    let r = login(&http, "load0@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test]
async fn password_change_needs_the_second_factor_and_ends_other_sessions() {
    let dir = TempDir::new("password-change");
    let server = Server::start(dir.path(), &sqlite_url(&dir));
    let http = Http::new(&server.base);
    let (here, _secret, codes) = enrolled(&http, "pw@example.com").await;
    let challenge = login(&http, "pw@example.com", PASSWORD)
        .await
        .str("challenge");
    let elsewhere = code_step(&http, &challenge, &codes[0]).await.str("token");
    let change = |current: &str, new: &str, code: Option<&str>| {
        let mut body = json!({"currentPassword": current, "newPassword": new});
        if let Some(code) = code {
            body["code"] = json!(code);
        }
        body
    };
    let new_password = "a brand new passphrase";
    for (body, want) in [
        (change(PASSWORD, new_password, None), "enter a code"),
        (change(PASSWORD, "short", Some(&codes[1])), "at least 8"),
        (
            change("not it", new_password, Some(&codes[1])),
            "current password is wrong",
        ),
        (
            change(PASSWORD, new_password, Some("000000")),
            "wrong or already used code",
        ),
    ] {
        let r = http.post("/api/password", Some(&here), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
        assert!(r.error().contains(want), "{r:?}");
    }
    // Nothing changed so far: the other session lives, the old password works.
    assert_eq!(
        http.get("/api/me", Some(&elsewhere)).await.status,
        StatusCode::OK
    );
    let r = http
        .post(
            "/api/password",
            Some(&here),
            change(PASSWORD, new_password, Some(&codes[1])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(
        http.get("/api/me", Some(&here)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        http.get("/api/me", Some(&elsewhere)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The backup code is spent.
    let r = http
        .post(
            "/api/password",
            Some(&here),
            change(new_password, PASSWORD, Some(&codes[1])),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert_eq!(
        login(&http, "pw@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = login(&http, "pw@example.com", new_password).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(r.json["requiresTwoFactor"].as_bool().unwrap());

    // Guessing the current password through a session draws on that session's own budget; it
    // neither locks the owner's logins nor their other sessions.
    signup(&http, "nofa@example.com", PASSWORD).await;
    let session = login(&http, "nofa@example.com", PASSWORD)
        .await
        .str("token");
    let mut statuses = Vec::new();
    for i in 0..12 {
        let r = http
            .post(
                "/api/password",
                Some(&session),
                change(&format!("guess {i}"), new_password, None),
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(tally(&statuses), BTreeMap::from([(400, 10), (429, 2)]));
    let r = http
        .post(
            "/api/password",
            Some(&session),
            change(PASSWORD, new_password, None),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    let other = login(&http, "nofa@example.com", PASSWORD).await;
    assert_eq!(other.status, StatusCode::OK, "{other:?}");
    let r = http
        .post(
            "/api/password",
            Some(&other.str("token")),
            change(PASSWORD, new_password, None),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    // The guessing session ended with the change.
    assert_eq!(
        http.get("/api/me", Some(&session)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn turning_2fa_off_ends_every_other_session() {
    let dir = TempDir::new("disable-sessions");
    let server = Server::start(dir.path(), &sqlite_url(&dir));
    let http = Http::new(&server.base);
    let (here, secret, codes) = enrolled(&http, "off@example.com").await;
    let challenge = login(&http, "off@example.com", PASSWORD)
        .await
        .str("challenge");
    let elsewhere = code_step(&http, &challenge, &codes[0]).await.str("token");
    // A backup code only schedules it: 2FA and every session stay.
    let r = http
        .post("/api/2fa/disable", Some(&here), json!({"code": codes[1]}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{r:?}");
    assert_eq!(r.json["scheduled"], json!(true), "{r:?}");
    let m = http.get("/api/me", Some(&elsewhere)).await;
    assert_eq!(m.status, StatusCode::OK, "{m:?}");
    assert_eq!(m.json["twoFactorEnabled"], json!(true), "{m:?}");
    assert_eq!(m.json["scheduledChanges"], json!(1), "{m:?}");
    // A code of the first app turns it off at once (the step after the one that confirmed it).
    let r = http
        .post(
            "/api/2fa/disable",
            Some(&here),
            json!({"code": totp_at(&secret, unix_now() + 30)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(
        http.get("/api/me", Some(&here)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        http.get("/api/me", Some(&elsewhere)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_owner_is_told_of_failed_attempts_since_the_last_login() {
    let dir = TempDir::new("notice");
    let server = Server::start(dir.path(), &sqlite_url(&dir));
    let http = Http::new(&server.base);
    // Without 2FA: wrong passwords.
    signup(&http, "plain@example.com", PASSWORD).await;
    let first = login(&http, "plain@example.com", PASSWORD).await;
    assert_eq!(first.json["failedAttempts"], 0, "{first:?}");
    let before = unix_now();
    wrong_passwords(&http, "plain@example.com", 3).await;
    let r = login(&http, "plain@example.com", PASSWORD).await;
    assert_eq!(r.json["failedAttempts"], 3, "{r:?}");
    let last = r.json["lastLoginAt"].as_u64().unwrap();
    assert!(last <= before && last + 60 >= before, "{r:?}");
    assert_eq!(
        login(&http, "plain@example.com", PASSWORD).await.json["failedAttempts"],
        0
    );

    // With 2FA: an attacker with the password fails two codes, one without fails a password.
    let (_, _secret, codes) = enrolled(&http, "tfa@example.com").await;
    let challenge = login(&http, "tfa@example.com", PASSWORD)
        .await
        .str("challenge");
    for code in ["000000", "111111"] {
        let r = code_step(&http, &challenge, code).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    wrong_passwords(&http, "tfa@example.com", 1).await;
    let challenge = login(&http, "tfa@example.com", PASSWORD)
        .await
        .str("challenge");
    let r = code_step(&http, &challenge, &codes[0]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json["failedAttempts"], 3, "{r:?}");
    let token = r.str("token");
    let me = http.get("/api/me", Some(&token)).await;
    assert_eq!(me.json["failuresSinceLogin"], 0, "{me:?}");
    assert!(me.json["lastLoginAt"].as_u64().is_some(), "{me:?}");
}

fn assert_security_headers(what: &str, r: &Resp) {
    let get = |name: &str| {
        r.headers
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name} in {r:?}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(get("cache-control"), "no-store", "{what}");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}");
    let csp = get("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let dir = TempDir::new("headers");
    let server = Server::start(dir.path(), &sqlite_url(&dir));
    let http = Http::new(&server.base);
    let page = http.get("/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_security_headers("page", &page);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    // No inline script or style left in the page for the CSP to block.
    assert!(
        !page.text.contains("<script>") && !page.text.contains("<style"),
        "inline code"
    );
    assert!(page.text.contains(r#"<script src="/app.js""#));
    for (path, mime) in [("/app.js", "text/javascript"), ("/app.css", "text/css")] {
        let r = http.get(path, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(mime)
        );
        assert_security_headers(path, &r);
    }
    signup(&http, "hdr@example.com", PASSWORD).await;
    let ok = login(&http, "hdr@example.com", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_security_headers("API success", &ok);
    let me = http.get("/api/me", Some(&ok.str("token"))).await;
    assert_security_headers("API success (GET)", &me);
    let err = http.get("/api/me", None).await;
    assert_eq!(err.status, StatusCode::UNAUTHORIZED);
    assert_security_headers("API error", &err);
    let bad = http.post("/api/login", None, json!({"email": 1})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_security_headers("API 400", &bad);
    let missing = http.get("/no/such/page", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_security_headers("404", &missing);
}

#[test]
fn bad_limit_settings_stop_the_server_with_a_clear_message() {
    for (name, value) in [
        ("TWOFACTOR_HASH_WORKERS", "0"),
        ("TWOFACTOR_HASH_QUEUE_SECS", "0"),
        ("TWOFACTOR_HASH_QUEUE_SECS", "soon"),
        // The settings of the fixed queue are refused, not ignored.
        ("TWOFACTOR_HASH_QUEUE", "64"),
        ("TWOFACTOR_HASH_WAIT_MS", "2000"),
        ("TWOFACTOR_ADDR_FAILURES", "lots"),
        ("TWOFACTOR_ADDR_WINDOW_SECS", "0"),
        ("TWOFACTOR_TRUST_FORWARDED_FOR", "yes please"),
    ] {
        let dir = TempDir::new("limits-config");
        let out = std::process::Command::new(server_common::server_binary())
            .current_dir(dir.path())
            .env("TWOFACTOR_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", sqlite_url(&dir))
            .env("TWOFACTOR_KEY", server_common::TEST_KEY)
            .env(name, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "started with {name}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name), "{name}={value}: {err}");
    }
}
