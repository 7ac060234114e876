//! A login with a second factor, end to end, in the app, on sqlx 0.8 (`twofactor-sqlx08-app`) and
//! 0.9 (`twofactor-sqlx09-app`, the same file): against SQLite (a temp file) and PostgreSQL
//! (`TWOFACTOR_TEST_POSTGRES_URL`, a schema of its own, dropped after).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Connection, Executor};
use twofactor::store::{CredentialStore, EphemeralStore};
use twofactor::{ConfirmOutcome, EnrolmentStart, Totp};
use twofactor_sqlx_app::{App, Login};

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{tag}_{}_{:x}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sign-up, login without 2FA, enrolment, then logins that owe a code.
async fn login_flow<S>(app: &App<S>)
where
    S: CredentialStore + EphemeralStore + Clone,
{
    app.add_user("u-1", "alice", "correct horse").await.unwrap();
    assert_eq!(app.login("alice", "wrong").await.unwrap(), Login::Denied);
    assert_eq!(
        app.login("bob", "correct horse").await.unwrap(),
        Login::Denied
    );
    assert_eq!(
        app.login("alice", "correct horse").await.unwrap(),
        Login::Welcome("u-1".into()),
        "no second factor yet"
    );

    // Enrolment: the secret goes to the phone, the first code turns 2FA on.
    let EnrolmentStart::Started(enrolment) = app
        .twofactor
        .start_enrolment("u-1", "alice@example.com")
        .await
        .unwrap()
    else {
        panic!("alice had no 2FA");
    };
    let phone = Totp::builder(enrolment.secret()).build().unwrap();
    let first = phone.generate_at(now()).unwrap();
    let ConfirmOutcome::Confirmed { backup_codes } = app
        .twofactor
        .confirm_enrolment("u-1", first.as_str())
        .await
        .unwrap()
    else {
        panic!("the current code confirms the enrolment");
    };

    // The password alone is no longer enough.
    let Login::SecondFactor(challenge) = app.login("alice", "correct horse").await.unwrap() else {
        panic!("a code is owed now");
    };
    assert_eq!(
        app.second_factor(&challenge, "000000x").await.unwrap(),
        None
    );
    // The confirming code was used once already; the next step's code is new (window ±1).
    let Login::SecondFactor(challenge) = app.login("alice", "correct horse").await.unwrap() else {
        panic!("a code is owed");
    };
    assert_eq!(
        app.second_factor(&challenge, first.as_str()).await.unwrap(),
        None,
        "a used code is refused"
    );
    let Login::SecondFactor(challenge) = app.login("alice", "correct horse").await.unwrap() else {
        panic!("a code is owed");
    };
    let next = phone.generate_at(now() + 30).unwrap();
    assert_eq!(
        app.second_factor(&challenge, next.as_str()).await.unwrap(),
        Some("u-1".into())
    );
    assert_eq!(
        app.second_factor(&challenge, next.as_str()).await.unwrap(),
        None,
        "a challenge completes once"
    );

    // A backup code instead of the phone, once.
    let backup = backup_codes[0].as_str().to_owned();
    let Login::SecondFactor(challenge) = app.login("alice", "correct horse").await.unwrap() else {
        panic!("a code is owed");
    };
    assert_eq!(
        app.second_factor(&challenge, &backup).await.unwrap(),
        Some("u-1".into())
    );
    let Login::SecondFactor(challenge) = app.login("alice", "correct horse").await.unwrap() else {
        panic!("a code is owed");
    };
    assert_eq!(app.second_factor(&challenge, &backup).await.unwrap(), None);
}

#[tokio::test]
async fn login_on_sqlite() {
    let path = std::env::temp_dir().join(format!("{}.db", unique("tf_sqlx_app")));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(twofactor::store::SqliteStore::recommended_options(&path))
        .await
        .unwrap();
    let app = App::sqlite(pool.clone()).await.unwrap();
    login_flow(&app).await;
    pool.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test]
async fn login_on_postgres() {
    let url = match std::env::var("TWOFACTOR_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "TWOFACTOR_TEST_POSTGRES_URL is not set but CI=true: login_on_postgres must run"
            );
            eprintln!("skipped login_on_postgres: set TWOFACTOR_TEST_POSTGRES_URL to run it");
            return;
        }
    };
    let schema = unique("tf_sqlx_app");
    let mut admin = PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("TWOFACTOR_TEST_POSTGRES_URL is set but unreachable: {e}"));
    schema_ddl(&mut admin, &schema, "CREATE SCHEMA %I").await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(
            url.parse::<PgConnectOptions>()
                .unwrap()
                .options([("search_path", schema.as_str())]),
        )
        .await
        .unwrap();
    let app = App::postgres(pool.clone()).await.unwrap();
    login_flow(&app).await;
    pool.close().await;
    schema_ddl(&mut admin, &schema, "DROP SCHEMA %I CASCADE").await;
    admin.close().await.unwrap();
}

/// Runs `ddl` (`%I` for the schema name) on `schema`. Statement texts are constants, as sqlx 0.9
/// wants them (a built one needs its `AssertSqlSafe`, which 0.8 lacks); the name is a bound
/// parameter, quoted by PostgreSQL's `format`.
async fn schema_ddl(admin: &mut PgConnection, schema: &str, ddl: &'static str) {
    sqlx::query("SELECT set_config('tf_sqlx_app.schema', $1, false), set_config('tf_sqlx_app.ddl', $2, false)")
        .bind(schema)
        .bind(ddl)
        .execute(&mut *admin)
        .await
        .unwrap();
    admin
        .execute(
            "DO $$ BEGIN EXECUTE format(current_setting('tf_sqlx_app.ddl'), \
             current_setting('tf_sqlx_app.schema')); END $$",
        )
        .await
        .unwrap();
}
