//! The service layer: enrolment, login, backup codes, disable, recovery, on top of the store
//! traits. This is what an application calls.
//!
//! ```text
//! start_enrolment ─► (user scans QR) ─► confirm_enrolment(code) ─► backup codes, 2FA on
//! password ok ─► start_login ─► NotRequired | Required{challenge} ─► complete_login(challenge, code)
//! ```
//!
//! # Guarantees
//!
//! - **Single use.** A TOTP step once accepted is never accepted again for that user (RFC 6238
//!   §5.2), including the step that confirmed the enrolment: acceptance is one atomic
//!   [`advance_step`](CredentialStore::advance_step). A backup code is consumed by one atomic
//!   delete-and-return, a challenge by one atomic take. The service never reads and then writes.
//! - **Indistinguishable rejections.** A wrong code, a replayed code, an unknown or expired
//!   challenge, a user without 2FA and an unknown user all give `Rejected`. A user without an
//!   enabled credential costs the same work as a wrong code (a dummy secret is decrypted and the
//!   code checked against it), so timing does not reveal who has 2FA. An unknown or expired
//!   challenge is answered without evaluating the code: it reveals nothing its holder does not
//!   know, and guessing a live one means guessing 256 random bits. The reason goes to the
//!   [audit trail](crate::audit) only.
//! - **Rate limited before evaluation.** Every code check first takes an attempt from the user's
//!   limiter (see [`crate::rate_limit`]), so concurrent guesses cannot exceed the budget; TOTP
//!   and backup codes have separate limiters, so TOTP lockouts never block backup codes.
//! - **Fail closed.** `Err` means an infrastructure or cipher failure: nobody was let in. A store
//!   error before a consumption consumed nothing (the stores' contract).
//!
//! # Login challenges
//!
//! A failed `complete_login` does **not** consume the challenge: a typo must not send the user
//! back to the password step, and guesses are bounded by the per-user limiter, not by the
//! challenge. A success consumes it atomically ([`take_challenge`](EphemeralStore::take_challenge))
//! after the code was accepted; of two concurrent successes with different valid codes, only the
//! one that takes the challenge logs in (the other code is used up).
//!
//! # Drift
//!
//! The drift of every accepted code is recorded (see [`Status::last_drift`]). By default it does
//! **not** move later windows: a ±1 window already absorbs 30 s of skew, phones keep time by
//! network, and a window that followed a drifting clock would lock the user out the day the
//! phone's clock is corrected. With [`Config::follow_drift`], the window is centred on the last
//! drift (clamped to [`Window::MAX_STEPS`](crate::Window::MAX_STEPS)), as django-otp does; it
//! never grows, so an attacker's odds per guess stay the same.
//!
//! # Key rotation
//!
//! When a secret decrypts under a key that is no longer current, it is re-encrypted under the
//! current key and written back with [`rewrite_secret`](CredentialStore::rewrite_secret)
//! (compare-and-set) after the next successful TOTP check. A failed rewrite is logged, never
//! fatal.
//!
//! # Recovery
//!
//! When both phone and backup codes are lost, [`TwoFactor::request_recovery`] records a request.
//! It completes ([`TwoFactor::complete_recovery`]) after an operator approves it
//! ([`TwoFactor::approve_recovery`]) or after [`Config::recovery_delay_secs`] (72 hours). The
//! request is announced through the audit sink so the owner can be told; the owner cancels it by
//! logging in with a second factor (or [`TwoFactor::cancel_recovery`]). An operator can also
//! remove the factor at once with [`TwoFactor::admin_reset`].

mod types;

use std::sync::{Arc, OnceLock};

use data_encoding::BASE64URL_NOPAD;
use rand::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use types::{
    ChallengeToken, Config, ConfirmOutcome, DisableOutcome, Enrolment, EnrolmentStart, LoginStart,
    Method, RecoveryCompletion, RecoveryRequest, RegenerateOutcome, Status, VerifyOutcome,
};

use crate::audit::{self, AuditEvent, AuditSink, CancelledBy, Factor, FailureReason};
use crate::backup_codes::{self, BackupCodeKey};
use crate::clock::{Clock, SystemClock};
use crate::crypto::{SecretCipher, secret_aad};
use crate::error::ServiceError;
use crate::otp::{Totp, TotpOutcome, Window};
use crate::rate_limit::{Decision, RateLimitPolicy};
use crate::secret::Secret;
use crate::store::{
    BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, CredentialStore,
    EphemeralStore, LimiterState, RecoveryRecord,
};
use crate::uri::OtpAuthUri;

/// Longest user id accepted, in bytes.
pub const MAX_USER_ID_LEN: usize = 256;
/// Longest challenge token accepted by [`TwoFactor::complete_login`]; longer input is rejected
/// before hashing.
const MAX_CHALLENGE_LEN: usize = 128;
/// Longest code input looked at; longer input is rejected as malformed.
const MAX_CODE_INPUT: usize = 64;
/// Random bytes in a challenge token (256 bits).
const CHALLENGE_BYTES: usize = 32;
/// The stand-in user id of the dummy check, cut to the real id's length (ASCII, `MAX_USER_ID_LEN`
/// bytes), so that its associated data is built and authenticated like the real id's.
const DUMMY_USER_ID: &str = concat!(
    "dummy---------------------------------------------------------------",
    "----------------------------------------------------------------",
    "----------------------------------------------------------------",
    "------------------------------------------------------------",
);
const _: () = assert!(DUMMY_USER_ID.len() == MAX_USER_ID_LEN);

/// Two-factor authentication for an application: TOTP with backup codes, rate limits, replay
/// protection, encrypted secrets and recovery.
///
/// Generic over the durable [`CredentialStore`] `C`, the short-lived [`EphemeralStore`] `E`, the
/// [`SecretCipher`] `K` that encrypts secrets at rest, and the [`Clock`] `Clk`. Share one instance
/// (in an `Arc`) between requests; every method takes `&self`, and several instances on several
/// machines can share the same stores.
///
/// See the [module docs](self) for the guarantees.
pub struct TwoFactor<C, E, K, Clk = SystemClock> {
    credentials: C,
    ephemeral: E,
    cipher: K,
    backup_key: BackupCodeKey,
    config: Config,
    clock: Clk,
    audit: Option<Arc<dyn AuditSink>>,
    dummy_secret: Secret,
    /// The dummy secret encrypted for a stand-in id of each length, made on first use.
    dummy_blobs: Box<[OnceLock<Vec<u8>>]>,
}

impl<C, E, K, Clk> core::fmt::Debug for TwoFactor<C, E, K, Clk> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TwoFactor")
            .field("config", &self.config)
            .field("audit_sink", &self.audit.is_some())
            .finish_non_exhaustive()
    }
}

/// What a code check concluded, before it is turned into the public outcome of each operation.
enum Checked {
    Success(Method),
    Rejected,
    RateLimited(u64),
}

/// The limiter key of a user for one factor (the keys stores see: `2fa:totp:<user id>`,
/// `2fa:backup:<user id>`).
fn limiter_key(factor: Factor, user_id: &str) -> String {
    let mut key = String::with_capacity(12 + user_id.len());
    key.push_str(match factor {
        Factor::Totp => "2fa:totp:",
        Factor::BackupCode => "2fa:backup:",
    });
    key.push_str(user_id);
    key
}

fn challenge_hash(token: &str) -> ChallengeHash {
    Sha256::digest(token.as_bytes()).into()
}

fn fill<R: CryptoRng + ?Sized>(rng: &mut R, buf: &mut [u8]) {
    rng.fill_bytes(buf);
}

fn credential_err<Er: std::error::Error + Send + Sync + 'static>(e: Er) -> ServiceError {
    ServiceError::CredentialStore(Box::new(e))
}

fn ephemeral_err<Er: std::error::Error + Send + Sync + 'static>(e: Er) -> ServiceError {
    ServiceError::EphemeralStore(Box::new(e))
}

fn cipher_err<Er: std::error::Error + Send + Sync + 'static>(e: Er) -> ServiceError {
    ServiceError::Cipher(Box::new(e))
}

fn check_user_id(user_id: &str) -> Result<(), ServiceError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_LEN {
        return Err(ServiceError::InvalidUserId);
    }
    Ok(())
}

/// A typed TOTP code without the spaces people type or paste ("123 456").
fn clean_totp_input(typed: &str) -> Option<Zeroizing<String>> {
    if typed.len() > MAX_CODE_INPUT {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(typed.len()));
    out.extend(typed.chars().filter(|c| !c.is_whitespace()));
    Some(out)
}

impl<C, E, K> TwoFactor<C, E, K, SystemClock>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
{
    /// A service over these stores, encrypting secrets with `cipher`, hashing backup codes with
    /// `backup_key` (keep both keys outside the database), on the system clock.
    ///
    /// # Errors
    /// [`ServiceError::InvalidConfig`] when the configuration cannot produce valid otpauth URIs
    /// (empty or too long issuer, digits outside 6..=10, period 0 or over a day) or asks for no
    /// backup codes.
    pub fn new(
        credentials: C,
        ephemeral: E,
        cipher: K,
        backup_key: BackupCodeKey,
        config: Config,
    ) -> Result<Self, ServiceError> {
        let dummy_secret = Secret::generate(config.algorithm);
        // Building a URI checks issuer, digits and period once, here, rather than at the first
        // enrolment.
        OtpAuthUri::totp_builder(dummy_secret.clone(), "config-check")
            .issuer(config.issuer.clone())
            .algorithm(config.algorithm)
            .digits(config.digits)
            .period(config.period)
            .build()
            .map_err(|e| ServiceError::InvalidConfig(Box::new(e)))?;
        if config.issuer.trim().is_empty() || config.backup_code_count == 0 {
            return Err(ServiceError::InvalidConfig(
                "issuer must not be empty and backup_code_count must be at least 1".into(),
            ));
        }
        Ok(Self {
            credentials,
            ephemeral,
            cipher,
            backup_key,
            config,
            clock: SystemClock,
            audit: None,
            dummy_secret,
            dummy_blobs: (0..=MAX_USER_ID_LEN).map(|_| OnceLock::new()).collect(),
        })
    }
}

impl<C, E, K, Clk> TwoFactor<C, E, K, Clk>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
    Clk: Clock,
{
    /// Replaces the clock (tests and simulations use [`ManualClock`](crate::ManualClock)).
    #[must_use]
    pub fn with_clock<Clk2: Clock>(self, clock: Clk2) -> TwoFactor<C, E, K, Clk2> {
        TwoFactor {
            credentials: self.credentials,
            ephemeral: self.ephemeral,
            cipher: self.cipher,
            backup_key: self.backup_key,
            config: self.config,
            clock,
            audit: self.audit,
            dummy_secret: self.dummy_secret,
            dummy_blobs: self.dummy_blobs,
        }
    }

    /// Sends every [`AuditEvent`] to `sink` as well as to `tracing`.
    #[must_use]
    pub fn with_audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The credential store.
    pub fn credential_store(&self) -> &C {
        &self.credentials
    }

    /// The ephemeral store.
    pub fn ephemeral_store(&self) -> &E {
        &self.ephemeral
    }

    /// The clock.
    pub fn clock(&self) -> &Clk {
        &self.clock
    }

    /// Emits an audit event, built only if someone listens (a sink, or a `tracing` subscriber
    /// interested in warnings), so the hot path does not allocate for nothing.
    fn emit(&self, now: u64, event: impl FnOnce() -> AuditEvent) {
        if self.audit.is_none()
            && !tracing::enabled!(target: "twofactor::audit", tracing::Level::WARN)
        {
            return;
        }
        let event = event();
        audit::trace(now, &event);
        if let Some(sink) = &self.audit {
            sink.record(now, &event);
        }
    }

    fn totp_for(&self, secret: &Secret, record: &CredentialRecord) -> Result<Totp, ServiceError> {
        Totp::builder(secret)
            .algorithm(record.algorithm)
            .digits(record.digits)
            .period(record.period)
            .window(self.config.window)
            .build()
            .map_err(|e| ServiceError::CorruptCredential(Box::new(e)))
    }

    // ----------------------------------------------------------------------------------------
    // Enrolment
    // ----------------------------------------------------------------------------------------

    /// Starts enrolment: generates a secret, stores it encrypted as **pending** (replacing any
    /// pending one) and returns what the user needs to add it to an authenticator app. 2FA is not
    /// on until [`TwoFactor::confirm_enrolment`] gets a valid code.
    ///
    /// `account_name` is shown in the app next to the issuer (usually the email address).
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; [`ServiceError::InvalidAccountName`] when the account name
    /// cannot go into an otpauth URI (empty, too long, or containing `:`); store and cipher
    /// failures (nothing stored).
    pub async fn start_enrolment(
        &self,
        user_id: &str,
        account_name: &str,
    ) -> Result<EnrolmentStart, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let secret = Secret::generate(self.config.algorithm);
        let uri = OtpAuthUri::totp_builder(secret, account_name)
            .issuer(self.config.issuer.clone())
            .algorithm(self.config.algorithm)
            .digits(self.config.digits)
            .period(self.config.period)
            .build()
            .map_err(ServiceError::InvalidAccountName)?;
        let encrypted_secret = self
            .cipher
            .encrypt(uri.secret().expose_secret(), &secret_aad(user_id))
            .await
            .map_err(cipher_err)?;
        let record = CredentialRecord {
            encrypted_secret,
            algorithm: self.config.algorithm,
            digits: self.config.digits,
            period: self.config.period,
            enabled: false,
            last_step: None,
            drift: 0,
            created_at: now,
        };
        if !self
            .credentials
            .put_pending(user_id, &record)
            .await
            .map_err(credential_err)?
        {
            return Ok(EnrolmentStart::AlreadyEnabled);
        }
        self.emit(now, || AuditEvent::EnrolmentStarted {
            user_id: user_id.to_owned(),
        });
        Ok(EnrolmentStart::Started(Enrolment { uri }))
    }

    /// Confirms a pending enrolment with a code from the authenticator app: 2FA is on, the code's
    /// step counts as used, and the backup codes are returned, once.
    ///
    /// Rate limited like a login (the same TOTP limiter).
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (2FA stays off).
    pub async fn confirm_enrolment(
        &self,
        user_id: &str,
        code: &str,
    ) -> Result<ConfirmOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let policy = self.config.totp_rate_limit;
        let key = limiter_key(Factor::Totp, user_id);
        if let Some(retry_after_secs) = self
            .acquire(&key, policy, user_id, Factor::Totp, now)
            .await?
        {
            return Ok(ConfirmOutcome::RateLimited { retry_after_secs });
        }
        let Some(record) = self
            .load_for_check(&key, policy, user_id, code, now, false)
            .await?
        else {
            return Ok(ConfirmOutcome::Rejected);
        };
        let Some((_, m)) = self
            .decrypt_and_match(&key, policy, user_id, &record, code, now)
            .await?
        else {
            return Ok(ConfirmOutcome::Rejected);
        };
        let codes = backup_codes::generate(self.config.backup_code_count);
        let hashes: Vec<BackupCodeHash> = codes
            .iter()
            .map(|c| self.backup_key.hash(user_id, c))
            .collect();
        let activated = match self
            .credentials
            .activate(user_id, &record.encrypted_secret, m.step, m.drift, &hashes)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                return Err(self
                    .release_on_error(&key, policy, now, credential_err(e))
                    .await);
            }
        };
        if !activated {
            // Replaced by a newer enrolment (or confirmed) between our read and the activation.
            self.release(&key, policy, now).await;
            self.emit(now, || AuditEvent::VerificationFailed {
                user_id: Some(user_id.to_owned()),
                factor: Factor::Totp,
                reason: FailureReason::Superseded,
            });
            return Ok(ConfirmOutcome::Rejected);
        }
        self.succeed(&key, policy, now).await;
        self.emit(now, || AuditEvent::EnrolmentConfirmed {
            user_id: user_id.to_owned(),
            drift: m.drift,
            backup_codes: u32::try_from(codes.len()).unwrap_or(u32::MAX),
        });
        Ok(ConfirmOutcome::Confirmed {
            backup_codes: codes,
        })
    }

    // ----------------------------------------------------------------------------------------
    // Login
    // ----------------------------------------------------------------------------------------

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
        let mut raw = Zeroizing::new([0u8; CHALLENGE_BYTES]);
        fill(&mut crate::rng::os_rng(), raw.as_mut_slice());
        let token = Zeroizing::new(BASE64URL_NOPAD.encode(raw.as_slice()));
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
    /// [module docs](self#login-challenges)).
    ///
    /// # Errors
    /// Store and cipher failures: nobody is let in, the challenge is not consumed.
    pub async fn complete_login(
        &self,
        challenge: &str,
        code: &str,
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
        match self.check_code(&user_id, code, now).await? {
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
                Ok(VerifyOutcome::Success { user_id, method })
            }
            Checked::Rejected => Ok(VerifyOutcome::Rejected),
            Checked::RateLimited(retry_after_secs) => {
                Ok(VerifyOutcome::RateLimited { retry_after_secs })
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
        Ok(match self.check_code(user_id, code, now).await? {
            Checked::Success(method) => VerifyOutcome::Success {
                user_id: user_id.to_owned(),
                method,
            },
            Checked::Rejected => VerifyOutcome::Rejected,
            Checked::RateLimited(retry_after_secs) => {
                VerifyOutcome::RateLimited { retry_after_secs }
            }
        })
    }

    // ----------------------------------------------------------------------------------------
    // Managing an enabled factor
    // ----------------------------------------------------------------------------------------

    /// Turns 2FA off, after a valid current code (TOTP or backup code): removes the secret, the
    /// backup codes and any recovery request.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (2FA stays on).
    pub async fn disable(&self, user_id: &str, code: &str) -> Result<DisableOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        match self.check_code(user_id, code, now).await? {
            Checked::Success(_) => {
                if !self
                    .credentials
                    .delete_credential(user_id)
                    .await
                    .map_err(credential_err)?
                {
                    return Ok(DisableOutcome::Rejected);
                }
                self.emit(now, || AuditEvent::Disabled {
                    user_id: user_id.to_owned(),
                });
                Ok(DisableOutcome::Disabled)
            }
            Checked::Rejected => Ok(DisableOutcome::Rejected),
            Checked::RateLimited(retry_after_secs) => {
                Ok(DisableOutcome::RateLimited { retry_after_secs })
            }
        }
    }

    /// Replaces the backup codes with a new set, after a valid current code (TOTP or backup
    /// code). The old codes stop working at the same moment.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (the old codes stay valid).
    pub async fn regenerate_backup_codes(
        &self,
        user_id: &str,
        code: &str,
    ) -> Result<RegenerateOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        match self.check_code(user_id, code, now).await? {
            Checked::Success(_) => {
                let codes = backup_codes::generate(self.config.backup_code_count);
                let hashes: Vec<BackupCodeHash> = codes
                    .iter()
                    .map(|c| self.backup_key.hash(user_id, c))
                    .collect();
                if !self
                    .credentials
                    .replace_backup_codes(user_id, &hashes)
                    .await
                    .map_err(credential_err)?
                {
                    return Ok(RegenerateOutcome::Rejected);
                }
                self.emit(now, || AuditEvent::BackupCodesRegenerated {
                    user_id: user_id.to_owned(),
                    count: u32::try_from(codes.len()).unwrap_or(u32::MAX),
                });
                Ok(RegenerateOutcome::Regenerated {
                    backup_codes: codes,
                })
            }
            Checked::Rejected => Ok(RegenerateOutcome::Rejected),
            Checked::RateLimited(retry_after_secs) => {
                Ok(RegenerateOutcome::RateLimited { retry_after_secs })
            }
        }
    }

    /// The user's 2FA state.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn status(&self, user_id: &str) -> Result<Status, ServiceError> {
        check_user_id(user_id)?;
        let record = self
            .credentials
            .get_credential(user_id)
            .await
            .map_err(credential_err)?;
        let enabled = record.as_ref().is_some_and(|r| r.enabled);
        let backup_codes_remaining = if enabled {
            self.credentials
                .backup_codes_remaining(user_id)
                .await
                .map_err(credential_err)?
        } else {
            0
        };
        let recovery = self
            .credentials
            .get_recovery(user_id)
            .await
            .map_err(credential_err)?;
        Ok(Status {
            enabled,
            pending: record.as_ref().is_some_and(|r| !r.enabled),
            backup_codes_remaining,
            last_drift: record.filter(|r| r.enabled).map(|r| r.drift),
            recovery,
        })
    }

    // ----------------------------------------------------------------------------------------
    // Recovery and administration
    // ----------------------------------------------------------------------------------------

    /// Records a request to remove the user's second factor (phone and backup codes lost),
    /// replacing an earlier one. It completes after an operator's approval or after
    /// [`Config::recovery_delay_secs`]; the owner is told through the audit sink and cancels it by
    /// logging in with a second factor. Call it only after the password was verified.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (nothing recorded).
    pub async fn request_recovery(&self, user_id: &str) -> Result<RecoveryRequest, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let enabled = self
            .credentials
            .get_credential(user_id)
            .await
            .map_err(credential_err)?
            .is_some_and(|r| r.enabled);
        if !enabled {
            return Ok(RecoveryRequest::NotEnrolled);
        }
        let not_before = now.saturating_add(self.config.recovery_delay_secs);
        self.credentials
            .put_recovery(
                user_id,
                &RecoveryRecord {
                    requested_at: now,
                    not_before,
                    approved: false,
                },
            )
            .await
            .map_err(credential_err)?;
        self.emit(now, || AuditEvent::RecoveryRequested {
            user_id: user_id.to_owned(),
            not_before,
        });
        Ok(RecoveryRequest::Requested { not_before })
    }

    /// Operator approval of a recovery request (after checking the user's identity out of band):
    /// it may complete at once. Returns whether there was a request.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn approve_recovery(&self, user_id: &str) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let approved = self
            .credentials
            .approve_recovery(user_id)
            .await
            .map_err(credential_err)?;
        if approved {
            self.emit(now, || AuditEvent::RecoveryApproved {
                user_id: user_id.to_owned(),
            });
        }
        Ok(approved)
    }

    /// Cancels a recovery request (the owner from a session authenticated with a second factor,
    /// or an operator). A second-factor login cancels it automatically. Returns whether there was
    /// one.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn cancel_recovery(&self, user_id: &str) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let cancelled = self
            .credentials
            .cancel_recovery(user_id)
            .await
            .map_err(credential_err)?;
        if cancelled {
            self.emit(now, || AuditEvent::RecoveryCancelled {
                user_id: user_id.to_owned(),
                by: CancelledBy::Request,
            });
        }
        Ok(cancelled)
    }

    /// Completes a recovery request if an operator approved it or the waiting period has passed:
    /// the second factor, backup codes and limiter state are removed.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (nothing removed).
    pub async fn complete_recovery(
        &self,
        user_id: &str,
    ) -> Result<RecoveryCompletion, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        if self
            .credentials
            .complete_recovery(user_id, now)
            .await
            .map_err(credential_err)?
        {
            self.reset_limiters(user_id, now).await;
            self.emit(now, || AuditEvent::RecoveryCompleted {
                user_id: user_id.to_owned(),
            });
            return Ok(RecoveryCompletion::Completed);
        }
        Ok(
            match self
                .credentials
                .get_recovery(user_id)
                .await
                .map_err(credential_err)?
            {
                Some(r) => RecoveryCompletion::Waiting {
                    retry_after_secs: r.not_before.saturating_sub(now).max(1),
                },
                None => RecoveryCompletion::NoRequest,
            },
        )
    }

    /// Operator action: removes the user's second factor (pending or enabled), backup codes,
    /// recovery request and limiter state at once. Returns whether a credential existed.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn admin_reset(&self, user_id: &str) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let existed = self
            .credentials
            .delete_credential(user_id)
            .await
            .map_err(credential_err)?;
        self.reset_limiters(user_id, now).await;
        self.emit(now, || AuditEvent::AdminReset {
            user_id: user_id.to_owned(),
            existed,
        });
        Ok(existed)
    }

    // ----------------------------------------------------------------------------------------
    // The checks
    // ----------------------------------------------------------------------------------------

    /// Checks a TOTP or backup code for an enabled credential, with limits, single use, audit,
    /// and the success side effects (limiter reset, recovery cancelled, lazy rotation).
    async fn check_code(
        &self,
        user_id: &str,
        code: &str,
        now: u64,
    ) -> Result<Checked, ServiceError> {
        if code.len() <= MAX_CODE_INPUT && backup_codes::looks_like_backup_code(code) {
            self.check_backup_code(user_id, code, now).await
        } else {
            self.check_totp_login(user_id, code, now).await
        }
    }

    async fn check_totp_login(
        &self,
        user_id: &str,
        code: &str,
        now: u64,
    ) -> Result<Checked, ServiceError> {
        let policy = self.config.totp_rate_limit;
        let key = limiter_key(Factor::Totp, user_id);
        if let Some(retry) = self
            .acquire(&key, policy, user_id, Factor::Totp, now)
            .await?
        {
            return Ok(Checked::RateLimited(retry));
        }
        let Some(record) = self
            .load_for_check(&key, policy, user_id, code, now, true)
            .await?
        else {
            return Ok(Checked::Rejected);
        };
        let Some((decrypted, m)) = self
            .decrypt_and_match(&key, policy, user_id, &record, code, now)
            .await?
        else {
            return Ok(Checked::Rejected);
        };
        let advanced = match self
            .credentials
            .advance_step(user_id, m.step, m.drift)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                return Err(self
                    .release_on_error(&key, policy, now, credential_err(e))
                    .await);
            }
        };
        if !advanced {
            // A valid code for a step already used (or 2FA disabled in between): never twice.
            let state = self
                .ephemeral
                .update_limiter(&key, policy.expire_at(now), move |s| {
                    policy.record_failure(s, now)
                })
                .await
                .map_err(ephemeral_err)?;
            self.emit(now, || AuditEvent::ReplayRejected {
                user_id: user_id.to_owned(),
            });
            self.note_lockout(&state, user_id, Factor::Totp, now);
            return Ok(Checked::Rejected);
        }
        self.succeed(&key, policy, now).await;
        self.after_second_factor(user_id, now).await?;
        if decrypted.stale_key {
            self.rotate(
                user_id,
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
        Ok(Checked::Success(Method::Totp { drift: m.drift }))
    }

    async fn check_backup_code(
        &self,
        user_id: &str,
        code: &str,
        now: u64,
    ) -> Result<Checked, ServiceError> {
        let policy = self.config.backup_code_rate_limit;
        let key = limiter_key(Factor::BackupCode, user_id);
        if let Some(retry) = self
            .acquire(&key, policy, user_id, Factor::BackupCode, now)
            .await?
        {
            return Ok(Checked::RateLimited(retry));
        }
        let Some(hash) = self.backup_key.hash_input(user_id, code) else {
            self.fail(
                &key,
                policy,
                user_id,
                Factor::BackupCode,
                FailureReason::Malformed,
                now,
            )
            .await?;
            return Ok(Checked::Rejected);
        };
        // One atomic delete-and-return: of concurrent uses of one code, exactly one gets here.
        let remaining = match self.credentials.consume_backup_code(user_id, &hash).await {
            Ok(r) => r,
            Err(e) => {
                return Err(self
                    .release_on_error(&key, policy, now, credential_err(e))
                    .await);
            }
        };
        let Some(remaining) = remaining else {
            self.fail(
                &key,
                policy,
                user_id,
                Factor::BackupCode,
                FailureReason::WrongCode,
                now,
            )
            .await?;
            return Ok(Checked::Rejected);
        };
        // A backup code proves the owner: lift the TOTP lockout an attacker may have caused.
        self.succeed(&key, policy, now).await;
        let totp_policy = self.config.totp_rate_limit;
        self.succeed(&limiter_key(Factor::Totp, user_id), totp_policy, now)
            .await;
        self.after_second_factor(user_id, now).await?;
        self.emit(now, || AuditEvent::BackupCodeUsed {
            user_id: user_id.to_owned(),
            remaining,
        });
        self.emit(now, || AuditEvent::VerificationSucceeded {
            user_id: user_id.to_owned(),
            factor: Factor::BackupCode,
            drift: 0,
        });
        Ok(Checked::Success(Method::BackupCode { remaining }))
    }

    /// Verifies `code` against a decrypted secret. `Ok(None)` for a wrong or malformed code;
    /// `Err` only when the stored record is unusable.
    /// Loads the user's credential for a code check: the enabled one (`enabled`) or the pending
    /// one (`!enabled`). Without one, does the same work as a wrong code for an enrolled user
    /// (decrypt a blob, check a code), counts a failure and gives `Ok(None)`. Infrastructure
    /// errors give the limiter attempt back.
    async fn load_for_check(
        &self,
        key: &str,
        policy: RateLimitPolicy,
        user_id: &str,
        code: &str,
        now: u64,
        enabled: bool,
    ) -> Result<Option<CredentialRecord>, ServiceError> {
        let record = match self.credentials.get_credential(user_id).await {
            Ok(r) => r.filter(|r| r.enabled == enabled),
            Err(e) => {
                return Err(self
                    .release_on_error(key, policy, now, credential_err(e))
                    .await);
            }
        };
        if record.is_none() {
            if let Err(e) = self.dummy_check(user_id, code, now).await {
                return Err(self.release_on_error(key, policy, now, e).await);
            }
            let reason = if enabled {
                FailureReason::NotEnrolled
            } else {
                FailureReason::NoPendingEnrolment
            };
            self.fail(key, policy, user_id, Factor::Totp, reason, now)
                .await?;
        }
        Ok(record)
    }

    /// Decrypts the user's secret and checks `code` against it. A wrong code is counted as a
    /// failure and gives `Ok(None)`; an infrastructure error gives the limiter attempt back.
    async fn decrypt_and_match(
        &self,
        key: &str,
        policy: RateLimitPolicy,
        user_id: &str,
        record: &CredentialRecord,
        code: &str,
        now: u64,
    ) -> Result<Option<(crate::crypto::Decrypted, crate::TotpMatch)>, ServiceError> {
        let decrypted = match self
            .cipher
            .decrypt(&record.encrypted_secret, &secret_aad(user_id))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                return Err(self.release_on_error(key, policy, now, cipher_err(e)).await);
            }
        };
        let matched = match self.check_totp(&decrypted.plaintext, record, code, now) {
            Ok(m) => m,
            Err(e) => return Err(self.release_on_error(key, policy, now, e).await),
        };
        let Some(m) = matched else {
            self.fail(
                key,
                policy,
                user_id,
                Factor::Totp,
                FailureReason::WrongCode,
                now,
            )
            .await?;
            return Ok(None);
        };
        Ok(Some((decrypted, m)))
    }

    fn check_totp(
        &self,
        plaintext: &[u8],
        record: &CredentialRecord,
        code: &str,
        now: u64,
    ) -> Result<Option<crate::TotpMatch>, ServiceError> {
        let secret = Secret::from_bytes_unchecked_len(plaintext)
            .map_err(|e| ServiceError::CorruptCredential(Box::new(e)))?;
        let totp = self.totp_for(&secret, record)?;
        let Some(clean) = clean_totp_input(code) else {
            return Ok(None);
        };
        let shift = if self.config.follow_drift && record.enabled {
            let max = i64::from(Window::MAX_STEPS);
            record.drift.clamp(-max, max)
        } else {
            0
        };
        match totp.verify_shifted_at(&clean, now, shift) {
            Ok(TotpOutcome::Valid(m)) => {
                Ok(Some(later_match(&totp, record, &clean, m, now, shift)))
            }
            Ok(TotpOutcome::Invalid) => Ok(None),
            // Wrong length or not digits: an ordinary wrong code.
            Err(crate::OtpError::CodeLength { .. } | crate::OtpError::CodeNotDigits) => Ok(None),
            Err(e) => Err(ServiceError::CorruptCredential(Box::new(e))),
        }
    }

    /// The work of a code check for a user without an enabled credential: decrypt a dummy blob
    /// and verify the code against the dummy secret. The result is thrown away. The blob's
    /// associated data is built like `user_id`'s, for a stand-in id of the same length, so
    /// authenticating it costs what the user's own would.
    async fn dummy_check(&self, user_id: &str, code: &str, now: u64) -> Result<(), ServiceError> {
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
        let decrypted = self.cipher.decrypt(blob, &aad).await.map_err(cipher_err)?;
        let record = CredentialRecord {
            encrypted_secret: Vec::new(),
            algorithm: self.config.algorithm,
            digits: self.config.digits,
            period: self.config.period,
            enabled: true,
            last_step: None,
            drift: 0,
            created_at: 0,
        };
        let _ = self.check_totp(&decrypted.plaintext, &record, code, now)?;
        Ok(())
    }

    /// Takes an attempt; `Some(retry_after)` when refused.
    async fn acquire(
        &self,
        key: &str,
        policy: RateLimitPolicy,
        user_id: &str,
        factor: Factor,
        now: u64,
    ) -> Result<Option<u64>, ServiceError> {
        let state = self
            .ephemeral
            .update_limiter(key, policy.expire_at(now), move |s| policy.acquire(s, now))
            .await
            .map_err(ephemeral_err)?;
        match policy.decision(&state, now) {
            Decision::Allowed => Ok(None),
            Decision::Refused { retry_after_secs } => {
                self.emit(now, || AuditEvent::RateLimited {
                    user_id: user_id.to_owned(),
                    factor,
                    retry_after_secs,
                });
                Ok(Some(retry_after_secs))
            }
        }
    }

    /// Settles an acquired attempt as a failure and audits it.
    async fn fail(
        &self,
        key: &str,
        policy: RateLimitPolicy,
        user_id: &str,
        factor: Factor,
        reason: FailureReason,
        now: u64,
    ) -> Result<(), ServiceError> {
        let state = self
            .ephemeral
            .update_limiter(key, policy.expire_at(now), move |s| {
                policy.record_failure(s, now)
            })
            .await
            .map_err(ephemeral_err)?;
        self.emit(now, || AuditEvent::VerificationFailed {
            user_id: Some(user_id.to_owned()),
            factor,
            reason,
        });
        self.note_lockout(&state, user_id, factor, now);
        Ok(())
    }

    fn note_lockout(&self, state: &LimiterState, user_id: &str, factor: Factor, now: u64) {
        if state.locked_until > now {
            self.emit(now, || AuditEvent::LockedOut {
                user_id: user_id.to_owned(),
                factor,
                consecutive_failures: state.consecutive_failures,
                until: state.locked_until,
            });
        }
    }

    /// Settles an acquired attempt as a success. The decision is already made (the code was
    /// consumed atomically), so a store failure here is logged, not returned: it only leaves the
    /// limiter stricter than it should be.
    async fn succeed(&self, key: &str, policy: RateLimitPolicy, now: u64) {
        if let Err(e) = self
            .ephemeral
            .update_limiter(key, policy.expire_at(now), move |s| {
                policy.record_success(s, now)
            })
            .await
        {
            tracing::warn!(target: "twofactor::service", error = %e, "could not reset the rate limiter after a success");
        }
    }

    /// Gives an attempt back after an infrastructure error (best effort) and returns the error.
    async fn release_on_error(
        &self,
        key: &str,
        policy: RateLimitPolicy,
        now: u64,
        error: ServiceError,
    ) -> ServiceError {
        self.release(key, policy, now).await;
        error
    }

    async fn release(&self, key: &str, policy: RateLimitPolicy, now: u64) {
        if let Err(e) = self
            .ephemeral
            .update_limiter(key, policy.expire_at(now), move |s| policy.release(s, now))
            .await
        {
            tracing::warn!(target: "twofactor::service", error = %e, "could not release a rate-limiter attempt");
        }
    }

    async fn reset_limiters(&self, user_id: &str, now: u64) {
        let totp = self.config.totp_rate_limit;
        let backup = self.config.backup_code_rate_limit;
        self.succeed(&limiter_key(Factor::Totp, user_id), totp, now)
            .await;
        self.succeed(&limiter_key(Factor::BackupCode, user_id), backup, now)
            .await;
    }

    /// A second factor was proved: a pending recovery request was not the owner's wish.
    ///
    /// # Errors
    /// A store failure is returned: the owner's login must not leave an attacker's recovery
    /// request standing unnoticed.
    async fn after_second_factor(&self, user_id: &str, now: u64) -> Result<(), ServiceError> {
        if self
            .credentials
            .cancel_recovery(user_id)
            .await
            .map_err(credential_err)?
        {
            self.emit(now, || AuditEvent::RecoveryCancelled {
                user_id: user_id.to_owned(),
                by: CancelledBy::SecondFactorLogin,
            });
        }
        Ok(())
    }

    /// Lazy key rotation: re-encrypt under the current key, compare-and-set. Best effort.
    async fn rotate(&self, user_id: &str, old: &[u8], plaintext: &[u8], aad: &[u8], now: u64) {
        let new = match self.cipher.encrypt(plaintext, aad).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(target: "twofactor::service", error = %e, "could not re-encrypt a secret under the current key");
                return;
            }
        };
        match self.credentials.rewrite_secret(user_id, old, &new).await {
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
fn factor_of(code: &str) -> Factor {
    if code.len() <= MAX_CODE_INPUT && backup_codes::looks_like_backup_code(code) {
        Factor::BackupCode
    } else {
        Factor::Totp
    }
}
