//! The code check itself: routing by shape, TOTP with single use, backup codes, the dummy work
//! for users without a second factor, and lazy key rotation.

use super::*;

impl<C, E, K, Clk> TwoFactor<C, E, K, Clk>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
    Clk: Clock,
{
    /// Checks a TOTP or backup code for an enabled credential on `budget`, with limits, single
    /// use, audit, and the success side effects (attempt given back, recovery cancelled, lazy
    /// rotation).
    pub(super) async fn check_code(
        &self,
        user_id: &str,
        factor: SecondFactor<'_>,
        now: u64,
        budget: Budget,
    ) -> Result<Checked, ServiceError> {
        self.check_code_except(user_id, factor, now, budget, None)
            .await
    }

    /// [`Self::check_code`], where a TOTP code of authenticator `except` does not count (a
    /// factor that stays must prove the removal of another).
    pub(super) async fn check_code_except(
        &self,
        user_id: &str,
        factor: SecondFactor<'_>,
        now: u64,
        budget: Budget,
        except: Option<&str>,
    ) -> Result<Checked, ServiceError> {
        let (factor, code) = factor.route();
        // A backup code of the right shape; one of the wrong shape is malformed below, after
        // the read that says how many digits the user's codes have.
        if factor == Factor::BackupCode && factor_of(code) == Factor::BackupCode {
            let attempt = match self.acquire(user_id, budget, factor, now, 1).await? {
                Ok(attempt) => attempt,
                Err(retry_after_secs) => return Ok(Checked::RateLimited(retry_after_secs)),
            };
            return self.check_backup_code(user_id, code, attempt).await;
        }
        // The authenticators are read first: the attempt weighs as many candidates as the code
        // is compared with (see `acquire`).
        let records = self
            .credentials
            .get_credentials(user_id)
            .await
            .map_err(credential_err)?;
        let active: Vec<&CredentialRecord> = records
            .iter()
            .filter(|r| r.enabled && Some(r.id.as_str()) != except)
            .collect();
        // What cannot be a code of any of them is answered before any budget is touched: it
        // matches nothing, so refusing it tells an attacker nothing and must cost the owner
        // nothing. A user without 2FA (or unknown) is judged by the configured digits, like a
        // new user.
        let expected = active.first().map_or(self.config.digits, |r| r.digits);
        if factor != Factor::Totp
            || !is_totp_shaped(code, |n| {
                if active.is_empty() {
                    n == self.config.digits
                } else {
                    active.iter().any(|r| r.digits == n)
                }
            })
        {
            return Ok(Checked::Malformed { digits: expected });
        }
        let attempt = match self
            .acquire(user_id, budget, factor, now, active.len())
            .await?
        {
            Ok(attempt) => attempt,
            Err(retry_after_secs) => return Ok(Checked::RateLimited(retry_after_secs)),
        };
        let oldest = super::changes::oldest_enabled(&records);
        self.check_totp_login(user_id, code, attempt, &active, oldest)
            .await
    }

    /// Checks a TOTP code against **every** authenticator in `active`: each is decrypted and
    /// checked whichever matches, so the work does not say which one did. The first that matched
    /// and whose step advances wins.
    pub(super) async fn check_totp_login(
        &self,
        user_id: &str,
        code: &str,
        attempt: Attempt,
        active: &[&CredentialRecord],
        oldest: Option<&str>,
    ) -> Result<Checked, ServiceError> {
        let now = attempt.now;
        let clean = clean_totp_input(code);
        // Every login does the work of the configured maximum of authenticators, so its time
        // does not say how many the user has (or whether the user has any).
        let rounds = (self.config.max_authenticators as usize).max(active.len());
        if active.is_empty() {
            if let Err(e) = self
                .pad(user_id, clean.as_deref().map(String::as_str), now, rounds)
                .await
            {
                return Err(self.release_on_error(attempt, e).await);
            }
            self.fail(attempt, user_id, FailureReason::NotEnrolled);
            return Ok(Checked::Rejected);
        }
        let aad = secret_aad(user_id);
        let mut matched = Vec::new();
        for &record in active {
            let decrypted = match self.cipher.decrypt(&record.encrypted_secret, &aad).await {
                Ok(d) => d,
                Err(e) => return Err(self.release_on_error(attempt, cipher_err(e)).await),
            };
            match self.check_clean_totp(
                &decrypted.plaintext,
                record,
                clean.as_ref().map(|c| c.as_str()),
                now,
            ) {
                Ok(Some(m)) => matched.push((record, decrypted, m)),
                Ok(None) => {}
                Err(e) => return Err(self.release_on_error(attempt, e).await),
            }
        }
        let clean_ref = clean.as_deref().map(String::as_str);
        if let Err(e) = self
            .pad(user_id, clean_ref, now, rounds - active.len())
            .await
        {
            return Err(self.release_on_error(attempt, e).await);
        }
        if matched.is_empty() {
            self.fail(attempt, user_id, FailureReason::WrongCode);
            return Ok(Checked::Rejected);
        }
        // The code was evaluated: from here on the attempt stays counted unless it succeeds.
        let mut winner = None;
        for (record, decrypted, m) in matched {
            if self
                .credentials
                .advance_step(
                    user_id,
                    &record.id,
                    &record.encrypted_secret,
                    m.step,
                    m.drift,
                    now,
                )
                .await
                .map_err(credential_err)?
            {
                winner = Some((record, decrypted, m));
                break;
            }
        }
        let Some((record, decrypted, m)) = winner else {
            // A valid code for a step already used, or for an authenticator replaced or removed
            // since it was read: never twice.
            self.emit(now, || AuditEvent::ReplayRejected {
                user_id: user_id.to_owned(),
            });
            self.counted(attempt, user_id);
            return Ok(Checked::Rejected);
        };
        self.succeed(attempt, user_id).await;
        let established = self.is_established(record, oldest, now);
        self.after_second_factor(user_id, now, established).await?;
        if decrypted.stale_key {
            self.rotate(
                user_id,
                &record.id,
                &record.encrypted_secret,
                &decrypted.plaintext,
                &secret_aad(user_id),
                now,
            )
            .await;
        }
        self.emit(now, || AuditEvent::VerificationSucceeded {
            user_id: user_id.to_owned(),
            factor: Factor::Totp,
            drift: m.drift,
        });
        Ok(Checked::Success {
            method: Method::Totp { drift: m.drift },
            established,
        })
    }

    pub(super) async fn check_backup_code(
        &self,
        user_id: &str,
        code: &str,
        attempt: Attempt,
    ) -> Result<Checked, ServiceError> {
        let now = attempt.now;
        let Some(hash) = self.backup_key.hash_input(user_id, code) else {
            self.fail(attempt, user_id, FailureReason::Malformed);
            return Ok(Checked::Rejected);
        };
        // One atomic delete-and-return: of concurrent uses of one code, exactly one gets here. A
        // store error leaves the attempt counted: the store may have compared the code.
        let remaining = self
            .credentials
            .consume_backup_code(user_id, &hash)
            .await
            .map_err(credential_err)?;
        let Some(remaining) = remaining else {
            self.fail(attempt, user_id, FailureReason::WrongCode);
            return Ok(Checked::Rejected);
        };
        self.succeed(attempt, user_id).await;
        self.after_second_factor(user_id, now, false).await?;
        let notice = self.best_effort_notice(user_id, now).await;
        self.emit(now, || AuditEvent::BackupCodeUsed {
            user_id: user_id.to_owned(),
            remaining,
            notice,
        });
        self.emit(now, || AuditEvent::VerificationSucceeded {
            user_id: user_id.to_owned(),
            factor: Factor::BackupCode,
            drift: 0,
        });
        Ok(Checked::Success {
            method: Method::BackupCode { remaining },
            established: false,
        })
    }

    /// Loads the user's pending authenticator for a confirmation, with the user's enabled
    /// count. Without one, does the same work as a wrong code (decrypt a blob, check a code),
    /// leaves the attempt counted and gives `Ok(None)`. An infrastructure error before the code
    /// was looked at gives the attempt back.
    pub(super) async fn load_pending(
        &self,
        attempt: Attempt,
        user_id: &str,
        code: &str,
    ) -> Result<Option<(CredentialRecord, usize, Attempt)>, ServiceError> {
        let mut records = match self.credentials.get_credentials(user_id).await {
            Ok(r) => r,
            Err(e) => return Err(self.release_on_error(attempt, credential_err(e)).await),
        };
        let enabled = records.iter().filter(|r| r.enabled).count();
        let Some(i) = records.iter().position(|r| !r.enabled) else {
            if let Err(e) = self.dummy_check(user_id, code, attempt.now).await {
                return Err(self.release_on_error(attempt, e).await);
            }
            self.fail(attempt, user_id, FailureReason::NoPendingEnrolment);
            return Ok(None);
        };
        Ok(Some((records.swap_remove(i), enabled, attempt)))
    }

    /// Decrypts the pending secret and checks `code` against it. A wrong code leaves the attempt
    /// counted and gives [`Matched::No`], or [`Matched::DefaultsOnly`] when the record has other
    /// parameters than SHA-1 / 6 digits / 30 s and the code is right for those defaults (an app
    /// that ignored the URI's parameters: told, never accepted). An infrastructure error before
    /// the check gives the attempt back.
    pub(super) async fn decrypt_and_match(
        &self,
        attempt: Attempt,
        user_id: &str,
        record: &CredentialRecord,
        code: &str,
    ) -> Result<Matched, ServiceError> {
        let decrypted = match self
            .cipher
            .decrypt(&record.encrypted_secret, &secret_aad(user_id))
            .await
        {
            Ok(d) => d,
            Err(e) => return Err(self.release_on_error(attempt, cipher_err(e)).await),
        };
        let matched = match self.check_totp(&decrypted.plaintext, record, code, attempt.now) {
            Ok(m) => m,
            Err(e) => return Err(self.release_on_error(attempt, e).await),
        };
        let Some(m) = matched else {
            let ignored = has_custom_parameters(record)
                && self.matches_defaults(&decrypted.plaintext, code, attempt.now)?;
            self.fail(attempt, user_id, FailureReason::WrongCode);
            return Ok(if ignored {
                Matched::DefaultsOnly
            } else {
                Matched::No
            });
        };
        Ok(Matched::Yes(decrypted, m, attempt))
    }

    /// Whether `code` is right for `plaintext` under SHA-1 / 6 digits / 30 s (±1 step).
    fn matches_defaults(
        &self,
        plaintext: &[u8],
        code: &str,
        now: u64,
    ) -> Result<bool, ServiceError> {
        let defaults = CredentialRecord {
            algorithm: crate::Algorithm::Sha1,
            digits: DEFAULT_DIGITS,
            period: crate::Totp::DEFAULT_PERIOD,
            enabled: false,
            ..dummy_record()
        };
        Ok(self.check_totp(plaintext, &defaults, code, now)?.is_some())
    }

    pub(super) fn check_totp(
        &self,
        plaintext: &[u8],
        record: &CredentialRecord,
        code: &str,
        now: u64,
    ) -> Result<Option<crate::TotpMatch>, ServiceError> {
        self.check_clean_totp(
            plaintext,
            record,
            clean_totp_input(code).as_ref().map(|c| c.as_str()),
            now,
        )
    }

    /// [`Self::check_totp`] for input already cleaned by `clean_totp_input` (`None`: input too
    /// long to be a code, which still costs the key schedule, like any other wrong code).
    pub(super) fn check_clean_totp(
        &self,
        plaintext: &[u8],
        record: &CredentialRecord,
        clean: Option<&str>,
        now: u64,
    ) -> Result<Option<crate::TotpMatch>, ServiceError> {
        let secret = Secret::from_bytes_unchecked_len(plaintext)
            .map_err(|e| ServiceError::CorruptCredential(Box::new(e)))?;
        let totp = self.totp_for(&secret, record)?;
        let Some(clean) = clean else {
            return Ok(None);
        };
        let shift = if self.config.follow_drift && record.enabled {
            let max = i64::from(Window::MAX_STEPS);
            record.drift.clamp(-max, max)
        } else {
            0
        };
        match totp.verify_shifted_at(clean, now, shift) {
            Ok(TotpOutcome::Valid(m)) => Ok(Some(later_match(&totp, record, clean, m, now, shift))),
            Ok(TotpOutcome::Invalid) => Ok(None),
            Err(e) => Err(ServiceError::CorruptCredential(Box::new(e))),
        }
    }

    /// The work of a code check for a user without an enabled credential: decrypt a dummy blob
    /// and verify the code against the dummy secret. The result is thrown away. The blob's
    /// associated data is built like `user_id`'s, for a stand-in id of the same length, so
    /// authenticating it costs what the user's own would.
    pub(super) async fn dummy_check(
        &self,
        user_id: &str,
        code: &str,
        now: u64,
    ) -> Result<(), ServiceError> {
        let clean = clean_totp_input(code);
        self.pad(user_id, clean.as_deref().map(String::as_str), now, 1)
            .await
    }

    /// `rounds` dummy rounds of an authenticator's check (decrypt a blob with associated data
    /// like `user_id`'s, check the cleaned code against the dummy secret), thrown away.
    async fn pad(
        &self,
        user_id: &str,
        clean: Option<&str>,
        now: u64,
        rounds: usize,
    ) -> Result<(), ServiceError> {
        if rounds == 0 {
            return Ok(());
        }
        let len = user_id.len().min(MAX_USER_ID_LEN);
        let aad = secret_aad(&DUMMY_USER_ID[..len]);
        let slot = &self.dummy_blobs[len];
        let blob = match slot.get() {
            Some(b) => b,
            None => {
                let blob = self
                    .cipher
                    .encrypt(self.dummy_secret.expose_secret(), &aad)
                    .await
                    .map_err(cipher_err)?;
                slot.get_or_init(|| blob)
            }
        };
        let record = CredentialRecord {
            algorithm: self.config.algorithm,
            digits: self.config.digits,
            period: self.config.period,
            ..dummy_record()
        };
        for _ in 0..rounds {
            let decrypted = self.cipher.decrypt(blob, &aad).await.map_err(cipher_err)?;
            let _ = self.check_clean_totp(&decrypted.plaintext, &record, clean, now)?;
        }
        Ok(())
    }

    /// A second factor was proved: a pending recovery request (not approved by an operator) was
    /// not the owner's wish. With an `established` factor (an authenticator older than the change
    /// delay), neither were the scheduled changes of factors.
    ///
    /// # Errors
    /// A store failure is returned: the owner's login must not leave an attacker's recovery
    /// request or scheduled change standing unnoticed.
    pub(super) async fn after_second_factor(
        &self,
        user_id: &str,
        now: u64,
        established: bool,
    ) -> Result<(), ServiceError> {
        self.owner_proved(user_id, now, CancelledBy::SecondFactorLogin, established)
            .await
    }

    /// Lazy key rotation: re-encrypt under the current key, compare-and-set. Best effort.
    pub(super) async fn rotate(
        &self,
        user_id: &str,
        id: &str,
        old: &[u8],
        plaintext: &[u8],
        aad: &[u8],
        now: u64,
    ) {
        let new = match self.cipher.encrypt(plaintext, aad).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(target: "twofactor::service", error = %e, "could not re-encrypt a secret under the current key");
                return;
            }
        };
        match self
            .credentials
            .rewrite_secret(user_id, id, old, &new)
            .await
        {
            Ok(true) => self.emit(now, || AuditEvent::SecretReencrypted {
                user_id: user_id.to_owned(),
            }),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(target: "twofactor::service", error = %e, "could not store a re-encrypted secret");
            }
        }
    }
}

/// Codes repeat: two steps of one window share a code once in 10^digits pairs. When the code
/// matched a step already used, look for a later step of the window it also matches before the
/// atomic advance calls it a replay; otherwise the owner's fresh code would be refused. The
/// stored `last_step` only picks the candidate: `advance_step` still decides.
fn later_match(
    totp: &Totp,
    record: &CredentialRecord,
    code: &str,
    m: crate::TotpMatch,
    now: u64,
    shift: i64,
) -> crate::TotpMatch {
    use subtle::ConstantTimeEq;
    let Some(last) = record.last_step.filter(|&l| m.step <= l) else {
        return m;
    };
    let Ok(current) = totp.step_at(now) else {
        return m;
    };
    let Some(end) = current
        .checked_add_signed(shift)
        .and_then(|c| c.checked_add(u64::from(totp.window().future())))
    else {
        return m;
    };
    let mut found = m;
    for step in last.saturating_add(1)..=end {
        let hit: bool = totp
            .generate_step(step)
            .as_str()
            .as_bytes()
            .ct_eq(code.as_bytes())
            .into();
        if hit && found.step <= last {
            let drift = i64::try_from(i128::from(step) - i128::from(current)).unwrap_or(0);
            found = crate::TotpMatch { step, drift };
        }
    }
    found
}

/// The factor a typed code is routed to, by shape.
pub(super) fn factor_of(code: &str) -> Factor {
    if code.len() <= MAX_CODE_INPUT && backup_codes::looks_like_backup_code(code) {
        Factor::BackupCode
    } else {
        Factor::Totp
    }
}

/// What a confirmation's code check found.
pub(super) enum Matched {
    /// Right for the pending secret.
    Yes(crate::crypto::Decrypted, crate::TotpMatch, Attempt),
    /// Wrong (the attempt stays counted).
    No,
    /// Wrong for the pending secret's parameters, right for the defaults (counted too).
    DefaultsOnly,
}

/// The digits of a TOTP code when an app ignores the URI's parameters.
pub(super) const DEFAULT_DIGITS: u32 = 6;

/// Whether a credential has parameters some apps ignore (anything but SHA-1 / 6 / 30 s).
pub(super) fn has_custom_parameters(record: &CredentialRecord) -> bool {
    record.algorithm != crate::Algorithm::Sha1
        || record.digits != DEFAULT_DIGITS
        || record.period != crate::Totp::DEFAULT_PERIOD
}

/// A record with nothing in it, to be filled in with `..`.
fn dummy_record() -> CredentialRecord {
    CredentialRecord {
        id: String::new(),
        name: String::new(),
        encrypted_secret: Vec::new(),
        algorithm: crate::Algorithm::Sha1,
        digits: DEFAULT_DIGITS,
        period: crate::Totp::DEFAULT_PERIOD,
        enabled: true,
        last_step: None,
        drift: 0,
        created_at: 0,
        last_used_at: None,
        replaces: None,
    }
}

/// The separators people type or paste inside a code ("123 456", "123-456"): whitespace, the
/// hyphen, and the Unicode dashes phone keyboards substitute.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '‐' | '‑' | '‒' | '–' | '—' | '−')
}

/// A typed TOTP code without its separators.
fn clean_totp_input(typed: &str) -> Option<Zeroizing<String>> {
    if typed.len() > MAX_CODE_INPUT {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(typed.len()));
    out.extend(typed.chars().filter(|c| !is_separator(*c)));
    Some(out)
}

/// Whether `typed`, without separators, is all ASCII digits and of a length `digits` accepts:
/// the only input a TOTP check can ever accept. Looks at the input, not at a secret; no
/// allocation.
pub(super) fn is_totp_shaped(typed: &str, digits: impl Fn(u32) -> bool) -> bool {
    if typed.len() > MAX_CODE_INPUT {
        return false;
    }
    let mut n = 0u32;
    for c in typed.chars() {
        if is_separator(c) {
            continue;
        }
        if !c.is_ascii_digit() {
            return false;
        }
        n += 1;
    }
    n > 0 && digits(n)
}
