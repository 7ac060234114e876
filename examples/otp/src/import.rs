//! `otp import`: enrols a batch of users with the secrets they already have (from another 2FA
//! system), into a SQLite or PostgreSQL store, encrypted under the key in the environment.
//!
//! Input (a file, or `-` for stdin), one user per line, either form on any line:
//!
//! ```text
//! user_id,SECRETBASE32              # CSV: user id, then a base32 secret or an otpauth:// URI
//! user_id,otpauth://totp/...
//! {"user_id": "u1", "secret": "BASE32", "digits": 6, "period": 30, "algorithm": "SHA1", "last_step": 12345}
//! {"user_id": "u2", "uri": "otpauth://totp/..."}
//! ```
//!
//! A CSV header line starting with `user_id,` is skipped, as are blank lines and `#` comments.
//! Each line gets one report on stdout: `line N: imported USER`, `line N: already enabled USER`
//! (left alone unless `--replace`), or `line N: error: WHY`. A report never contains the secret or
//! the URI. Exit code 0 when every line imported or was already enabled, 1 when a line failed,
//! 2 for bad arguments or an unreachable store.

use std::io::{BufRead, BufReader};
use std::process::ExitCode;

use twofactor::service::Config;
use twofactor::store::{CredentialStore, EphemeralStore};
use twofactor::{
    Algorithm, BackupCodeKey, ImportOutcome, ImportedCredential, Keyring, OtpAuthUri, Secret,
    SecretCipher, TwoFactor,
};

use crate::args::Args;

/// Longest input line looked at (a URI is at most 2 KiB; JSON adds little).
const MAX_LINE: usize = 8192;

pub fn run(raw: &[String]) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("otp import: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(import(raw)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(message) => {
            eprintln!("otp import: {message}");
            ExitCode::from(2)
        }
    }
}

/// Runs the import; returns how many lines failed.
async fn import(raw: &[String]) -> Result<u64, String> {
    let args = Args::parse(
        raw,
        &["store", "key-env", "issuer"],
        &["allow-short-secret", "replace"],
    )?;
    let [input] = args.positionals() else {
        return Err("give one input file (or - for stdin)".into());
    };
    let url = args.required("store")?;
    let key_env = args.value("key-env").unwrap_or("TWOFACTOR_KEYS");
    let keys = Keyring::from_env(key_env).map_err(|e| e.to_string())?;
    let options = LineOptions {
        allow_short: args.flag("allow-short-secret"),
        replace: args.flag("replace"),
    };
    let issuer = args.value("issuer").unwrap_or("twofactor");
    let reader: Box<dyn BufRead> = if input == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(
            std::fs::File::open(input).map_err(|e| format!("cannot open {input}: {e}"))?,
        ))
    };
    if url.starts_with("sqlite:") {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(|e| format!("cannot open the SQLite store: {e}"))?;
        let store = twofactor::store::SqliteStore::new(pool);
        store.migrate().await.map_err(|e| e.to_string())?;
        run_lines(store, keys, issuer, reader, options).await
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .map_err(|e| format!("cannot connect to the PostgreSQL store: {e}"))?;
        let store = twofactor::store::PostgresStore::new(pool);
        store.migrate().await.map_err(|e| e.to_string())?;
        run_lines(store, keys, issuer, reader, options).await
    } else {
        Err("--store must be a sqlite:// or postgres:// URL".into())
    }
}

#[derive(Clone, Copy)]
struct LineOptions {
    allow_short: bool,
    replace: bool,
}

async fn run_lines<S, K>(
    store: S,
    keys: K,
    issuer: &str,
    reader: Box<dyn BufRead>,
    options: LineOptions,
) -> Result<u64, String>
where
    S: CredentialStore + EphemeralStore + Clone,
    K: SecretCipher,
{
    // The pepper is never used: an import writes no backup-code hashes.
    let service = TwoFactor::from_store(
        store,
        keys,
        BackupCodeKey::from_bytes([0; 32]),
        Config::new(issuer),
    )
    .map_err(|e| e.to_string())?;
    let (mut imported, mut enabled, mut failed) = (0u64, 0u64, 0u64);
    for (index, line) in reader.lines().enumerate() {
        let n = index + 1;
        let line = zeroize::Zeroizing::new(line.map_err(|e| format!("cannot read line {n}: {e}"))?);
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') || (n == 1 && text.starts_with("user_id,")) {
            continue;
        }
        let parsed = if text.len() > MAX_LINE {
            Err(format!("longer than {MAX_LINE} bytes"))
        } else {
            parse_line(text, options)
        };
        let (user, credential) = match parsed {
            Ok(pair) => pair,
            Err(why) => {
                println!("line {n}: error: {why}");
                failed += 1;
                continue;
            }
        };
        match service.import_credential(&user, credential).await {
            Ok(ImportOutcome::Imported { replaced }) => {
                imported += 1;
                let how = if replaced { " (replaced)" } else { "" };
                println!("line {n}: imported {user}{how}");
            }
            Ok(ImportOutcome::AlreadyEnabled) => {
                enabled += 1;
                println!("line {n}: already enabled {user}");
            }
            Ok(other) => {
                failed += 1;
                println!("line {n}: error: {user}: {other:?}");
            }
            Err(e) if e.is_input() => {
                failed += 1;
                println!("line {n}: error: {user}: {}", chain(&e));
            }
            Err(e) => {
                return Err(format!(
                    "line {n}: the store failed, stopping: {}",
                    chain(&e)
                ));
            }
        }
    }
    eprintln!("imported {imported}, already enabled {enabled}, failed {failed}");
    Ok(failed)
}

/// An error and its sources, for one report line. The crate's errors never contain a secret.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A user id and the credential of one line (CSV or JSON). Errors never quote the line.
fn parse_line(text: &str, options: LineOptions) -> Result<(String, ImportedCredential), String> {
    let (user, mut credential) = if text.starts_with('{') {
        parse_json(text, options)?
    } else {
        let (user, value) = text
            .split_once(',')
            .ok_or("expected `user_id,secret` or `user_id,otpauth://...`")?;
        let user = user.trim();
        if user.is_empty() {
            return Err("empty user id".into());
        }
        let value = value.trim();
        let credential = if value.starts_with("otpauth:") {
            from_uri(value, options)?
        } else {
            ImportedCredential::new(secret(value, options)?)
        };
        (user.to_owned(), credential)
    };
    credential.replace_enabled = options.replace;
    Ok((user, credential))
}

fn parse_json(text: &str, options: LineOptions) -> Result<(String, ImportedCredential), String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON ({})", e.classify_name()))?;
    let field = |name: &str| value.get(name);
    let user = field("user_id")
        .and_then(serde_json::Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or("`user_id` (a non-empty string) is missing")?
        .to_owned();
    let mut credential = match (field("secret"), field("uri")) {
        (Some(s), None) => ImportedCredential::new(secret(
            s.as_str().ok_or("`secret` must be a string")?,
            options,
        )?),
        (None, Some(u)) => from_uri(u.as_str().ok_or("`uri` must be a string")?, options)?,
        _ => return Err("give exactly one of `secret` and `uri`".into()),
    };
    let number = |name: &str| -> Result<Option<u64>, String> {
        field(name)
            .map(|v| {
                v.as_u64()
                    .ok_or(format!("`{name}` must be a non-negative integer"))
            })
            .transpose()
    };
    if let Some(digits) = number("digits")? {
        credential.digits = u32::try_from(digits).map_err(|_| "`digits` is out of range")?;
    }
    if let Some(period) = number("period")? {
        credential.period = period;
    }
    credential.last_step = number("last_step")?.or(credential.last_step);
    if let Some(name) = field("algorithm") {
        credential.algorithm = name
            .as_str()
            .and_then(Algorithm::from_name)
            .ok_or("`algorithm` must be SHA1, SHA256 or SHA512")?;
    }
    Ok((user, credential))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "wrong data",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

fn secret(text: &str, options: LineOptions) -> Result<Secret, String> {
    let parsed = if options.allow_short {
        twofactor::danger::short_secret_from_base32(text)
    } else {
        Secret::from_base32(text)
    };
    parsed.map_err(|e| match e {
        twofactor::Error::Secret(twofactor::error::SecretError::TooShort { len, .. }) => format!(
            "the secret is {len} bytes, under 128 bits; pass --allow-short-secret to import such legacy secrets"
        ),
        other => format!("secret: {other}"),
    })
}

fn from_uri(text: &str, options: LineOptions) -> Result<ImportedCredential, String> {
    let uri = if options.allow_short {
        twofactor::danger::parse_uri_allowing_short_secret(text)
    } else {
        OtpAuthUri::parse(text)
    }
    .map_err(|e| format!("otpauth URI: {e}"))?;
    ImportedCredential::from_uri(&uri).map_err(|e| chain(&e))
}
