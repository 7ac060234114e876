//! Enrolment: a pending secret, then confirmation by a code, which turns 2FA on and issues the
//! backup codes.

use super::*;
use check::{DEFAULT_DIGITS, Matched, has_custom_parameters};

impl<C, E, K, Clk> TwoFactor<C, E, K, Clk>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
    Clk: Clock,
{
    /// Starts enrolment: generates a secret, stores it encrypted as **pending** (replacing any
    /// pending one) and returns what the user needs to add it to an authenticator app. 2FA is not
    /// on until [`TwoFactor::confirm_enrolment`] gets a valid code. The authenticator is called
    /// "Authenticator app" until the user renames it
    /// ([`TwoFactor::rename_authenticator`]). A user who already has 2FA on gets
    /// [`EnrolmentStart::AlreadyEnabled`]: more authenticators come through
    /// [`TwoFactor::add_authenticator`], which needs a code.
    ///
    /// `account_name` is shown in the app next to the issuer (usually the email address). It may
    /// contain `:`: the URI always carries the issuer, and a `:` inside the account is
    /// percent-encoded (`%3A`), so apps still split issuer and account at the literal separator
    /// (see [`crate::uri`]).
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; [`ServiceError::InvalidAccountName`] when the account name
    /// cannot go into an otpauth URI (empty, longer than
    /// [`OtpAuthUri::MAX_ACCOUNT_LEN`] bytes, or beginning with whitespace), both
    /// [`ErrorKind::Input`](crate::error::ErrorKind::Input); store and cipher failures (nothing
    /// stored).
    pub async fn start_enrolment(
        &self,
        user_id: &str,
        account_name: &str,
    ) -> Result<EnrolmentStart, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let uri = self.new_uri(account_name)?;
        let record = self
            .pending_record(
                user_id,
                &uri,
                FIRST_AUTHENTICATOR_NAME.to_owned(),
                None,
                now,
            )
            .await?;
        if !self
            .credentials
            .put_pending(user_id, &record, true)
            .await
            .map_err(credential_err)?
        {
            return Ok(EnrolmentStart::AlreadyEnabled);
        }
        self.emit(now, || AuditEvent::EnrolmentStarted {
            user_id: user_id.to_owned(),
        });
        Ok(EnrolmentStart::Started(Enrolment {
            uri,
            scheduled: None,
        }))
    }

    /// Confirms a pending enrolment with a code from the authenticator app.
    ///
    /// For a first enrolment, 2FA is on, the code's step counts as used, and the backup codes are
    /// returned, once ([`ConfirmOutcome::Confirmed`]). For an authenticator started with
    /// [`TwoFactor::add_authenticator`] or [`TwoFactor::replace_authenticator`], it joins the
    /// user's others, the replaced one is removed in the same atomic step, and the backup codes
    /// stay ([`ConfirmOutcome::Added`]).
    ///
    /// Rate limited like a login (the user's budget).
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (nothing changes).
    pub async fn confirm_enrolment(
        &self,
        user_id: &str,
        code: &str,
    ) -> Result<ConfirmOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        // What cannot be a code of the pending app costs nothing (see `check_code`). A 6-digit
        // code for a pending app of other parameters may come from an app that ignored them.
        let pending = self
            .credentials
            .get_credentials(user_id)
            .await
            .map_err(credential_err)?
            .into_iter()
            .find(|r| !r.enabled);
        let digits = pending.as_ref().map_or(self.config.digits, |r| r.digits);
        let custom = pending.as_ref().is_some_and(has_custom_parameters);
        if !check::is_totp_shaped(code, |n| n == digits || (custom && n == DEFAULT_DIGITS)) {
            return Ok(ConfirmOutcome::Malformed { digits });
        }
        let attempt = match self
            .acquire(user_id, Budget::User, Factor::Totp, now, 1)
            .await?
        {
            Ok(attempt) => attempt,
            Err(retry_after_secs) => return Ok(ConfirmOutcome::RateLimited { retry_after_secs }),
        };
        let Some((record, enabled, attempt)) = self.load_pending(attempt, user_id, code).await?
        else {
            return Ok(ConfirmOutcome::Rejected);
        };
        let (_, m, attempt) = match self
            .decrypt_and_match(attempt, user_id, &record, code)
            .await?
        {
            Matched::Yes(d, m, attempt) => (d, m, attempt),
            Matched::No => return Ok(ConfirmOutcome::Rejected),
            Matched::DefaultsOnly => return Ok(ConfirmOutcome::AppIgnoredSettings),
        };
        // A first enrolment turns 2FA on with a new set of backup codes; an added authenticator
        // joins the others and leaves the codes alone. The store checks which one this still is.
        let codes = (enabled == 0).then(|| backup_codes::generate(self.config.backup_code_count));
        let hashes: Option<Vec<BackupCodeHash>> = codes.as_ref().map(|codes| {
            codes
                .iter()
                .map(|c| self.backup_key.hash(user_id, c))
                .collect()
        });
        // The code was evaluated: a store error leaves the attempt counted.
        let activated = self
            .credentials
            .activate(
                user_id,
                &record.encrypted_secret,
                m.step,
                m.drift,
                hashes.as_deref(),
                self.config.max_authenticators,
            )
            .await
            .map_err(credential_err)?;
        if !activated {
            // Replaced by a newer enrolment (or confirmed) between our read and the activation,
            // 2FA turned on or off meanwhile, or the limit reached.
            self.fail(attempt, user_id, FailureReason::Superseded);
            return Ok(ConfirmOutcome::Rejected);
        }
        self.succeed(attempt, user_id).await;
        let Some(codes) = codes else {
            // "Was this you?": the owner's notice, with a token that removes it (lock-down).
            let notice = self.best_effort_notice(user_id, now).await;
            self.emit(now, || AuditEvent::AuthenticatorAdded {
                user_id: user_id.to_owned(),
                authenticator: record.id.clone(),
                replaced: record.replaces.clone(),
                notice,
            });
            return Ok(ConfirmOutcome::Added {
                authenticator: record.id,
                replaced: record.replaces,
            });
        };
        self.emit(now, || AuditEvent::EnrolmentConfirmed {
            user_id: user_id.to_owned(),
            drift: m.drift,
            backup_codes: u32::try_from(codes.len()).unwrap_or(u32::MAX),
        });
        Ok(ConfirmOutcome::Confirmed {
            backup_codes: codes,
        })
    }

    /// A fresh secret for `account_name`, as the otpauth URI the user's app will scan. Built
    /// before anything else, so a bad account name is refused as the caller's input.
    pub(super) fn new_uri(&self, account_name: &str) -> Result<OtpAuthUri, ServiceError> {
        OtpAuthUri::totp_builder(Secret::generate(self.config.algorithm), account_name)
            .issuer(self.config.issuer.clone())
            .algorithm(self.config.algorithm)
            .digits(self.config.digits)
            .period(self.config.period)
            .build()
            .map_err(ServiceError::InvalidAccountName)
    }

    /// The pending authenticator record of `uri`'s secret, encrypted for `user_id`.
    pub(super) async fn pending_record(
        &self,
        user_id: &str,
        uri: &OtpAuthUri,
        name: String,
        replaces: Option<String>,
        now: u64,
    ) -> Result<CredentialRecord, ServiceError> {
        let encrypted_secret = self
            .cipher
            .encrypt(uri.secret().expose_secret(), &secret_aad(user_id))
            .await
            .map_err(cipher_err)?;
        Ok(CredentialRecord {
            id: new_authenticator_id(),
            name,
            encrypted_secret,
            algorithm: self.config.algorithm,
            digits: self.config.digits,
            period: self.config.period,
            enabled: false,
            last_step: None,
            drift: 0,
            created_at: now,
            last_used_at: None,
            replaces,
        })
    }
}
