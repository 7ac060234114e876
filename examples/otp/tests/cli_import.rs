//! `otp import`, run as an operator would: a batch of CSV and JSON lines into a SQLite store, one
//! report per line, no secret in the output, and the imported users log in with codes from their
//! existing secrets, on SQLite and on a fresh PostgreSQL database (`TWOFACTOR_TEST_POSTGRES_URL`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use twofactor::service::{CompleteLogin, Config, LoginStart, SecondFactor, StartLogin};
use twofactor::store::{CredentialStore, EphemeralStore, PostgresStore, SqliteStore};
use twofactor::{Algorithm, BackupCodeKey, Keyring, Secret, Totp, TwoFactor, VerifyOutcome};

const KEY: &str = "4242424242424242424242424242424242424242424242424242424242424242";
const ALICE: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const BOB: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const CAROL_SHORT: &str = "JBSWY3DPEHPK3PXP";

fn otp_import(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_otp"))
        .arg("import")
        .args(args)
        .env("TWOFACTOR_KEYS", KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn batch() -> String {
    format!(
        "user_id,secret\n\
         alice,{ALICE}\n\
         # a comment\n\
         \n\
         {{\"user_id\": \"bob\", \"secret\": \"{BOB}\", \"algorithm\": \"SHA256\", \"digits\": 8, \"period\": 60}}\n\
         carol,{CAROL_SHORT}\n\
         dave,otpauth://totp/Old:dave?secret={ALICE}&digits=7\n\
         erin,NOT*BASE32{BOB}\n\
         ,{ALICE}\n\
         {{\"user_id\": \"frank\"}}\n\
         alice,{BOB}\n"
    )
}

async fn logs_in<S>(store: S, user: &str, totp: &Totp)
where
    S: CredentialStore + EphemeralStore + Clone,
{
    let svc = TwoFactor::from_store(
        store,
        Keyring::from_config(KEY).unwrap(),
        BackupCodeKey::from_bytes([0; 32]),
        Config::new("twofactor"),
    )
    .unwrap();
    let LoginStart::Required { challenge, .. } =
        svc.start_login(StartLogin::new(user)).await.unwrap()
    else {
        panic!("{user} has no second factor after the import")
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = totp.generate_at(now).unwrap();
    assert!(
        matches!(
            svc.complete_login(CompleteLogin::new(
                challenge.as_str(),
                SecondFactor::Typed(code.as_str())
            ))
            .await
            .unwrap(),
            VerifyOutcome::Success { .. }
        ),
        "{user} could not log in with a code from the imported secret"
    );
    assert_eq!(svc.status(user).await.unwrap().backup_codes_remaining, 0);
}

#[tokio::test]
async fn imports_a_batch_into_sqlite_and_reports_each_line() {
    let dir = std::env::temp_dir().join(format!("otp-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("import.db");
    let _ = std::fs::remove_file(&db);
    let url = format!("sqlite://{}?mode=rwc", db.display());

    let out = otp_import(&["--store", &url, "-"], &batch());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    for secret in [ALICE, BOB, CAROL_SHORT, "GEZDGNBV", "JBSWY3DP"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret was echoed:\n{stdout}\n{stderr}"
        );
    }
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{stdout}");
    assert_eq!(lines[0], "line 2: imported alice");
    assert_eq!(lines[1], "line 5: imported bob");
    assert!(
        lines[2].starts_with("line 6: error: the secret is 10 bytes")
            && lines[2].contains("--allow-short-secret"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "line 7: imported dave");
    assert!(
        lines[4].starts_with("line 8: error: secret: invalid base32 character '*'"),
        "{}",
        lines[4]
    );
    assert_eq!(lines[5], "line 9: error: empty user id");
    assert!(
        lines[6].starts_with("line 10: error: give exactly one of"),
        "{}",
        lines[6]
    );
    assert_eq!(lines[7], "line 11: already enabled alice");
    assert_eq!(
        out.status.code(),
        Some(1),
        "failed lines must give exit code 1"
    );
    assert!(
        stderr.contains("imported 3, already enabled 1, failed 4"),
        "{stderr}"
    );

    // The legacy secret with the flag; alice replaced with --replace.
    let out = otp_import(
        &["--store", &url, "--allow-short-secret", "--replace", "-"],
        &format!("carol,{CAROL_SHORT}\nalice,{ALICE}\n"),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        "line 1: imported carol\nline 2: imported alice (replaced)\n"
    );
    assert!(out.status.success());

    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let store = SqliteStore::new(pool);
    let secret = |b32: &str| twofactor::danger::short_secret_from_base32(b32).unwrap();
    logs_in(
        store.clone(),
        "alice",
        &Totp::builder(&Secret::from_base32(ALICE).unwrap())
            .build()
            .unwrap(),
    )
    .await;
    let bob = secret(BOB);
    logs_in(
        store.clone(),
        "bob",
        &Totp::builder(&bob)
            .algorithm(Algorithm::Sha256)
            .digits(8)
            .period(60)
            .build()
            .unwrap(),
    )
    .await;
    logs_in(
        store.clone(),
        "carol",
        &Totp::builder(&secret(CAROL_SHORT)).build().unwrap(),
    )
    .await;
    logs_in(
        store,
        "dave",
        &Totp::builder(&secret(ALICE)).digits(7).build().unwrap(),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_and_keys_exit_2_without_echoing_the_key() {
    let out = otp_import(&["--store", "mysql://x", "-"], "");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_otp"))
        .args(["import", "--store", "sqlite::memory:", "-"])
        .env("TWOFACTOR_KEYS", &KEY[..60])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("TWOFACTOR_KEYS") && !stderr.contains(&KEY[..20]),
        "{stderr}"
    );
}

/// The same batch through a `postgres://` URL, into a database of its own.
#[tokio::test]
async fn imports_a_batch_into_postgres() {
    let admin = match std::env::var("TWOFACTOR_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "TWOFACTOR_TEST_POSTGRES_URL is not set but CI=true: the PostgreSQL import must run"
            );
            eprintln!(
                "skipped otp import on PostgreSQL: set TWOFACTOR_TEST_POSTGRES_URL to run it"
            );
            return;
        }
    };
    let name = format!(
        "otp_import_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let server = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin)
        .await
        .expect("TWOFACTOR_TEST_POSTGRES_URL is set but PostgreSQL is unreachable");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&server)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let url = format!("{base}/{name}");

    let out = otp_import(&["--store", &url, "-"], &batch());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 8, "{stdout}");
    assert!(
        stdout.starts_with("line 2: imported alice\nline 5: imported bob\n"),
        "{stdout}"
    );
    assert!(!stdout.contains(ALICE) && !stdout.contains(BOB));
    assert_eq!(out.status.code(), Some(1));
    let out = otp_import(
        &["--store", &url, "--replace", "-"],
        &format!("alice,{BOB}\n"),
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "line 1: imported alice (replaced)\n"
    );

    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let store = PostgresStore::new(pool.clone());
    let bob_secret = twofactor::danger::short_secret_from_base32(BOB).unwrap();
    logs_in(
        store.clone(),
        "alice",
        &Totp::builder(&bob_secret).build().unwrap(),
    )
    .await;
    logs_in(
        store,
        "bob",
        &Totp::builder(&bob_secret)
            .algorithm(Algorithm::Sha256)
            .digits(8)
            .period(60)
            .build()
            .unwrap(),
    )
    .await;
    pool.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
        .execute(&server)
        .await
        .unwrap();
}
