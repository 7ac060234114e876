//! The second factor, entirely through the crate's [`TwoFactor`] service: this module only builds
//! it on the backend's store and translates outcomes into the API's vocabulary.
//! No code is checked, counted or stored here.

use zeroize::Zeroizing;

use twofactor::service::Config as ServiceConfig;
use twofactor::service::{
    ConfirmOutcome, DisableOutcome, EnrolmentStart, LoginStart as ServiceLoginStart,
    RegenerateOutcome, VerifyOutcome,
};
use twofactor::{BackupCodeKey, Keyring, ServiceError, TwoFactor};

use crate::config::{Config, KeyMaterial};
use crate::db::Backend;
use crate::error::ApiError;

/// The name authenticator apps show next to the account.
const ISSUER: &str = "twofactor demo";

/// The outcome of a code check, as the API needs it.
pub enum Check {
    /// The code was right (and is now used up).
    Success,
    /// Wrong, replayed, expired, or no 2FA: all the same from outside.
    Rejected,
    /// Too many attempts; the code was not even looked at.
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
}

impl From<VerifyOutcome> for Check {
    fn from(o: VerifyOutcome) -> Self {
        match o {
            VerifyOutcome::Success { .. } => Self::Success,
            VerifyOutcome::RateLimited { retry_after_secs } => Self::RateLimited {
                retry_after: retry_after_secs,
            },
            // `Rejected`, and fail closed on any outcome added later.
            _ => Self::Rejected,
        }
    }
}

/// The password step's result.
pub enum LoginStart {
    /// 2FA is on: the client must answer this challenge with a code.
    Challenge(Zeroizing<String>),
    /// 2FA is off: the password suffices.
    NotEnrolled,
}

/// What `/api/me` shows.
pub struct Status {
    /// 2FA is on.
    pub enabled: bool,
    /// Unused backup codes.
    pub backup_codes_remaining: u32,
}

/// What the user needs to add the account to an authenticator app.
pub struct Enrolment {
    /// Base32 secret for typing in by hand.
    pub secret: Zeroizing<String>,
    /// The otpauth:// URI.
    pub otpauth_uri: Zeroizing<String>,
    /// The URI as an SVG QR code.
    pub qr_svg: Zeroizing<String>,
}

/// The service over the backend's store.
pub struct TwoFa<S: Backend>(TwoFactor<S>);

/// Logs a service failure with its source chain (store and cipher errors carry no secrets) and
/// answers 503: the service failed closed, nobody got in.
fn unavailable(e: &ServiceError) -> ApiError {
    match e {
        ServiceError::InvalidAccountName(_) => ApiError::BadRequest(
            "this email cannot be used as an authenticator account name".into(),
        ),
        _ => ApiError::infra("two-factor service failed", e),
    }
}

impl<S: Backend> TwoFa<S> {
    /// Creates the crate's tables (idempotent) and the service, with the secret cipher and the
    /// backup-code pepper from the configuration.
    pub async fn new(store: S, config: &Config) -> Result<Self, String> {
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
        let service_config = ServiceConfig::new(ISSUER);
        store.migrate_store().await.map_err(|e| e.to_string())?;
        TwoFactor::from_store(store, cipher, backup_key, service_config)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    /// Deletes expired challenges and stale limiter rows (housekeeping; expired rows are never
    /// honoured, they only take space).
    pub async fn purge_expired(&self, now: u64) -> Result<u64, twofactor::store::SqlStoreError> {
        self.0.ephemeral_store().purge_store(now).await
    }

    /// Whether 2FA is on, and how many backup codes are left.
    pub async fn status(&self, user_id: &str) -> Result<Status, ApiError> {
        let s = self.0.status(user_id).await.map_err(|e| unavailable(&e))?;
        Ok(Status {
            enabled: s.enabled,
            backup_codes_remaining: s.backup_codes_remaining,
        })
    }

    /// Checks a TOTP or backup code for a user whose password was just verified.
    pub async fn verify(&self, user_id: &str, code: &str) -> Result<Check, ApiError> {
        self.0
            .verify(user_id, code)
            .await
            .map(Check::from)
            .map_err(|e| unavailable(&e))
    }

    /// After the password: a challenge if 2FA is on.
    pub async fn start_login(&self, user_id: &str) -> Result<LoginStart, ApiError> {
        match self.0.start_login(user_id).await {
            Ok(ServiceLoginStart::Required { challenge, .. }) => Ok(LoginStart::Challenge(
                Zeroizing::new(challenge.as_str().to_owned()),
            )),
            Ok(ServiceLoginStart::NotRequired) => Ok(LoginStart::NotEnrolled),
            Ok(_) => Err(ApiError::Unavailable),
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// Answers a challenge; on success, whose login it was.
    pub async fn complete_login(
        &self,
        challenge: &str,
        code: &str,
    ) -> Result<(Check, Option<String>), ApiError> {
        match self.0.complete_login(challenge, code).await {
            Ok(VerifyOutcome::Success { user_id, .. }) => Ok((Check::Success, Some(user_id))),
            Ok(other) => Ok((Check::from(other), None)),
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// A new pending secret (replacing any pending one); `None` when 2FA is already on.
    pub async fn start_enrolment(
        &self,
        user_id: &str,
        account_name: &str,
    ) -> Result<Option<Enrolment>, ApiError> {
        match self.0.start_enrolment(user_id, account_name).await {
            Ok(EnrolmentStart::Started(e)) => {
                let qr = e.qr().map_err(|e| ApiError::infra("QR code failed", &e))?;
                Ok(Some(Enrolment {
                    secret: e.secret_base32(),
                    otpauth_uri: e.otpauth_uri(),
                    qr_svg: qr.to_svg(),
                }))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// Confirms the pending secret with a code; the backup codes, or why not.
    pub async fn confirm_enrolment(
        &self,
        user_id: &str,
        code: &str,
    ) -> Result<Result<Vec<Zeroizing<String>>, Check>, ApiError> {
        match self.0.confirm_enrolment(user_id, code).await {
            Ok(ConfirmOutcome::Confirmed { backup_codes }) => Ok(Ok(backup_codes
                .iter()
                .map(|c| Zeroizing::new(c.as_str().to_owned()))
                .collect())),
            Ok(ConfirmOutcome::RateLimited { retry_after_secs }) => Ok(Err(Check::RateLimited {
                retry_after: retry_after_secs,
            })),
            Ok(_) => Ok(Err(Check::Rejected)),
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// A new set of backup codes (the old set void), given a valid code.
    pub async fn regenerate_backup_codes(
        &self,
        user_id: &str,
        code: &str,
    ) -> Result<Result<Vec<Zeroizing<String>>, Check>, ApiError> {
        match self.0.regenerate_backup_codes(user_id, code).await {
            Ok(RegenerateOutcome::Regenerated { backup_codes }) => Ok(Ok(backup_codes
                .iter()
                .map(|c| Zeroizing::new(c.as_str().to_owned()))
                .collect())),
            Ok(RegenerateOutcome::RateLimited { retry_after_secs }) => {
                Ok(Err(Check::RateLimited {
                    retry_after: retry_after_secs,
                }))
            }
            Ok(_) => Ok(Err(Check::Rejected)),
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// Turns 2FA off, given a valid code.
    pub async fn disable(&self, user_id: &str, code: &str) -> Result<Check, ApiError> {
        match self.0.disable(user_id, code).await {
            Ok(DisableOutcome::Disabled) => Ok(Check::Success),
            Ok(DisableOutcome::RateLimited { retry_after_secs }) => Ok(Check::RateLimited {
                retry_after: retry_after_secs,
            }),
            Ok(_) => Ok(Check::Rejected),
            Err(e) => Err(unavailable(&e)),
        }
    }
}
