//! Configuration from the environment, and the demo key file.

use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Where the demo keeps its encryption key when `TWOFACTOR_KEY` is unset.
const DEMO_KEY_FILE: &str = "twofactor-demo.key";
/// The default database: a SQLite file in the working directory.
const DEMO_DATABASE_URL: &str = "sqlite://twofactor-demo.db";

/// Everything the server reads from its environment.
pub struct Config {
    /// `TWOFACTOR_ADDR`.
    pub addr: SocketAddr,
    /// `DATABASE_URL`.
    pub database: Database,
    /// `TWOFACTOR_KEY`, or the demo key file.
    pub key: KeyMaterial,
    /// `TWOFACTOR_BACKUP_PEPPER` (32 bytes, hex), if set.
    pub backup_pepper: Option<Zeroizing<[u8; 32]>>,
    /// Hashing bounds and password-guess limits.
    pub limits: Limits,
    /// The TOTP parameters of new enrolments.
    pub totp: TotpParameters,
}

/// The TOTP parameters new enrolments get. Anything but SHA-1 / 6 digits / 30 s is ignored by
/// some authenticator apps; the demo then also keeps a service with those defaults, to re-enrol
/// a user whose app ignored them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParameters {
    /// `TWOFACTOR_TOTP_ALGORITHM`: `SHA1` (default), `SHA256` or `SHA512`.
    pub algorithm: twofactor::Algorithm,
    /// `TWOFACTOR_TOTP_DIGITS`: 6 (default) to 8.
    pub digits: u32,
    /// `TWOFACTOR_TOTP_PERIOD`: seconds per code, 15 to 120 (default 30).
    pub period: u64,
}

impl TotpParameters {
    /// SHA-1, 6 digits, 30 s: what every authenticator app shows, whatever the QR code says.
    pub const DEFAULT: Self = Self {
        algorithm: twofactor::Algorithm::Sha1,
        digits: 6,
        period: 30,
    };

    fn from_env() -> Result<Self, ConfigError> {
        let algorithm = match std::env::var("TWOFACTOR_TOTP_ALGORITHM") {
            Err(_) => Self::DEFAULT.algorithm,
            Ok(s) => match s.trim().to_ascii_uppercase().replace('-', "").as_str() {
                "SHA1" => twofactor::Algorithm::Sha1,
                "SHA256" => twofactor::Algorithm::Sha256,
                "SHA512" => twofactor::Algorithm::Sha512,
                _ => {
                    return Err(ConfigError(
                        "TWOFACTOR_TOTP_ALGORITHM must be SHA1, SHA256 or SHA512".into(),
                    ));
                }
            },
        };
        let digits = env_in_range("TWOFACTOR_TOTP_DIGITS", Self::DEFAULT.digits, 6, 8)?;
        let period = env_in_range("TWOFACTOR_TOTP_PERIOD", Self::DEFAULT.period, 15, 120)?;
        Ok(Self {
            algorithm,
            digits,
            period,
        })
    }
}

/// A whole number from the environment within `min..=max`, or `default` when unset.
fn env_in_range<T>(name: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    match env_number(name, default, min) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(ConfigError(format!(
            "{name} must be a whole number from {min} to {max}"
        ))),
    }
}

/// How much password hashing runs at once, and the per-address password-guess budget.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `TWOFACTOR_HASH_WORKERS`: Argon2id hashes at once (default: the available cores).
    pub hash_workers: usize,
    /// `TWOFACTOR_HASH_QUEUE_SECS`: the longest expected wait for a hash that a request
    /// queues for (default 10); beyond it, 503 + `Retry-After`.
    pub hash_queue_secs: u64,
    /// `TWOFACTOR_ADDR_FAILURES`: wrong passwords per client address per window (default 100).
    pub address_failures: u32,
    /// `TWOFACTOR_ADDR_WINDOW_SECS`: that window (default 60).
    pub address_window_secs: u64,
    /// `TWOFACTOR_TRUST_FORWARDED_FOR=1`: take the client address from the last
    /// `X-Forwarded-For` entry (only behind a proxy that sets it; default off).
    pub trust_forwarded_for: bool,
    /// `TWOFACTOR_CHANGE_DELAY_SECS`: how long a backup code's or a new app's removal of a
    /// factor waits (default 72 hours, the service's). Shorter only for tests and trials.
    pub change_delay_secs: u64,
}

impl Limits {
    fn from_env() -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let hash_workers = env_number("TWOFACTOR_HASH_WORKERS", cores, 1)?;
        // The fixed queue these set is gone; saying so beats silently ignoring them.
        for gone in ["TWOFACTOR_HASH_QUEUE", "TWOFACTOR_HASH_WAIT_MS"] {
            if std::env::var_os(gone).is_some() {
                return Err(ConfigError(format!(
                    "{gone} is no longer read: hashing admits by expected wait, \
                     set TWOFACTOR_HASH_QUEUE_SECS (default 10) instead"
                )));
            }
        }
        let hash_queue_secs = env_number("TWOFACTOR_HASH_QUEUE_SECS", 10, 1)?;
        let address_failures = env_number("TWOFACTOR_ADDR_FAILURES", 100, 1)?;
        let address_window_secs = env_number("TWOFACTOR_ADDR_WINDOW_SECS", 60, 1)?;
        let change_delay_secs = env_number(
            "TWOFACTOR_CHANGE_DELAY_SECS",
            twofactor::service::Config::new("").change_delay_secs,
            1,
        )?;
        let trust_forwarded_for = match std::env::var("TWOFACTOR_TRUST_FORWARDED_FOR") {
            Err(_) => false,
            Ok(v) => match v.trim() {
                "" | "0" | "false" => false,
                "1" | "true" => true,
                _ => {
                    return Err(ConfigError(
                        "TWOFACTOR_TRUST_FORWARDED_FOR must be 1 or 0".into(),
                    ));
                }
            },
        };
        Ok(Self {
            hash_workers,
            hash_queue_secs,
            address_failures,
            address_window_secs,
            trust_forwarded_for,
            change_delay_secs,
        })
    }
}

/// A whole number from the environment, at least `min`, or `default` when unset.
fn env_number<T>(name: &str, default: T, min: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display,
{
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(s) => match s.trim().parse::<T>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(ConfigError(format!(
                "{name} must be a whole number of at least {min}"
            ))),
        },
    }
}

/// The database the server talks to.
pub enum Database {
    /// A `sqlite://` URL.
    Sqlite(String),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl Database {
    fn parse(url: String) -> Result<Self, ConfigError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(url))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url))
        } else {
            Err(ConfigError(
                "DATABASE_URL must start with sqlite:// or postgres://".into(),
            ))
        }
    }

    /// A name for logs: the scheme only, since a URL may carry a password.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "SQLite",
            Self::Postgres(_) => "PostgreSQL",
        }
    }
}

/// The encryption key as configured.
pub enum KeyMaterial {
    /// One 32-byte key (hex in `TWOFACTOR_KEY` or the demo key file).
    Single(Zeroizing<[u8; 32]>),
    /// The crate's key ring format (several keys for rotation).
    Ring(Zeroizing<String>),
}

/// A configuration problem, said in words. Never contains a key.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the environment; creates the demo key file if no key is configured.
    pub fn from_env() -> Result<Self, ConfigError> {
        let addr = match std::env::var("TWOFACTOR_ADDR") {
            Ok(s) => s
                .parse()
                .map_err(|_| ConfigError(format!("TWOFACTOR_ADDR {s:?} is not host:port")))?,
            Err(_) => SocketAddr::from(([127, 0, 0, 1], 3000)),
        };
        let database = Database::parse(
            std::env::var("DATABASE_URL").unwrap_or_else(|_| DEMO_DATABASE_URL.into()),
        )?;
        let key = match std::env::var("TWOFACTOR_KEY") {
            Ok(s) => {
                let s = Zeroizing::new(s);
                match parse_hex32(s.trim()) {
                    Some(k) => KeyMaterial::Single(k),
                    None if s.trim().len() == 64 => {
                        return Err(ConfigError(
                            "TWOFACTOR_KEY looks like hex but is not valid hex".into(),
                        ));
                    }
                    None => KeyMaterial::Ring(Zeroizing::new(s.trim().to_owned())),
                }
            }
            Err(_) => KeyMaterial::Single(demo_key(Path::new(DEMO_KEY_FILE))?),
        };
        let backup_pepper = match std::env::var("TWOFACTOR_BACKUP_PEPPER") {
            Ok(s) => {
                let s = Zeroizing::new(s);
                Some(parse_hex32(s.trim()).ok_or_else(|| {
                    ConfigError("TWOFACTOR_BACKUP_PEPPER must be 32 bytes as 64 hex digits".into())
                })?)
            }
            Err(_) => None,
        };
        Ok(Self {
            addr,
            database,
            key,
            backup_pepper,
            limits: Limits::from_env()?,
            totp: TotpParameters::from_env()?,
        })
    }
}

/// Parses exactly 64 hex digits into 32 bytes.
pub fn parse_hex32(s: &str) -> Option<Zeroizing<[u8; 32]>> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = Zeroizing::new([0u8; 32]);
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

pub fn to_hex(bytes: &[u8]) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    s
}

/// Reads the demo key file, or creates it (mode 0600) with a fresh random key.
fn demo_key(path: &Path) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    let shown = display_path(path);
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let key = parse_hex32(text.trim()).ok_or_else(|| {
                ConfigError(format!(
                    "{shown} does not hold a 32-byte hex key; fix or delete it \
                     (deleting it makes every stored TOTP secret unreadable)"
                ))
            })?;
            eprintln!(
                "WARNING: TWOFACTOR_KEY is not set; using the demo key in {shown}. \
                 A production deployment sets TWOFACTOR_KEY."
            );
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = Zeroizing::new([0u8; 32]);
            crate::random::fill(&mut key[..])
                .map_err(|_| ConfigError("the OS random number generator failed".into()))?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600);
            }
            let mut file = options
                .open(path)
                .map_err(|e| ConfigError(format!("cannot create {shown}: {e}")))?;
            file.write_all(to_hex(&key[..]).as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_all())
                .map_err(|e| ConfigError(format!("cannot write {shown}: {e}")))?;
            eprintln!(
                "\n!!! TWOFACTOR_KEY is not set: generated a NEW encryption key in {shown}\n\
                 !!! (mode 0600). TOTP secrets in the database are encrypted with it; lose the\n\
                 !!! file and every enrolled user must enrol again. Demo only: a production\n\
                 !!! deployment sets TWOFACTOR_KEY from its secret store.\n"
            );
            Ok(key)
        }
        Err(e) => Err(ConfigError(format!("cannot read {shown}: {e}"))),
    }
}

fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| PathBuf::from(path))
        .display()
        .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let k = [0xabu8; 32];
        assert_eq!(*parse_hex32(&to_hex(&k)).unwrap(), k);
        assert!(parse_hex32("zz").is_none());
    }
}
