//! A worked migration from the seed application (Node, otplib, PostgreSQL) to twofactor: its
//! users keep the entry already in their authenticator app and log in without re-enrolling.
//!
//! The seed keeps 2FA in its `users` table:
//!
//! - `two_fa_secret`: otplib's base32 secret, encrypted with Node's `aes-256-cbc` (PKCS#7
//!   padding, a random 16-byte IV) under the 32-byte key hex-encoded in `TWO_FA_ENCRYPTION_KEY`,
//!   stored as `ivhex:ciphertexthex`;
//! - `two_fa_enabled`: whether 2FA is on;
//! - `two_fa_backup_codes`: a JSON array of unsalted SHA-256 hex digests of 8-hex-digit codes.
//!
//! [`migrate`] decrypts each enabled user's secret and hands it to
//! [`TwoFactor::import_credential`] (SHA-1, 6 digits, 30 s: otplib's defaults), where it is
//! encrypted under the app's own keyring like any other.
//!
//! **Short secrets.** otplib v12's `authenticator.generateSecret()` makes 10 bytes (80 bits, 16
//! base32 characters), below the crate's 128-bit minimum. Such secrets are imported through
//! [`twofactor::danger::short_secret_from_base32`], because the alternative is re-enrolling every
//! user at once; the report lists those users in [`Report::short_secret`] so the app can ask
//! them to re-enrol (disable and enable 2FA) at a convenient time.
//!
//! **Old backup codes are retired, not imported.** Each is 32 random bits hashed with unsalted
//! SHA-256: anyone who reads the column recovers every code by trying all 2³² values, minutes on
//! one GPU. Keeping them would carry that weakness into the new system, and the crate's
//! keyed-hash format cannot hold them. Users who had some are listed in
//! [`Report::backup_codes_retired`]: prompt them to make new ones
//! ([`TwoFactor::regenerate_backup_codes`]) at their next login. Until then they have none.
//!
//! Errors on a row (a corrupt ciphertext, a bad secret) are reported per row without the secret
//! and do not stop the others; run the migration again after fixing them (users already imported
//! answer [`ImportOutcome::AlreadyEnabled`]).

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Row};
use twofactor::store::{CredentialStore, EphemeralStore};
use twofactor::{
    Clock, ImportOutcome, ImportedCredential, Secret, SecretCipher, ServiceError, TwoFactor,
};
use zeroize::Zeroizing;

type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// What a migration did, user by user where the app must follow up. Holds no secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Rows read.
    pub rows: u64,
    /// Users whose credential was imported: 2FA is on for them in twofactor.
    pub imported: u64,
    /// Users who already had 2FA in twofactor (an earlier run): left alone.
    pub already_enabled: u64,
    /// Rows with `two_fa_enabled` false or NULL: nothing imported (a secret there is an
    /// unconfirmed or abandoned enrolment).
    pub disabled: u64,
    /// Imported users whose secret is shorter than 128 bits (otplib's 80-bit default): ask them
    /// to re-enrol when convenient.
    pub short_secret: Vec<String>,
    /// Imported users who had backup codes in the seed: those codes no longer work; prompt them
    /// to generate new ones.
    pub backup_codes_retired: Vec<String>,
    /// Rows that could not be imported, with the reason (never the secret).
    pub errors: Vec<RowError>,
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The row's `id`, as text.
    pub user_id: String,
    /// Why, without any secret material.
    pub reason: String,
}

/// Why the migration could not run at all (as opposed to one row failing, see [`RowError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// `TWO_FA_ENCRYPTION_KEY` is not 64 hex digits (32 bytes).
    #[error("the seed's encryption key must be 64 hex digits (32 bytes)")]
    InvalidKey,
    /// The table name is not `name` or `schema.name` of ASCII letters, digits and `_`.
    #[error("invalid table name (letters, digits, `_`, optionally `schema.table`)")]
    InvalidTable,
    /// Reading the seed's table failed.
    #[error("cannot read the seed's users table")]
    Read(#[source] sqlx::Error),
}

/// Imports every enabled user of the seed's `table` (usually `users`) into `twofactor`.
///
/// `key_hex` is the seed's `TWO_FA_ENCRYPTION_KEY`. The `id` column may be of any type with a
/// text form (integer, uuid, text): it becomes the twofactor user id. Run it before switching
/// logins over (an import replaces nothing, so running it twice is harmless). See the
/// [crate docs](crate) for short secrets and the retired backup codes.
///
/// # Errors
/// [`MigrateError`] when nothing could be read; failures of single rows are in
/// [`Report::errors`].
pub async fn migrate<C, E, K, Clk>(
    pool: &PgPool,
    table: &str,
    key_hex: &str,
    twofactor: &TwoFactor<C, E, K, Clk>,
) -> Result<Report, MigrateError>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
    Clk: Clock,
{
    let key = Zeroizing::new(parse_key(key_hex)?);
    if !valid_table(table) {
        return Err(MigrateError::InvalidTable);
    }
    // `table` is checked above to be a plain identifier, so it can be formatted in.
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT id::text AS id, two_fa_secret, two_fa_enabled, two_fa_backup_codes::text AS codes \
         FROM {table} ORDER BY id"
    )))
    .fetch_all(pool)
    .await
    .map_err(MigrateError::Read)?;

    let mut report = Report::default();
    for row in rows {
        report.rows += 1;
        let user_id: String = match row.try_get("id") {
            Ok(Some(id)) => id,
            Ok(None) | Err(_) => {
                report.errors.push(RowError {
                    user_id: String::new(),
                    reason: "the row has no usable id".into(),
                });
                continue;
            }
        };
        let fail = |reason: String| RowError {
            user_id: user_id.clone(),
            reason,
        };
        let enabled: Option<bool> = match row.try_get("two_fa_enabled") {
            Ok(v) => v,
            Err(e) => {
                report.errors.push(fail(format!("two_fa_enabled: {e}")));
                continue;
            }
        };
        if enabled != Some(true) {
            report.disabled += 1;
            continue;
        }
        let stored: Option<String> = row.try_get("two_fa_secret").unwrap_or(None);
        let Some(stored) = stored.map(Zeroizing::new) else {
            report
                .errors
                .push(fail("2FA is enabled but two_fa_secret is empty".into()));
            continue;
        };
        let secret = match decrypt_secret(&stored, &key) {
            Ok(secret) => secret,
            Err(why) => {
                report.errors.push(fail(why.into()));
                continue;
            }
        };
        let short = secret.len() < Secret::MIN_LEN;
        match twofactor
            .import_credential(&user_id, ImportedCredential::new(secret))
            .await
        {
            Ok(ImportOutcome::Imported { .. }) => report.imported += 1,
            Ok(ImportOutcome::AlreadyEnabled) => {
                report.already_enabled += 1;
                continue;
            }
            Ok(other) => {
                report.errors.push(fail(format!("not imported: {other:?}")));
                continue;
            }
            Err(e) => {
                report.errors.push(fail(import_error(&e)));
                continue;
            }
        }
        if short {
            report.short_secret.push(user_id.clone());
        }
        let codes: Option<String> = row.try_get("codes").unwrap_or(None);
        if had_backup_codes(codes.as_deref()) {
            report.backup_codes_retired.push(user_id.clone());
        }
    }
    Ok(report)
}

fn import_error(e: &ServiceError) -> String {
    // ServiceError never carries a secret; its Display names the failing part.
    format!("import failed: {e}")
}

fn parse_key(key_hex: &str) -> Result<[u8; 32], MigrateError> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(key_hex.trim(), &mut key).map_err(|_| MigrateError::InvalidKey)?;
    Ok(key)
}

fn valid_table(table: &str) -> bool {
    let parts: Vec<&str> = table.split('.').collect();
    parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 63
                && !p.starts_with(|c: char| c.is_ascii_digit())
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Decrypts the seed's `ivhex:ciphertexthex` into the secret. The reasons are fixed strings:
/// nothing about the key or the plaintext.
fn decrypt_secret(stored: &str, key: &[u8; 32]) -> Result<Secret, &'static str> {
    let (iv_hex, ct_hex) = stored
        .trim()
        .split_once(':')
        .ok_or("two_fa_secret is not `iv:ciphertext`")?;
    let mut iv = [0u8; 16];
    hex::decode_to_slice(iv_hex, &mut iv).map_err(|_| "the IV is not 32 hex digits")?;
    let mut buf = Zeroizing::new(hex::decode(ct_hex).map_err(|_| "the ciphertext is not hex")?);
    if buf.is_empty() || buf.len() % 16 != 0 {
        return Err("the ciphertext is not a whole number of AES blocks");
    }
    let decryptor =
        Aes256CbcDec::new_from_slices(key, &iv).map_err(|_| "cannot initialise AES-256-CBC")?;
    let plain = decryptor
        .decrypt_padded::<Pkcs7>(&mut buf)
        .map_err(|_| "decryption failed (wrong key or corrupt ciphertext)")?;
    let text = std::str::from_utf8(plain).map_err(|_| "the decrypted secret is not text")?;
    // otplib's secrets are 80 bits by default (v12): below twofactor's 128-bit minimum, so they
    // come in through the documented escape hatch; the report lists them for re-enrolment.
    twofactor::danger::short_secret_from_base32(text)
        .map_err(|_| "the decrypted secret is not valid base32")
}

/// Whether the seed's `two_fa_backup_codes` held any code. A value that is not a JSON array
/// counts as "had some": better one needless prompt than a user left without a way back in.
fn had_backup_codes(codes: Option<&str>) -> bool {
    match codes.map(str::trim) {
        None | Some("" | "null") => false,
        Some(text) => serde_json::from_str::<Vec<serde_json::Value>>(text)
            .map_or(true, |codes| !codes.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(valid_table("users"));
        assert!(valid_table("app.users_2"));
        assert!(!valid_table("users; DROP TABLE x"));
        assert!(!valid_table("a.b.c"));
        assert!(!valid_table(""));
        assert!(!valid_table("1users"));
    }

    #[test]
    fn backup_code_column() {
        assert!(!had_backup_codes(None));
        assert!(!had_backup_codes(Some("[]")));
        assert!(!had_backup_codes(Some("null")));
        assert!(had_backup_codes(Some(r#"["ab12"]"#)));
        assert!(had_backup_codes(Some("not json")));
    }

    #[test]
    fn key_must_be_32_bytes() {
        assert!(parse_key(&"00".repeat(32)).is_ok());
        assert!(parse_key(&"00".repeat(16)).is_err());
        assert!(parse_key(&"zz".repeat(32)).is_err());
    }
}
