//! The app's HTTP flow end to end: password, enrolment, then a login that owes a code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use twofactor::{Keyring, OtpAuthUri};

async fn post(app: &Router, path: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn password_enrolment_and_second_step() {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx::query("CREATE TABLE users (id TEXT PRIMARY KEY, password TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO users VALUES ('alice', 'pw')")
        .execute(&pool)
        .await
        .unwrap();
    let (_, keys) = Keyring::generate();
    let app = twofactor_axum_app::app(pool, &keys).await.unwrap();
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };

    let (status, _) = post(&app, "/login", json!({"user": "alice", "password": "no"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, body) = post(&app, "/login", json!({"user": "alice", "password": "pw"})).await;
    assert_eq!(body, json!({"user": "alice"}), "no 2FA yet: logged in");

    let (_, body) = post(&app, "/enrol", json!({"user": "alice"})).await;
    let phone = OtpAuthUri::parse(body["otpauth_uri"].as_str().unwrap())
        .unwrap()
        .totp()
        .unwrap();
    let first = phone.generate_at(now()).unwrap();
    let (status, body) = post(
        &app,
        "/enrol/confirm",
        json!({"user": "alice", "code": first.as_str()}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let backup = body["backup_codes"][0].as_str().unwrap().to_owned();

    let (_, body) = post(&app, "/login", json!({"user": "alice", "password": "pw"})).await;
    let challenge = body["challenge"]
        .as_str()
        .expect("a code is owed now")
        .to_owned();
    let wrong = json!({"challenge": challenge, "code": first.as_str()});
    assert_eq!(
        post(&app, "/login/code", wrong).await.0,
        StatusCode::UNAUTHORIZED,
        "replayed"
    );
    let next = phone.generate_at(now() + 30).unwrap();
    let right = json!({"challenge": challenge, "code": next.as_str()});
    assert_eq!(
        post(&app, "/login/code", right).await.1,
        json!({"user": "alice"})
    );

    let (_, body) = post(&app, "/login", json!({"user": "alice", "password": "pw"})).await;
    let with_backup = json!({"challenge": body["challenge"], "code": backup});
    assert_eq!(
        post(&app, "/login/code", with_backup).await.1,
        json!({"user": "alice"})
    );
}
