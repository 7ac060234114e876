//! Login: the challenge after the password, the code check against the user's or a known
//! device's budget, device tokens, and what a password change ends.

use super::*;

impl<C, E, K, Clk> TwoFactor<C, E, K, Clk>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
    Clk: Clock,
{
    /// Call after the password was verified. Returns whether a second factor is required and, if
    /// so, a fresh challenge token to pass to [`TwoFactor::complete_login`] with the code.
    ///
    /// A pending (unconfirmed) enrolment does not require a second factor.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (treat as "cannot log in now").
    pub async fn start_login(&self, user_id: &str) -> Result<LoginStart, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let enabled = self
            .credentials
            .get_credential(user_id)
            .await
            .map_err(credential_err)?
            .is_some_and(|r| r.enabled);
        if !enabled {
            return Ok(LoginStart::NotRequired);
        }
        let (token, _) = new_token();
        let expires_at = now.saturating_add(self.config.challenge_ttl_secs);
        self.ephemeral
            .put_challenge(
                &challenge_hash(&token),
                &ChallengeRecord {
                    user_id: user_id.to_owned(),
                    expires_at,
                },
            )
            .await
            .map_err(ephemeral_err)?;
        Ok(LoginStart::Required {
            challenge: ChallengeToken(token),
            expires_at,
        })
    }

    /// Completes a login with the challenge from [`TwoFactor::start_login`] and what the user
    /// typed: a TOTP code (spaces ignored) or a backup code, told apart by shape
    /// ([`backup_codes::looks_like_backup_code`]). On success returns the user id and consumes
    /// the challenge; a failure leaves the challenge usable until it expires (see the
    /// [service docs](super#login-challenges)).
    ///
    /// The attempt draws on the user's budget, which an attacker who has the password shares:
    /// prefer [`TwoFactor::complete_login_with_device`], which gives the owner's browsers their
    /// own.
    ///
    /// # Errors
    /// Store and cipher failures: nobody is let in, the challenge is not consumed.
    pub async fn complete_login(
        &self,
        challenge: &str,
        code: &str,
    ) -> Result<VerifyOutcome, ServiceError> {
        self.complete_login_inner(challenge, code, None, false)
            .await
    }

    /// [`TwoFactor::complete_login`] for a browser that may hold a device token from an earlier
    /// login of this user (pass `None` when it has none).
    ///
    /// A valid token for this user (not expired, not revoked) makes the attempt count against
    /// that device's own budget ([`Config::device_rate_limit`]), which failures from other
    /// clients never consume: an attacker who has the password and keeps the user's budget
    /// locked cannot lock the owner out of their own browser. An invalid, expired or foreign
    /// token is ignored (the user's budget applies); it is not an error.
    ///
    /// On success without a valid token, or with one past half its life
    /// ([`Config::device_ttl_secs`]), the outcome carries a new [`DeviceToken`] to store on the
    /// client in place of the old one. The token does not skip the second factor.
    ///
    /// # Errors
    /// Store and cipher failures: nobody is let in, the challenge is not consumed. Failing to
    /// store a new device token is logged, not returned (the login succeeded).
    pub async fn complete_login_with_device(
        &self,
        challenge: &str,
        code: &str,
        device_token: Option<&str>,
    ) -> Result<VerifyOutcome, ServiceError> {
        self.complete_login_inner(challenge, code, device_token, true)
            .await
    }

    pub(super) async fn complete_login_inner(
        &self,
        challenge: &str,
        code: &str,
        device_token: Option<&str>,
        remember: bool,
    ) -> Result<VerifyOutcome, ServiceError> {
        let now = self.clock.now();
        let hash = (challenge.len() <= MAX_CHALLENGE_LEN).then(|| challenge_hash(challenge));
        let record = match &hash {
            Some(h) => self
                .ephemeral
                .get_challenge(h, now)
                .await
                .map_err(ephemeral_err)?,
            None => None,
        };
        let (Some(hash), Some(record)) = (hash, record) else {
            self.emit(now, || AuditEvent::VerificationFailed {
                user_id: None,
                factor: factor_of(code),
                reason: FailureReason::UnknownChallenge,
            });
            return Ok(VerifyOutcome::Rejected);
        };
        let user_id = record.user_id;
        let device = self.known_device(&user_id, device_token, now).await?;
        let budget = device.map_or(Budget::User, |(hash, _)| Budget::Device(hash));
        match self.check_code(&user_id, code, now, budget).await? {
            Checked::Success(method) => {
                // The code is used up; the challenge must be too, atomically. Losing this race
                // means another request completed this login first.
                let taken = self
                    .ephemeral
                    .take_challenge(&hash, now)
                    .await
                    .map_err(ephemeral_err)?;
                if taken.is_none_or(|t| t.user_id != user_id) {
                    self.emit(now, || AuditEvent::VerificationFailed {
                        user_id: Some(user_id),
                        factor: factor_of(code),
                        reason: FailureReason::UnknownChallenge,
                    });
                    return Ok(VerifyOutcome::Rejected);
                }
                // A browser without a valid token gets one; one whose token has lived half its
                // life gets a fresh one, so a browser in daily use never falls back to the
                // user's budget.
                let renew = device.is_none_or(|(_, created_at)| {
                    now >= created_at.saturating_add(self.config.device_ttl_secs / 2)
                });
                let device_token = if remember && renew {
                    self.remember_device(&user_id, now).await
                } else {
                    None
                };
                Ok(VerifyOutcome::Success {
                    user_id,
                    method,
                    device_token,
                })
            }
            Checked::Rejected => Ok(VerifyOutcome::Rejected),
            Checked::RateLimited(retry_after_secs) => {
                Ok(VerifyOutcome::RateLimited { retry_after_secs })
            }
        }
    }

    /// The hash and issue time of `device_token` if it is a live device token of `user_id`.
    pub(super) async fn known_device(
        &self,
        user_id: &str,
        device_token: Option<&str>,
        now: u64,
    ) -> Result<Option<(TokenHash, u64)>, ServiceError> {
        let Some(hash) = device_token.and_then(token_hash) else {
            return Ok(None);
        };
        let record = self
            .credentials
            .get_device(&hash, now)
            .await
            .map_err(credential_err)?;
        Ok(record
            .filter(|d| d.user_id == user_id)
            .map(|d| (hash, d.created_at)))
    }

    /// Issues and stores a device token (best effort: `None` if the store fails).
    pub(super) async fn remember_device(&self, user_id: &str, now: u64) -> Option<DeviceToken> {
        let (token, hash) = new_token();
        let record = DeviceRecord {
            user_id: user_id.to_owned(),
            created_at: now,
            expires_at: now.saturating_add(self.config.device_ttl_secs),
        };
        match self.credentials.put_device(&hash, &record).await {
            Ok(()) => {
                self.emit(now, || AuditEvent::DeviceRemembered {
                    user_id: user_id.to_owned(),
                });
                Some(DeviceToken(token))
            }
            Err(e) => {
                tracing::warn!(target: "twofactor::service", error = %e, "could not store a device token");
                None
            }
        }
    }

    /// Checks a code for `user_id` without a challenge: one-step login (code sent with the
    /// password) and step-up verification before sensitive actions. Same checks, limits and
    /// single use as [`TwoFactor::complete_login`]. A user without 2FA gets `Rejected`: ask
    /// [`TwoFactor::start_login`] or [`TwoFactor::status`] first whether a code is required.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (nobody is let in).
    pub async fn verify(&self, user_id: &str, code: &str) -> Result<VerifyOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let checked = self.check_code(user_id, code, now, Budget::User).await?;
        Ok(verified(user_id, checked))
    }

    /// [`TwoFactor::verify`] from a browser that may hold a device token of this user: a valid
    /// one draws on the device's own budget (see [`TwoFactor::complete_login_with_device`]). No
    /// new token is issued.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (nobody is let in).
    pub async fn verify_with_device(
        &self,
        user_id: &str,
        code: &str,
        device_token: Option<&str>,
    ) -> Result<VerifyOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let device = self.known_device(user_id, device_token, now).await?;
        let budget = device.map_or(Budget::User, |(hash, _)| Budget::Device(hash));
        let checked = self.check_code(user_id, code, now, budget).await?;
        Ok(verified(user_id, checked))
    }

    /// Revokes every device token of the user (a lost or stolen laptop, or "sign out
    /// everywhere"); returns how many there were. The next successful login issues a new one.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn forget_devices(&self, user_id: &str) -> Result<u64, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let count = self
            .credentials
            .delete_devices(user_id)
            .await
            .map_err(credential_err)?;
        if count > 0 {
            self.emit(now, || AuditEvent::DevicesForgotten {
                user_id: user_id.to_owned(),
                count,
            });
        }
        Ok(count)
    }

    /// Call after the user changed their password (which your application must allow only with
    /// the second factor: the old password may be the attacker's). A new password cuts an
    /// attacker who had the old one off, so this ends the user's lockout (the per-user budget
    /// starts clean) and cancels a pending recovery request.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (call it again).
    pub async fn password_changed(&self, user_id: &str) -> Result<(), ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        self.reset_limiter(user_id, now).await?;
        if self
            .credentials
            .cancel_recovery(user_id)
            .await
            .map_err(credential_err)?
        {
            self.emit(now, || AuditEvent::RecoveryCancelled {
                user_id: user_id.to_owned(),
                by: CancelledBy::PasswordChange,
            });
        }
        self.emit(now, || AuditEvent::PasswordChanged {
            user_id: user_id.to_owned(),
        });
        Ok(())
    }
}

/// The outcome of a check without a challenge (no device token is issued).
fn verified(user_id: &str, checked: Checked) -> VerifyOutcome {
    match checked {
        Checked::Success(method) => VerifyOutcome::Success {
            user_id: user_id.to_owned(),
            method,
            device_token: None,
        },
        Checked::Rejected => VerifyOutcome::Rejected,
        Checked::RateLimited(retry_after_secs) => VerifyOutcome::RateLimited { retry_after_secs },
    }
}
