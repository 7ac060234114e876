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
    /// so, a fresh challenge token to pass to [`TwoFactor::complete_login`] with the factor the
    /// user presents. A pending (unconfirmed) enrolment does not require a second factor.
    ///
    /// With the browser's device token ([`StartLogin::device`]): when it is valid, bound to this
    /// user and still trusted (the user ticked "remember this browser" at a login with a second
    /// factor, [`Remember::Trusted`]), returns [`LoginStart::TrustedDevice`]: the password was
    /// enough. Any other token is ignored and a code is asked for as usual.
    ///
    /// Trust ends after [`Config::trusted_device_ttl_secs`], when the user revokes it
    /// ([`TwoFactor::revoke_trusted_device`], [`TwoFactor::forget_devices`]), and for every
    /// device of the user on [`TwoFactor::disable`], a completed recovery,
    /// [`TwoFactor::admin_reset`] and [`TwoFactor::password_changed`].
    ///
    /// Any valid device token of the user (trusted or only known) is the owner's proof: it
    /// cancels a recovery request that no operator approved. A browser trusted since before
    /// [`Config::change_delay_secs`] also cancels the scheduled changes of factors.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (treat as "cannot log in now").
    pub async fn start_login(&self, request: StartLogin<'_>) -> Result<LoginStart, ServiceError> {
        let StartLogin { user_id, device } = request;
        check_user_id(user_id)?;
        let now = self.clock.now();
        // One hash and one lookup for a trusted browser: every way 2FA is turned off also
        // revokes the user's device tokens, so a trusted token implies nothing else to check.
        if let Some((_, device)) = self.known_device(user_id, device, now).await? {
            let trusted = device.trusted_until.is_some_and(|until| now < until);
            let by = if trusted {
                CancelledBy::TrustedDevice
            } else {
                CancelledBy::KnownDevice
            };
            let established = self.device_established(&device, now);
            self.owner_proved(user_id, now, by, established).await?;
            if trusted {
                self.emit(now, || AuditEvent::TrustedDeviceUsed {
                    user_id: user_id.to_owned(),
                });
                return Ok(LoginStart::TrustedDevice);
            }
        }
        if !self.has_enabled(user_id).await? {
            return Ok(LoginStart::NotRequired);
        }
        self.new_challenge(user_id, now).await
    }

    /// Whether the user has an enabled authenticator.
    pub(super) async fn has_enabled(&self, user_id: &str) -> Result<bool, ServiceError> {
        Ok(self
            .credentials
            .get_credentials(user_id)
            .await
            .map_err(credential_err)?
            .iter()
            .any(|r| r.enabled))
    }

    async fn new_challenge(&self, user_id: &str, now: u64) -> Result<LoginStart, ServiceError> {
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

    /// Completes a login with the challenge from [`TwoFactor::start_login`] and the
    /// [`SecondFactor`] the user presented. On success returns the user id and consumes the
    /// challenge; a failure leaves the challenge usable until it expires (see the
    /// [service docs](super#login-challenges)).
    ///
    /// Without a valid device token ([`CompleteLogin::device`]) the attempt draws on the user's
    /// budget, which an attacker who has the password shares: pass the browser's token, and
    /// [`Remember::Device`] so that a browser without one gets one. On success the outcome then
    /// carries a new [`DeviceToken`] to store on the client in place of the old one (see
    /// [`Remember`] for when). Store it as an HTTP-only, `Secure`, `SameSite=Strict` cookie.
    ///
    /// # Errors
    /// [`ServiceError::InvalidName`] for an unusable [`Remember::Trusted`] label (checked first:
    /// no attempt is spent); store and cipher failures: nobody is let in, the challenge is not
    /// consumed. Failing to store a new device token is logged, not returned (the login
    /// succeeded, `device_token` is `None`).
    pub async fn complete_login(
        &self,
        request: CompleteLogin<'_>,
    ) -> Result<VerifyOutcome, ServiceError> {
        let CompleteLogin {
            challenge,
            factor,
            device: device_token,
            remember,
        } = request;
        let leave = match remember {
            Remember::No => Leave::Nothing,
            Remember::Device => Leave::Known,
            Remember::Trusted(label) => Leave::Trusted(check_name(label)?),
        };
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
                factor: factor.route().0,
                reason: FailureReason::UnknownChallenge,
            });
            return Ok(VerifyOutcome::Rejected);
        };
        let user_id = record.user_id;
        let device = self.known_device(&user_id, device_token, now).await?;
        let budget = device
            .as_ref()
            .map_or(Budget::User, |(hash, _)| Budget::Device(*hash));
        match self.check_code(&user_id, factor, now, budget).await? {
            Checked::Success {
                method,
                established,
            } => {
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
                        factor: factor.route().0,
                        reason: FailureReason::UnknownChallenge,
                    });
                    return Ok(VerifyOutcome::Rejected);
                }
                // A browser without a valid token gets one; one whose token has lived half its
                // life gets a fresh one, so a browser in daily use never falls back to the
                // user's budget. A renewed token keeps the old one's trust (not extended).
                let renew = device.as_ref().is_none_or(|(_, d)| {
                    now >= d.created_at.saturating_add(self.config.device_ttl_secs / 2)
                });
                let device_token = match leave {
                    Leave::Nothing => None,
                    Leave::Known if !renew => None,
                    Leave::Known => {
                        let trust = device
                            .as_ref()
                            .and_then(|(_, d)| d.trusted_until.map(|t| (t, d.label.clone())));
                        self.remember_device(&user_id, now, device.as_ref(), trust)
                            .await
                    }
                    Leave::Trusted(label) => {
                        let until = now.saturating_add(self.config.trusted_device_ttl_secs);
                        self.remember_device(&user_id, now, device.as_ref(), Some((until, label)))
                            .await
                    }
                };
                let proof = FactorProof {
                    user_id: user_id.clone(),
                    at: now,
                    established,
                };
                Ok(VerifyOutcome::Success {
                    user_id,
                    method,
                    device_token,
                    proof,
                })
            }
            Checked::Malformed { digits } => Ok(VerifyOutcome::Malformed { digits }),
            Checked::Rejected => Ok(VerifyOutcome::Rejected),
            Checked::RateLimited(retry_after_secs) => {
                Ok(VerifyOutcome::RateLimited { retry_after_secs })
            }
        }
    }

    /// The hash and record of `device_token` if it is a live device token of `user_id` (and
    /// records the use).
    pub(super) async fn known_device(
        &self,
        user_id: &str,
        device_token: Option<&str>,
        now: u64,
    ) -> Result<Option<(TokenHash, DeviceRecord)>, ServiceError> {
        let Some(hash) = device_token.and_then(token_hash) else {
            return Ok(None);
        };
        let record = self
            .credentials
            .use_device(&hash, now)
            .await
            .map_err(credential_err)?;
        Ok(record.filter(|d| d.user_id == user_id).map(|d| (hash, d)))
    }

    /// Issues and stores a device token, trusted until `trust.0` with label `trust.1` if given,
    /// and revokes the browser's `old` token (best effort: `None` if the store fails).
    pub(super) async fn remember_device(
        &self,
        user_id: &str,
        now: u64,
        old: Option<&(TokenHash, DeviceRecord)>,
        trust: Option<(u64, String)>,
    ) -> Option<DeviceToken> {
        let (token, hash) = new_token();
        let expires_at = now.saturating_add(self.config.device_ttl_secs);
        let trusted_until = trust.as_ref().map(|(until, _)| (*until).min(expires_at));
        let record = DeviceRecord {
            user_id: user_id.to_owned(),
            created_at: now,
            expires_at,
            trusted_until,
            label: trust.map(|(_, label)| label).unwrap_or_default(),
            last_used_at: now,
        };
        if let Err(e) = self.credentials.put_device(&hash, &record).await {
            tracing::warn!(target: "twofactor::service", error = %e, "could not store a device token");
            return None;
        }
        if let Some((old_hash, _)) = old
            && let Err(e) = self.credentials.delete_device(old_hash).await
        {
            tracing::warn!(target: "twofactor::service", error = %e, "could not revoke a replaced device token");
        }
        self.emit(now, || AuditEvent::DeviceRemembered {
            user_id: user_id.to_owned(),
        });
        if let Some(trusted_until) = trusted_until {
            self.emit(now, || AuditEvent::DeviceTrusted {
                user_id: user_id.to_owned(),
                trusted_until,
            });
        }
        Some(DeviceToken(token))
    }

    /// Checks a second factor for a user without a challenge: one-step login (code sent with the
    /// password) and step-up verification before sensitive actions. Same checks, limits and
    /// single use as [`TwoFactor::complete_login`]; a valid device token ([`Verify::device`])
    /// draws on the device's own budget, and no token is issued. A user without 2FA gets
    /// `Rejected`: ask [`TwoFactor::start_login`] or [`TwoFactor::status`] first whether a code
    /// is required.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (nobody is let in).
    pub async fn verify(&self, request: Verify<'_>) -> Result<VerifyOutcome, ServiceError> {
        let Verify {
            user_id,
            factor,
            device,
        } = request;
        check_user_id(user_id)?;
        let now = self.clock.now();
        let device = self.known_device(user_id, device, now).await?;
        let budget = device.map_or(Budget::User, |(hash, _)| Budget::Device(hash));
        let checked = self.check_code(user_id, factor, now, budget).await?;
        Ok(verified(user_id, checked, now))
    }

    /// Revokes every device token of the user, trusted or not (a lost or stolen laptop, or "sign
    /// out everywhere"); returns how many there were. The next successful login issues a new
    /// one.
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

    /// Call after the user changed their password. It always revokes every device token of the
    /// user, trusted or not (a browser the attacker had trusted must not skip the second factor;
    /// the owner's browsers get new tokens at their next login).
    ///
    /// Pass the [`FactorProof`] of a second factor checked in the same request (the
    /// [`VerifyOutcome::Success`] of [`TwoFactor::verify`] your password form asked for). With a
    /// fresh proof from an established authenticator, this also ends the user's lockout (the
    /// per-user budget starts clean) and cancels a recovery request no operator approved: a new
    /// password cut off an attacker who had the old one. Without one (`None`, a backup code, an
    /// authenticator added within [`Config::change_delay_secs`], another user's, or older than
    /// [`Config::challenge_ttl_secs`]) the budget is left as it is: a password alone, old or new,
    /// must never buy more guesses.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (call it again).
    pub async fn password_changed(
        &self,
        user_id: &str,
        proof: Option<&FactorProof>,
    ) -> Result<(), ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        self.forget_devices(user_id).await?;
        let fresh = proof.is_some_and(|p| {
            p.established
                && p.user_id == user_id
                && p.at <= now
                && now - p.at <= self.config.challenge_ttl_secs
        });
        if fresh {
            self.reset_limiter(user_id, now).await?;
            self.owner_proved(user_id, now, CancelledBy::PasswordChange, false)
                .await?;
        }
        self.emit(now, || AuditEvent::PasswordChanged {
            user_id: user_id.to_owned(),
        });
        Ok(())
    }
}

/// What a successful login leaves on the browser, its label checked.
enum Leave {
    /// Nothing ([`Remember::No`]).
    Nothing,
    /// A device token, renewed at half its life.
    Known,
    /// A new device token, trusted, with this label.
    Trusted(String),
}

/// The outcome of a check without a challenge (no device token is issued).
fn verified(user_id: &str, checked: Checked, now: u64) -> VerifyOutcome {
    match checked {
        Checked::Success {
            method,
            established,
        } => VerifyOutcome::Success {
            user_id: user_id.to_owned(),
            method,
            device_token: None,
            proof: FactorProof {
                user_id: user_id.to_owned(),
                at: now,
                established,
            },
        },
        Checked::Malformed { digits } => VerifyOutcome::Malformed { digits },
        Checked::Rejected => VerifyOutcome::Rejected,
        Checked::RateLimited(retry_after_secs) => VerifyOutcome::RateLimited { retry_after_secs },
    }
}
