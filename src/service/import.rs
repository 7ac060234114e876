//! Importing a credential made elsewhere: users enrolled by another library keep their
//! authenticator entry.

use super::*;

/// The name of an imported authenticator, until the user renames it.
const IMPORTED_NAME: &str = "Authenticator app (imported)";
use crate::otp::Algorithm;
use crate::uri::OtpKind;

/// A TOTP credential made by another system, for [`TwoFactor::import_credential`].
///
/// Start from [`ImportedCredential::new`] (SHA-1, 6 digits, 30 s: what nearly every system
/// issues) or [`ImportedCredential::from_uri`], and set what differs. A secret shorter than 128
/// bits (the 80-bit secrets many libraries issue) is made with
/// [`danger::short_secret_from_base32`](crate::danger::short_secret_from_base32).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImportedCredential {
    /// The shared secret the user's authenticator app holds. `Debug` is redacted.
    pub secret: Secret,
    /// The HMAC algorithm.
    pub algorithm: Algorithm,
    /// Digits per code, 6 to 10.
    pub digits: u32,
    /// Period in seconds, 1 to [`OtpAuthUri::MAX_PERIOD`].
    pub period: u64,
    /// The last time step the old system accepted, if it recorded one: that step and every
    /// earlier one are refused, so a code used on the old system cannot be replayed on the new.
    pub last_step: Option<u64>,
    /// Replace every authenticator the user already has, with the backup codes (default
    /// `false`: such a user is left alone and the import answers
    /// [`ImportOutcome::AlreadyEnabled`]). The user's trusted browsers stay trusted. The
    /// replacement is
    /// two store calls: a login that starts between them finds no second factor, so replace only
    /// while the user cannot log in (a migration before the switch-over).
    pub replace_enabled: bool,
}

impl ImportedCredential {
    /// A credential with `secret` and the usual parameters: SHA-1, 6 digits, 30 s, no last
    /// step, no replacement.
    #[must_use]
    pub fn new(secret: Secret) -> Self {
        Self {
            secret,
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: Totp::DEFAULT_PERIOD,
            last_step: None,
            replace_enabled: false,
        }
    }

    /// The secret and parameters of a TOTP otpauth URI (parse it with [`OtpAuthUri::parse`], or
    /// [`danger::parse_uri_allowing_short_secret`](crate::danger::parse_uri_allowing_short_secret)
    /// for an 80-bit secret). The issuer and account of the URI are not kept: the service shows
    /// its own.
    ///
    /// # Errors
    /// [`ServiceError::InvalidCredential`] for an HOTP URI: the service does TOTP only.
    pub fn from_uri(uri: &OtpAuthUri) -> Result<Self, ServiceError> {
        let OtpKind::Totp { period } = uri.kind() else {
            return Err(ServiceError::InvalidCredential(
                "an HOTP credential cannot be imported: the service does TOTP only".into(),
            ));
        };
        Ok(Self {
            algorithm: uri.algorithm(),
            digits: uri.digits().get(),
            period,
            ..Self::new(uri.secret().clone())
        })
    }
}

/// The result of [`TwoFactor::import_credential`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "outcome", rename_all = "snake_case"))]
#[must_use]
#[non_exhaustive]
pub enum ImportOutcome {
    /// 2FA is on with the imported secret; the user has no backup codes yet.
    Imported {
        /// Whether an enabled credential was replaced (only with `replace_enabled`).
        replaced: bool,
    },
    /// The user already has an enabled credential and the import did not ask to replace it:
    /// nothing changed.
    AlreadyEnabled,
    /// Another enrolment or import for the same user ran at the same moment and won: nothing of
    /// this import was kept.
    Superseded,
}

impl<C, E, K, Clk> TwoFactor<C, E, K, Clk>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
    Clk: Clock,
{
    /// Turns 2FA on for `user_id` with a secret and parameters made by another system, so the
    /// user keeps the entry already in their authenticator app. The secret is encrypted like any
    /// other, and a pending enrolment of the user is replaced.
    ///
    /// The user has **no backup codes** afterwards ([`Status::backup_codes_remaining`] is 0):
    /// ask them to make a set with [`TwoFactor::regenerate_backup_codes`] at their next login.
    /// Backup codes of the old system are not imported: their hashes are of another scheme
    /// (usually unkeyed and short enough to brute-force), which this crate does not verify.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; [`ServiceError::InvalidCredential`] when the parameters
    /// are unusable (digits outside 6 to 10, a period of 0 or over a day) or `last_step` lies
    /// after the current step, both [`ErrorKind::Input`](crate::error::ErrorKind::Input); store
    /// and cipher failures (with `replace_enabled`, the old credential may already be gone:
    /// import again).
    pub async fn import_credential(
        &self,
        user_id: &str,
        credential: ImportedCredential,
    ) -> Result<ImportOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let invalid = |e: crate::Error| ServiceError::InvalidCredential(Box::new(e));
        // The same checks as an enrolment's URI, so the credential can always be shown again.
        OtpAuthUri::totp_builder(credential.secret.clone(), "import")
            .issuer(self.config.issuer.clone())
            .algorithm(credential.algorithm)
            .digits(credential.digits)
            .period(credential.period)
            .build()
            .map_err(|e| invalid(e.into()))?;
        let totp = Totp::builder(&credential.secret)
            .algorithm(credential.algorithm)
            .digits(credential.digits)
            .period(credential.period)
            .build()
            .map_err(|e| invalid(e.into()))?;
        let current = totp.step_at(now).map_err(|e| invalid(e.into()))?;
        if credential.last_step.is_some_and(|s| s > current) {
            return Err(ServiceError::InvalidCredential(
                "the last used step lies in the future: check the old system's clock and period"
                    .into(),
            ));
        }
        let encrypted_secret = self
            .cipher
            .encrypt(credential.secret.expose_secret(), &secret_aad(user_id))
            .await
            .map_err(cipher_err)?;
        let mut replaced = false;
        if credential.replace_enabled && self.has_enabled(user_id).await? {
            replaced = self
                .credentials
                .delete_credentials(user_id)
                .await
                .map_err(credential_err)?;
        }
        let record = CredentialRecord {
            id: new_authenticator_id(),
            name: IMPORTED_NAME.to_owned(),
            encrypted_secret,
            algorithm: credential.algorithm,
            digits: credential.digits,
            period: credential.period,
            enabled: false,
            last_step: None,
            drift: 0,
            created_at: now,
            last_used_at: None,
            replaces: None,
        };
        if !self
            .credentials
            .put_pending(user_id, &record, true)
            .await
            .map_err(credential_err)?
        {
            return Ok(ImportOutcome::AlreadyEnabled);
        }
        // Step 0 is before any real step: with no known last step, every current code works.
        if !self
            .credentials
            .activate(
                user_id,
                &record.encrypted_secret,
                credential.last_step.unwrap_or(0),
                0,
                Some(&[]),
                self.config.max_authenticators,
            )
            .await
            .map_err(credential_err)?
        {
            return Ok(ImportOutcome::Superseded);
        }
        self.emit(now, || AuditEvent::CredentialImported {
            user_id: user_id.to_owned(),
            replaced,
        });
        Ok(ImportOutcome::Imported { replaced })
    }
}
