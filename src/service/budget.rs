//! The attempt budget: a granted attempt is a value, counted as a failure by the atomic
//! acquisition and settled exactly once.

use super::*;

impl<C, E, K, Clk> TwoFactor<C, E, K, Clk>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
    Clk: Clock,
{
    /// The limiter key and policy of a budget (the keys stores see: `2fa:user:<user id>`,
    /// `2fa:device:<hex of the device token's hash>`).
    pub(super) fn budget(&self, user_id: &str, budget: Budget) -> (String, RateLimitPolicy) {
        match budget {
            Budget::User => (user_key(user_id), self.config.rate_limit),
            Budget::Device(hash) => {
                let mut key = String::with_capacity(11 + 64);
                key.push_str("2fa:device:");
                key.push_str(&HEXLOWER.encode(&hash));
                (key, self.config.device_rate_limit)
            }
        }
    }

    /// Takes an attempt from `budget` and counts it as a failure, in one atomic store operation.
    /// `Err(retry_after)` when refused: the code must not be evaluated.
    ///
    /// `candidates` is how many secrets the code will be compared with (the user's enabled
    /// authenticators): on the user's budget the attempt weighs that many units, so the yearly
    /// bound counts candidates compared, not requests. A device's own budget (the owner's
    /// browser) counts one per attempt.
    pub(super) async fn acquire(
        &self,
        user_id: &str,
        budget: Budget,
        factor: Factor,
        now: u64,
        candidates: usize,
    ) -> Result<Result<Attempt, u64>, ServiceError> {
        let (key, policy) = self.budget(user_id, budget);
        let weight = match budget {
            Budget::User => u32::try_from(candidates.max(1)).unwrap_or(u32::MAX),
            Budget::Device(_) => 1,
        };
        let update = self
            .ephemeral
            .update_limiter(&key, policy.expire_at(now), move |s| {
                policy.acquire_weighted(s, now, weight).0
            })
            .await
            .map_err(ephemeral_err)?;
        match policy.decision(&update.before, &update.after, now) {
            Decision::Allowed => Ok(Ok(Attempt {
                key,
                policy,
                device: matches!(budget, Budget::Device(_)),
                weight,
                factor,
                now,
                counted: update.after,
            })),
            Decision::Refused { retry_after_secs } => {
                self.emit(now, || AuditEvent::RateLimited {
                    user_id: user_id.to_owned(),
                    factor,
                    retry_after_secs,
                });
                Ok(Err(retry_after_secs))
            }
        }
    }

    /// Settles an attempt whose code was wrong: it is already counted, so this only audits.
    pub(super) fn fail(&self, attempt: Attempt, user_id: &str, reason: FailureReason) {
        self.emit(attempt.now, || AuditEvent::VerificationFailed {
            user_id: Some(user_id.to_owned()),
            factor: attempt.factor,
            reason,
        });
        self.counted(attempt, user_id);
    }

    /// Leaves an evaluated attempt counted as a failure and tells the owner's audit trail.
    pub(super) fn counted(&self, attempt: Attempt, user_id: &str) {
        let Attempt {
            device,
            factor,
            now,
            counted,
            ..
        } = attempt;
        if !device {
            self.emit(now, || AuditEvent::SecondFactorFailed {
                user_id: user_id.to_owned(),
                failures_since_login: counted.since_success,
            });
        }
        if counted.locked_until > now {
            self.emit(now, || AuditEvent::LockedOut {
                user_id: user_id.to_owned(),
                factor,
                failures: counted.failures,
                until: counted.locked_until,
            });
        }
    }

    /// Settles an attempt whose code was accepted: gives it back and records the login (on the
    /// user's budget too, when it came from a device). The code is already consumed, so a store
    /// failure here is logged, not returned: it only leaves the limiter stricter.
    pub(super) async fn succeed(&self, attempt: Attempt, user_id: &str) {
        let Attempt {
            key,
            policy,
            device,
            weight,
            now,
            ..
        } = attempt;
        self.update_best_effort(&key, policy, now, move |s| {
            policy.succeed_weighted(s, now, weight)
        })
        .await;
        if device {
            let policy = self.config.rate_limit;
            self.update_best_effort(&user_key(user_id), policy, now, move |s| {
                policy.note_success(s, now)
            })
            .await;
        }
    }

    /// Gives an attempt back after an infrastructure error that came before its code was
    /// evaluated (best effort) and returns the error.
    pub(super) async fn release_on_error(
        &self,
        attempt: Attempt,
        error: ServiceError,
    ) -> ServiceError {
        let Attempt {
            key,
            policy,
            weight,
            now,
            ..
        } = attempt;
        self.update_best_effort(&key, policy, now, move |s| {
            policy.release_weighted(s, now, weight)
        })
        .await;
        error
    }

    pub(super) async fn update_best_effort<F>(
        &self,
        key: &str,
        policy: RateLimitPolicy,
        now: u64,
        update: F,
    ) where
        F: Fn(LimiterState) -> LimiterState + Send + Sync,
    {
        if let Err(e) = self
            .ephemeral
            .update_limiter(key, policy.expire_at(now), update)
            .await
        {
            tracing::warn!(target: "twofactor::service", error = %e, "could not update a rate limiter");
        }
    }

    /// Forgets the user's budget (recovery, admin reset, password change): a clean state.
    pub(super) async fn reset_limiter(&self, user_id: &str, now: u64) -> Result<(), ServiceError> {
        let policy = self.config.rate_limit;
        self.ephemeral
            .update_limiter(&user_key(user_id), policy.expire_at(now), |_| {
                LimiterState::default()
            })
            .await
            .map_err(ephemeral_err)?;
        Ok(())
    }
}

/// Whose attempt budget a code check draws on.
#[derive(Clone, Copy)]
pub(super) enum Budget {
    /// The user's budget, shared by every client without a device token.
    User,
    /// The budget of one known device (the hash of its token).
    Device(TokenHash),
}

/// A granted attempt, already counted as a failure by the atomic acquisition. Settle it exactly
/// once: `succeed` (the code was accepted: give it back), `fail`/`counted` (it stays counted) or
/// `release_on_error` (never evaluated: give it back). Each consumes it.
#[must_use = "settle the attempt: succeed, fail, counted or release_on_error"]
pub(super) struct Attempt {
    pub(super) key: String,
    pub(super) policy: RateLimitPolicy,
    pub(super) device: bool,
    /// The units the attempt took (candidates compared, on the user's budget).
    pub(super) weight: u32,
    pub(super) factor: Factor,
    pub(super) now: u64,
    /// The state stored by the acquisition.
    pub(super) counted: LimiterState,
}

/// The limiter key of a user's shared budget: `2fa:user:<user id>`.
pub(super) fn user_key(user_id: &str) -> String {
    let mut key = String::with_capacity(9 + user_id.len());
    key.push_str("2fa:user:");
    key.push_str(user_id);
    key
}
