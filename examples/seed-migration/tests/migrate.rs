//! The migration against a real PostgreSQL (`TWOFACTOR_TEST_POSTGRES_URL`): the seed's `users`
//! table, encrypted exactly as the seed's Node code does, into a `PostgresStore`; then the
//! migrated users log in with codes from their ORIGINAL secrets. Everything lives in a schema of
//! its own (random suffix), dropped at the end, so parallel runs do not collide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{SystemTime, UNIX_EPOCH};

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeEncrypt, KeyIvInit};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor};
use twofactor::service::{CompleteLogin, Config, LoginStart, SecondFactor, StartLogin};
use twofactor::store::PostgresStore;
use twofactor::{BackupCodeKey, Keyring, Totp, TwoFactor, VerifyOutcome};
use twofactor_seed_migration::migrate;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;

/// The seed's `encrypt()`: AES-256-CBC, PKCS#7, a random IV, `ivhex:ciphertexthex`.
fn seed_encrypt(text: &str, key: &[u8; 32]) -> String {
    let iv: [u8; 16] = rand::random();
    let mut buf = vec![0u8; text.len() + 16];
    buf[..text.len()].copy_from_slice(text.as_bytes());
    let ct = Aes256CbcEnc::new_from_slices(key, &iv)
        .unwrap()
        .encrypt_padded::<Pkcs7>(&mut buf, text.len())
        .unwrap();
    format!("{}:{}", hex::encode(iv), hex::encode(ct))
}

/// The seed's backup-code column: unsalted SHA-256 hex of 8-hex-digit codes, as JSON.
/// (The digests' content does not matter to the migration, only that there are some.)
fn seed_backup_codes() -> String {
    let codes: Vec<String> = (0..8)
        .map(|_| hex::encode(rand::random::<[u8; 32]>()))
        .collect();
    serde_json::to_string(&codes).unwrap()
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{tag}_{}_{:x}_{:08x}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff,
        rand::random::<u32>()
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn postgres_url() -> Option<String> {
    match std::env::var("TWOFACTOR_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "TWOFACTOR_TEST_POSTGRES_URL is not set but CI=true: the seed migration test must run"
                );
            }
            eprintln!("skipped the seed migration test: set TWOFACTOR_TEST_POSTGRES_URL to run it");
            None
        }
    }
}

/// Logs `user` in with the current code of `base32` (the secret the phone holds).
async fn login_with_phone(
    tf: &TwoFactor<PostgresStore>,
    user: &str,
    base32: &str,
) -> VerifyOutcome {
    let LoginStart::Required { challenge, .. } =
        tf.start_login(StartLogin::new(user)).await.unwrap()
    else {
        panic!("user {user} must owe a second factor after the migration");
    };
    let phone = twofactor::danger::short_secret_from_base32(base32).unwrap();
    let code = Totp::builder(&phone)
        .build()
        .unwrap()
        .generate_at(now())
        .unwrap();
    tf.complete_login(CompleteLogin::new(
        challenge.as_str(),
        SecondFactor::Typed(code.as_str()),
    ))
    .await
    .unwrap()
}

#[tokio::test]
async fn seed_users_log_in_after_migration() {
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = unique("tf_seed");
    let table = unique("users");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("TWOFACTOR_TEST_POSTGRES_URL is set but unreachable: {e}"));
    admin
        .execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
        .unwrap();
    let search_path = schema.clone();
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .after_connect(move |conn, _meta| {
            let schema = search_path.clone();
            Box::pin(async move {
                conn.execute(AssertSqlSafe(format!("SET search_path TO {schema}")))
                    .await?;
                Ok(())
            })
        })
        .connect_with(url.parse::<PgConnectOptions>().unwrap())
        .await
        .unwrap();

    // The seed's table, as its app would have it.
    pool.execute(AssertSqlSafe(format!(
        "CREATE TABLE {table} (
            id SERIAL PRIMARY KEY,
            email TEXT NOT NULL,
            two_fa_secret TEXT,
            two_fa_pending_secret TEXT,
            two_fa_enabled BOOLEAN NOT NULL DEFAULT false,
            two_fa_backup_codes TEXT
        )"
    )))
    .await
    .unwrap();
    let key: [u8; 32] = rand::random();
    let key_hex = hex::encode(key);
    let other_key: [u8; 32] = rand::random();
    // otplib v12 `generateSecret()`: 10 bytes, 16 base32 characters.
    let short_b32 = "JBSWY3DPEHPK3PXP";
    // otplib v13 and most others: 20 bytes.
    let long_b32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let truncated = {
        let mut s = seed_encrypt(long_b32, &key);
        s.truncate(s.len() - 2);
        s
    };
    let rows: [(&str, Option<String>, bool, Option<String>); 6] = [
        // 1: corrupt (a ciphertext cut short).
        ("broken@example.com", Some(truncated), true, None),
        // 2: encrypted under another key.
        (
            "otherkey@example.com",
            Some(seed_encrypt(long_b32, &other_key)),
            true,
            None,
        ),
        // 3: enabled, 80-bit otplib secret, old backup codes.
        (
            "alice@example.com",
            Some(seed_encrypt(short_b32, &key)),
            true,
            Some(seed_backup_codes()),
        ),
        // 4: enabled, 160-bit secret, backup codes all used up.
        (
            "bob@example.com",
            Some(seed_encrypt(long_b32, &key)),
            true,
            Some("[]".into()),
        ),
        // 5: disabled, with a leftover secret and codes.
        (
            "carol@example.com",
            Some(seed_encrypt(long_b32, &key)),
            false,
            Some(seed_backup_codes()),
        ),
        // 6: never enrolled.
        ("dave@example.com", None, false, None),
    ];
    for (email, secret, enabled, codes) in rows {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} (email, two_fa_secret, two_fa_enabled, two_fa_backup_codes) \
             VALUES ($1, $2, $3, $4)"
        )))
        .bind(email)
        .bind(secret)
        .bind(enabled)
        .bind(codes)
        .execute(&pool)
        .await
        .unwrap();
    }

    let store = PostgresStore::new(pool.clone());
    store.migrate().await.unwrap();
    let (keys, _) = Keyring::generate();
    let tf = TwoFactor::from_store(
        store,
        keys,
        BackupCodeKey::from_bytes(rand::random()),
        Config::new("Seed"),
    )
    .unwrap();

    let report = migrate(&pool, &table, &key_hex, &tf).await.unwrap();
    assert_eq!(report.rows, 6);
    assert_eq!(report.imported, 2, "{report:?}");
    assert_eq!(report.already_enabled, 0);
    assert_eq!(report.disabled, 2);
    assert_eq!(report.short_secret, vec!["3".to_owned()]);
    assert_eq!(report.backup_codes_retired, vec!["3".to_owned()]);
    let failed: Vec<&str> = report.errors.iter().map(|e| e.user_id.as_str()).collect();
    assert_eq!(failed, ["1", "2"], "{report:?}");
    let debug = format!("{report:?}");
    for secret in [short_b32, long_b32, &key_hex] {
        assert!(!debug.contains(secret), "the report leaks a secret");
    }

    // The migrated users log in with the authenticator entry they already have.
    let VerifyOutcome::Success { user_id, .. } = login_with_phone(&tf, "3", short_b32).await else {
        panic!("alice's original 80-bit secret must work");
    };
    assert_eq!(user_id, "3");
    let VerifyOutcome::Success { user_id, .. } = login_with_phone(&tf, "4", long_b32).await else {
        panic!("bob's original secret must work");
    };
    assert_eq!(user_id, "4");
    // A wrong code is still refused: the import did not make the check lenient.
    let LoginStart::Required { challenge, .. } =
        tf.start_login(StartLogin::new("4")).await.unwrap()
    else {
        panic!("bob owes a second factor");
    };
    assert!(!matches!(
        tf.complete_login(CompleteLogin::new(
            challenge.as_str(),
            SecondFactor::Typed("000000")
        ))
        .await
        .unwrap(),
        VerifyOutcome::Success { .. }
    ));
    let alice = tf.status("3").await.unwrap();
    assert!(alice.enabled);
    assert_eq!(alice.backup_codes_remaining, 0, "old codes are retired");

    // Disabled, never-enrolled and failed users have no 2FA.
    for user in ["5", "6", "1", "2"] {
        assert!(matches!(
            tf.start_login(StartLogin::new(user)).await.unwrap(),
            LoginStart::NotRequired
        ));
        assert!(!tf.status(user).await.unwrap().enabled);
    }

    // A second run changes nothing.
    let again = migrate(&pool, &table, &key_hex, &tf).await.unwrap();
    assert_eq!((again.imported, again.already_enabled), (0, 2));
    assert_eq!(again.errors.len(), 2);

    pool.close().await;
    admin
        .execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .await
        .unwrap();
}
