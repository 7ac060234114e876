//! The second factor, entirely through the crate's [`TwoFactor`] service: this module builds it
//! from the configuration and says how its errors read over HTTP. No code is checked, counted or
//! stored here; the handlers in [`crate::api`] map each outcome to a response.

use twofactor::service::Config as ServiceConfig;
use twofactor::{BackupCodeKey, Keyring, ServiceError, TwoFactor};

use crate::config::{Config, KeyMaterial, TotpParameters};
use crate::db::Backend;
use crate::error::ApiError;

/// The name authenticator apps show next to the account.
const ISSUER: &str = "twofactor demo";

/// The second factor: the service for new enrolments, and (when the configured TOTP parameters
/// are not SHA-1 / 6 digits / 30 s) one with those defaults over the same store, cipher and
/// backup-code key, for a user whose app ignored the parameters. A pending enrolment records its
/// own parameters, so either service confirms it, and logins only read the stored records.
pub struct Services<S: Backend> {
    /// Every flow but the enrolment with the default parameters.
    pub main: TwoFactor<S>,
    /// The service with the default TOTP parameters, when `main` has others.
    pub defaults: Option<TwoFactor<S>>,
}

/// Creates the crate's tables (idempotent) and the services on `store`, with the secret cipher
/// and the backup-code pepper from the configuration.
pub async fn services<S: Backend>(store: S, config: &Config) -> Result<Services<S>, String> {
    store.migrate_store().await.map_err(|e| e.to_string())?;
    let main = service(store.clone(), config, config.totp)?;
    let defaults = if config.totp == TotpParameters::DEFAULT {
        None
    } else {
        Some(service(store, config, TotpParameters::DEFAULT)?)
    };
    Ok(Services { main, defaults })
}

/// One service on `store` whose new enrolments get `totp`.
fn service<S: Backend>(
    store: S,
    config: &Config,
    totp: TotpParameters,
) -> Result<TwoFactor<S>, String> {
    let (cipher, master) = match &config.key {
        KeyMaterial::Single(key) => (Keyring::single(1, **key), Some(key)),
        KeyMaterial::Ring(text) => (
            Keyring::from_config(text).map_err(|e| format!("TWOFACTOR_KEY: {e}"))?,
            None,
        ),
    };
    let backup_key = match (&config.backup_pepper, master) {
        (Some(pepper), _) => BackupCodeKey::from_bytes(**pepper),
        // HKDF-SHA256 with the crate's own label: independent of the encryption key's use.
        (None, Some(master)) => BackupCodeKey::derive(&master[..]),
        (None, None) => {
            return Err(
                "with a key ring in TWOFACTOR_KEY, also set TWOFACTOR_BACKUP_PEPPER \
                 (64 hex digits): the pepper must outlive key rotation"
                    .into(),
            );
        }
    };
    let mut service_config = ServiceConfig::new(ISSUER);
    service_config.change_delay_secs = config.limits.change_delay_secs;
    service_config.algorithm = totp.algorithm;
    service_config.digits = totp.digits;
    service_config.period = totp.period;
    TwoFactor::from_store(store, cipher, backup_key, service_config).map_err(|e| e.to_string())
}

/// A service failure: an account name, authenticator name or device label the service refuses is
/// the client's 400; anything else is logged with its source chain (store and cipher errors carry
/// no secrets) and answers 503: the service failed closed, nobody got in.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::InvalidAccountName(_) => ApiError::BadRequest(
                "this email cannot be used as an authenticator account name".into(),
            ),
            ServiceError::InvalidName => ApiError::BadRequest(
                "a name must have 1 to 64 characters and no control characters".into(),
            ),
            _ => ApiError::infra("two-factor service failed", &e),
        }
    }
}
