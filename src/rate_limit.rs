//! Rate limiting and lockout: a policy, its state, and pure decision functions.
//!
//! Nothing here reads a clock or touches storage. The service runs these functions inside
//! [`EphemeralStore::update_limiter`](crate::store::EphemeralStore::update_limiter), which makes
//! each read-modify-write atomic, so several application instances sharing one store share one
//! budget.
//!
//! # The adversary this is built against
//!
//! The attacker knows the user id and the password (credential stuffing); sends requests at any
//! rate and concurrency, through any number of application instances; the owner keeps logging in
//! (as often as hourly) with TOTP codes and sometimes a backup code; any store write may fail (at
//! any rate below 1); the clock is right. The attacker does not have the owner's phone, backup
//! codes or a device token of the owner's browser.
//!
//! # How an attempt is counted
//!
//! 1. [`RateLimitPolicy::acquire`] runs **before** a code is evaluated, in one atomic store
//!    operation. It either refuses, or grants the attempt **and counts it as a failure** in the
//!    same write. Nothing evaluated is ever uncounted: if a later write is lost, the attempt stays
//!    counted (a lost write can only over-count), and N concurrent guesses cannot exceed the
//!    budget because the store serialises the N acquisitions.
//! 2. A code that was accepted gives its own attempt back with [`RateLimitPolicy::succeed`]. A
//!    success never clears failures that other requests caused, so the owner logging in does not
//!    refill an attacker's budget.
//! 3. An attempt that was never evaluated (an infrastructure error came first) is given back with
//!    [`RateLimitPolicy::release`].
//!
//! # The default policy and its arithmetic
//!
//! [`RateLimitPolicy::totp_default`] allows 5 failures per 10-minute window. Every 5th counted
//! failure starts lockout number *k* = failures / 5, which lasts `600 s × 2^(k-1)` (the first one:
//! until the window ends), with no upper cap. One failure is forgiven every
//! [`forgive_secs`](RateLimitPolicy::forgive_secs) (30 days), so an owner's occasional typos do
//! not add up over the years.
//!
//! An attacker at the maximum rate gets 5 guesses, waits 10 min, gets 5, waits 20 min, 40 min,
//! ... Reaching failure 5k takes at least `600 × (2^(k-1) − 1)` seconds, so in any 365 days at
//! most 16 × 5 = 80 failures are added; forgiveness takes back at most 365 / 30 ≈ 12 more. That is
//! **at most 92 guesses evaluated in any 365 days**
//! ([`RateLimitPolicy::max_guesses_per_year`] computes it), whatever the owner does and however
//! many requests are in flight. Against a ±1 window (3 valid codes out of 10⁶), the chance of
//! success is at most `1 − (1 − 3×10⁻⁶)^92 ≈ 2.8×10⁻⁴` a year, within NIST SP 800-63B's limit of
//! 100 failures.
//!
//! A fixed window alone ([`RateLimitPolicy::fixed_window`], the policy of most tutorials) allows
//! 5 guesses per 600 s: `31,536,000 / 600 × 5 = 262,800` guesses a year, a `≈ 55 %` chance.
//!
//! # The owner's way in
//!
//! Any budget that the attacker and the owner share, the attacker can exhaust: under attack, the
//! per-user budget stays locked, for TOTP and backup codes alike. The owner therefore gets budgets
//! of their own: a browser that has completed a login before presents a device token (see
//! [`CompleteLogin::device`](crate::service::CompleteLogin::device)), and
//! its attempts count against that device's own budget ([`Config::device_rate_limit`]), which
//! failures from other clients never touch. On a **new** device under attack the owner shares the
//! locked budget with the attacker: they log in from a known device, or an operator approves a
//! recovery, or (after logging in elsewhere) they change the password with a fresh second factor,
//! which ends the lockout ([`TwoFactor::password_changed`](crate::TwoFactor::password_changed)).
//!
//! # Several candidates per guess
//!
//! A TOTP code checked against *k* authenticators is *k* chances. The service therefore takes a
//! guess on the user's budget with [`RateLimitPolicy::acquire_weighted`] and weight *k*, and the
//! bound above holds for candidates compared: with five authenticators and the default policy a
//! user's budget admits one guess per window, and the year's chance stays at or below
//! `≈ 2.8×10⁻⁴` (measured: 85 candidates, 17 guesses). The owner's own browsers keep budgets that
//! count one per attempt.
//!
//! [`Config::device_rate_limit`]: crate::service::Config::device_rate_limit
//!
//! # Memory
//!
//! A limiter state may be dropped by the store after [`RateLimitPolicy::expire_at`]:
//! [`RateLimitPolicy::memory_secs`] (default one year) after the last attempt. Every attempt,
//! refused or not, renews it, so an attacker who keeps trying never escapes escalation, and one who
//! stops for a year before starting again has spent that year without a single guess.

/// Seconds in a (non-leap) year, the period of [`RateLimitPolicy::max_guesses_per_year`].
pub const YEAR_SECS: u64 = 365 * 24 * 3600;

/// Rate-limiter state for one key, as stored. Stores only keep it and update it atomically; its
/// meaning belongs to [`RateLimitPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LimiterState {
    /// Start of the current counting window (Unix seconds).
    pub window_start: u64,
    /// Attempts counted in the current window.
    pub attempts: u32,
    /// Counted failures (every granted attempt, less those given back): drives escalation. Not
    /// reset by a success; one is forgiven every [`RateLimitPolicy::forgive_secs`].
    pub failures: u32,
    /// Locked until this Unix time (0 = not locked).
    pub locked_until: u64,
    /// Forgiveness runs from this Unix time.
    pub forgiven_at: u64,
    /// Failed attempts since the last success (what the owner is told about).
    pub since_success: u32,
    /// The last success (Unix seconds, 0 = never).
    pub last_success_at: u64,
}

impl LimiterState {
    /// A state with every field given, for stores that read one back from storage.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub const fn from_parts(
        window_start: u64,
        attempts: u32,
        failures: u32,
        locked_until: u64,
        forgiven_at: u64,
        since_success: u32,
        last_success_at: u64,
    ) -> Self {
        Self {
            window_start,
            attempts,
            failures,
            locked_until,
            forgiven_at,
            since_success,
            last_success_at,
        }
    }
}

/// How many attempts a key gets, how lockouts grow, and how failures are forgiven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct RateLimitPolicy {
    /// Failed attempts allowed per window (and per lockout level) before attempts are refused.
    /// At least 1 (0 is treated as 1).
    pub max_failures: u32,
    /// Length of the counting window in seconds; also the first lockout's length and the base of
    /// escalation. At least 1 (0 is treated as 1).
    pub window_secs: u64,
    /// Double the lockout for every further `max_failures` failures. Without it, the policy is the
    /// plain fixed window (see [`RateLimitPolicy::fixed_window`]).
    pub escalate: bool,
    /// Upper bound on one lockout in seconds (`u64::MAX`: no cap, the default). A cap `C` lets a
    /// patient attacker make about `max_failures × YEAR_SECS / C` guesses a year once lockouts
    /// reach it: check a capped policy with [`RateLimitPolicy::max_guesses_per_year`].
    pub max_lockout_secs: u64,
    /// One counted failure is forgiven every this many seconds (`u64::MAX`: never). Each
    /// forgiven failure is one more guess an attacker may make in a year.
    pub forgive_secs: u64,
    /// How long after the last attempt the store may forget the state.
    pub memory_secs: u64,
}

/// Whether an attempt may be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "decision", rename_all = "snake_case"))]
#[must_use]
pub enum Decision {
    /// Evaluate the code: the attempt is already counted as a failure.
    Allowed,
    /// Refuse without evaluating the code; try again after this many seconds.
    Refused {
        /// Seconds until an attempt may be allowed again (at least 1).
        retry_after_secs: u64,
    },
}

impl RateLimitPolicy {
    /// The default per-user budget (TOTP and backup codes together): 5 failures per 10 minutes,
    /// escalating lockouts without a cap, one failure forgiven every 30 days (at most 92 guesses
    /// evaluated in any 365 days; see the [module docs](self)).
    #[must_use]
    pub const fn totp_default() -> Self {
        Self {
            max_failures: 5,
            window_secs: 600,
            escalate: true,
            max_lockout_secs: u64::MAX,
            forgive_secs: 30 * 24 * 3600,
            memory_secs: YEAR_SECS,
        }
    }

    /// A plain fixed window: 5 attempts per 10 minutes and nothing more (262,800 guesses a
    /// year). For comparison; do not use it for codes.
    #[must_use]
    pub const fn fixed_window() -> Self {
        Self {
            escalate: false,
            ..Self::totp_default()
        }
    }

    fn max(&self) -> u32 {
        self.max_failures.max(1)
    }

    fn window(&self) -> u64 {
        self.window_secs.max(1)
    }

    /// Forgives one failure per elapsed [`RateLimitPolicy::forgive_secs`].
    fn forgive(&self, mut s: LimiterState, now: u64) -> LimiterState {
        let period = self.forgive_secs.max(1);
        if s.failures == 0 || s.forgiven_at > now {
            s.forgiven_at = now;
            return s;
        }
        let elapsed = now - s.forgiven_at;
        // The common case (less than a period since the last forgiveness) needs no division.
        if elapsed >= period {
            let periods = elapsed / period;
            let forgiven = u32::try_from(periods).unwrap_or(u32::MAX).min(s.failures);
            s.failures -= forgiven;
            s.forgiven_at = if s.failures == 0 {
                now
            } else {
                s.forgiven_at.saturating_add(periods.saturating_mul(period))
            };
        }
        s
    }

    /// Takes one attempt at `now`, before a code is evaluated, and counts it as a failure in the
    /// same state. Pure: run it inside `update_limiter`. The [`Decision`] says whether the attempt
    /// was granted; it is also what [`RateLimitPolicy::decide`] computes from the state before.
    ///
    /// A locked state stays locked. A window that has passed is restarted. When the window's
    /// budget is already taken, the state is locked until the window ends. Every
    /// `max_failures`-th counted failure starts a lockout (see [`RateLimitPolicy::lockout_secs`])
    /// for the attempts after this one.
    pub fn acquire(&self, state: LimiterState, now: u64) -> (LimiterState, Decision) {
        self.acquire_weighted(state, now, 1)
    }

    /// [`RateLimitPolicy::acquire`] for a guess that is compared against `weight` candidate
    /// secrets at once (a TOTP code checked against each of a user's authenticators): the
    /// window, the escalation and the yearly bound count `weight` units for it, so the bound
    /// [`RateLimitPolicy::max_guesses_per_year`] holds for *candidates compared*, whatever the
    /// number of authenticators. A guess heavier than what is left of the window waits for the
    /// next one; one heavier than a whole window is granted alone at the start of a window.
    /// [`LimiterState::since_success`] still counts guesses (one per grant). Settle it with the
    /// same weight ([`RateLimitPolicy::succeed_weighted`], [`RateLimitPolicy::release_weighted`]).
    pub fn acquire_weighted(
        &self,
        state: LimiterState,
        now: u64,
        weight: u32,
    ) -> (LimiterState, Decision) {
        let weight = weight.max(1);
        let mut s = self.forgive(state, now);
        if s.locked_until > now {
            let retry_after_secs = s.locked_until - now;
            return (s, Decision::Refused { retry_after_secs });
        }
        if now >= s.window_start.saturating_add(self.window()) || s.window_start > now {
            s.window_start = now;
            s.attempts = 0;
        }
        let window_end = s.window_start.saturating_add(self.window());
        if s.attempts >= self.max() || (s.attempts > 0 && s.attempts + weight > self.max()) {
            s.locked_until = window_end;
            let retry_after_secs = (window_end - now).max(1);
            return (s, Decision::Refused { retry_after_secs });
        }
        s.attempts = s.attempts.saturating_add(weight);
        let before = s.failures;
        s.failures = s.failures.saturating_add(weight);
        s.since_success = s.since_success.saturating_add(1);
        if before / self.max() < s.failures / self.max() {
            let level = s.failures / self.max();
            s.locked_until = if level <= 1 || !self.escalate {
                window_end.max(now.saturating_add(1))
            } else {
                now.saturating_add(self.lockout_secs(level))
            };
        }
        (s, Decision::Allowed)
    }

    /// Whether [`RateLimitPolicy::acquire`] at `now` grants an attempt on the state `before`
    /// (the state a store read before applying it).
    pub fn decide(&self, before: LimiterState, now: u64) -> Decision {
        self.acquire(before, now).1
    }

    /// What [`RateLimitPolicy::acquire`] decided, read from the state it was applied to and the
    /// state it stored, without running it again: a granted attempt always adds one to
    /// [`LimiterState::since_success`]. (At `u32::MAX` failures since the last success the count
    /// saturates and a grant reads as a refusal: it fails closed.)
    pub fn decision(&self, before: &LimiterState, after: &LimiterState, now: u64) -> Decision {
        if after.since_success != before.since_success {
            Decision::Allowed
        } else {
            Decision::Refused {
                retry_after_secs: after.locked_until.saturating_sub(now).max(1),
            }
        }
    }

    /// Gives back a granted attempt whose code was accepted: one failure, one attempt, and the
    /// lockout that this very attempt started (if it was the one that reached a multiple of
    /// `max_failures`). Failures counted for other requests stay. Records the success.
    #[must_use]
    pub fn succeed(&self, state: LimiterState, now: u64) -> LimiterState {
        self.succeed_weighted(state, now, 1)
    }

    /// [`RateLimitPolicy::succeed`] for an attempt granted by
    /// [`RateLimitPolicy::acquire_weighted`] with this `weight`.
    #[must_use]
    pub fn succeed_weighted(&self, state: LimiterState, now: u64, weight: u32) -> LimiterState {
        let mut s = self.give_back(state, now, weight);
        s.since_success = 0;
        s.last_success_at = now;
        s
    }

    /// Gives back a granted attempt that was never evaluated (an infrastructure error came
    /// first), so an outage does not lock users out.
    #[must_use]
    pub fn release(&self, state: LimiterState, now: u64) -> LimiterState {
        self.release_weighted(state, now, 1)
    }

    /// [`RateLimitPolicy::release`] for an attempt granted by
    /// [`RateLimitPolicy::acquire_weighted`] with this `weight`.
    #[must_use]
    pub fn release_weighted(&self, state: LimiterState, now: u64, weight: u32) -> LimiterState {
        let mut s = self.give_back(state, now, weight);
        s.since_success = s.since_success.saturating_sub(1);
        s
    }

    /// Records a success proved on another key (the owner's device) without touching this key's
    /// budget: the failures since the last success start again from 0 for the owner's notice.
    #[must_use]
    pub fn note_success(&self, state: LimiterState, now: u64) -> LimiterState {
        let mut s = state;
        s.since_success = 0;
        s.last_success_at = now;
        s
    }

    fn give_back(&self, state: LimiterState, now: u64, weight: u32) -> LimiterState {
        let weight = weight.max(1);
        let mut s = state;
        // Whether this attempt's units crossed a multiple of `max_failures` (started a lock).
        let started_lock = s.failures > 0
            && s.failures.saturating_sub(weight) / self.max() < s.failures / self.max();
        s.failures = s.failures.saturating_sub(weight);
        s.attempts = s.attempts.saturating_sub(weight);
        if started_lock && s.locked_until > now {
            // No other attempt can have been granted since this one started the lock.
            s.locked_until = 0;
        }
        s
    }

    /// Length of lockout number `level` (1-based) when escalating: `window_secs × 2^(level-1)`,
    /// saturating, capped at [`RateLimitPolicy::max_lockout_secs`].
    #[must_use]
    pub fn lockout_secs(&self, level: u32) -> u64 {
        let doublings = level.saturating_sub(1);
        let factor = if doublings >= 64 {
            u64::MAX
        } else {
            1u64 << doublings
        };
        self.window()
            .saturating_mul(factor)
            .min(self.max_lockout_secs.max(1))
    }

    /// When the store may forget a state last touched at `now`.
    #[must_use]
    pub fn expire_at(&self, now: u64) -> u64 {
        now.saturating_add(self.memory_secs.max(self.window()))
    }

    /// An upper bound on the units an attacker gets evaluated in any 365 days, however fast
    /// and concurrent, whatever the owner does: the escalation ramp from a clean state plus the
    /// failures forgiven in a year. 92 for [`RateLimitPolicy::totp_default`], 262,800 for
    /// [`RateLimitPolicy::fixed_window`].
    ///
    /// A unit is one candidate secret compared: the service weighs a TOTP guess against *k*
    /// authenticators as *k* units ([`RateLimitPolicy::acquire_weighted`]), so this bounds the
    /// candidates compared whatever the number of authenticators (up to `weight − 1` more for a
    /// guess heavier than what is left of the bound). The chance of success in a year is at
    /// most `1 − (1 − c / 10^digits)^bound` for `c` codes accepted per secret (3 for a ±1
    /// window): `≈ 2.8×10⁻⁴` with the defaults.
    #[must_use]
    pub fn max_guesses_per_year(&self) -> u64 {
        let forgiven = YEAR_SECS / self.forgive_secs.max(1);
        if !self.escalate || self.max_lockout_secs <= self.window() {
            return YEAR_SECS.div_ceil(self.window()) * u64::from(self.max()) + forgiven;
        }
        // Batch k of `max` guesses happens at `t`, then lockout k (at most ~64 iterations before
        // the lockout saturates past a year).
        let mut t: u64 = 0;
        let mut guesses: u64 = 0;
        let mut level: u32 = 0;
        while t < YEAR_SECS {
            guesses += u64::from(self.max());
            level += 1;
            let lock = if level == 1 {
                self.window()
            } else {
                self.lockout_secs(level)
            };
            t = t.saturating_add(lock);
        }
        guesses + forgiven
    }
}

impl Default for RateLimitPolicy {
    /// [`RateLimitPolicy::totp_default`].
    fn default() -> Self {
        Self::totp_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    /// One attempt: acquire, then settle as a success or leave the failure counted.
    fn attempt(
        p: &RateLimitPolicy,
        s: LimiterState,
        now: u64,
        ok: bool,
    ) -> (LimiterState, Decision) {
        let (s, d) = p.acquire(s, now);
        if d == Decision::Allowed && ok {
            return (p.succeed(s, now), d);
        }
        (s, d)
    }

    #[test]
    fn five_per_window_then_refused_until_window_ends() {
        let p = RateLimitPolicy::totp_default();
        let mut s = LimiterState::default();
        for i in 0..5 {
            let (n, d) = attempt(&p, s, T0 + i * 10, false);
            assert_eq!(d, Decision::Allowed, "attempt {i}");
            s = n;
        }
        assert_eq!(s.failures, 5);
        // Even a valid code is refused now; retry-after runs to the end of the window.
        let (n, d) = attempt(&p, s, T0 + 100, true);
        assert_eq!(
            d,
            Decision::Refused {
                retry_after_secs: 500
            }
        );
        s = n;
        let (_, d) = attempt(&p, s, T0 + 599, true);
        assert_eq!(
            d,
            Decision::Refused {
                retry_after_secs: 1
            }
        );
        let (n, d) = attempt(&p, s, T0 + 600, true);
        assert_eq!(d, Decision::Allowed);
        assert_eq!(n.failures, 5, "a success gives back only its own attempt");
        assert_eq!(n.since_success, 0);
        assert_eq!(n.last_success_at, T0 + 600);
    }

    #[test]
    fn owner_success_does_not_refill_the_attackers_budget() {
        let p = RateLimitPolicy::totp_default();
        let mut s = LimiterState::default();
        for i in 0..4 {
            s = attempt(&p, s, T0 + i, false).0;
        }
        s = attempt(&p, s, T0 + 5, true).0;
        assert_eq!(s.failures, 4);
        let (n, d) = attempt(&p, s, T0 + 6, false);
        assert_eq!(d, Decision::Allowed);
        assert!(
            matches!(attempt(&p, n, T0 + 7, true).1, Decision::Refused { .. }),
            "the attacker's fifth failure locks, owner login or not"
        );
    }

    #[test]
    fn the_owners_own_attempt_does_not_leave_a_lock_behind() {
        let p = RateLimitPolicy::totp_default();
        let mut s = LimiterState::default();
        for i in 0..4 {
            s = attempt(&p, s, T0 + i, false).0;
        }
        // The owner's attempt is the fifth counted: it locks while in flight, then gives back.
        let (n, d) = attempt(&p, s, T0 + 10, true);
        assert_eq!(d, Decision::Allowed);
        assert_eq!(n.locked_until, 0);
        assert_eq!(n.failures, 4);
    }

    #[test]
    fn in_flight_attempts_count_against_the_budget() {
        let p = RateLimitPolicy::totp_default();
        let mut s = LimiterState::default();
        let mut granted = 0;
        // 64 concurrent acquisitions before any settles.
        for _ in 0..64 {
            let (n, d) = p.acquire(s, T0);
            if d == Decision::Allowed {
                granted += 1;
            }
            s = n;
        }
        assert_eq!(granted, 5);
        assert_eq!(s.failures, 5);
    }

    #[test]
    fn decide_and_decision_agree_with_acquire() {
        for p in [
            RateLimitPolicy::totp_default(),
            RateLimitPolicy::fixed_window(),
        ] {
            let mut s = LimiterState::default();
            for i in 0..400 {
                let now = T0 + i * 37;
                let before = s;
                let (n, d) = p.acquire(s, now);
                assert_eq!(p.decide(before, now), d);
                assert_eq!(
                    p.decision(&before, &n, now),
                    d,
                    "at {i}: {before:?} -> {n:?}"
                );
                // Owner successes now and then, as the service would settle them.
                s = if i % 7 == 0 && d == Decision::Allowed {
                    p.succeed(n, now)
                } else {
                    n
                };
            }
        }
    }

    #[test]
    fn escalation_doubles_and_slow_attackers_escalate_too() {
        let p = RateLimitPolicy::totp_default();
        assert_eq!(p.lockout_secs(1), 600);
        assert_eq!(p.lockout_secs(2), 1200);
        assert_eq!(p.lockout_secs(17), 600 << 16);
        assert_eq!(p.lockout_secs(200), u64::MAX);
        // One guess every 150 s never fills a window, but counted failures still lock.
        let mut s = LimiterState::default();
        let mut now = T0;
        let mut evaluated = 0u32;
        while now < T0 + 30 * 86_400 {
            let (n, d) = attempt(&p, s, now, false);
            if d == Decision::Allowed {
                evaluated += 1;
            }
            s = n;
            now += 150;
        }
        assert!((55..=66).contains(&evaluated), "evaluated {evaluated}");
    }

    #[test]
    fn failures_are_forgiven_slowly() {
        let p = RateLimitPolicy::totp_default();
        let mut s = LimiterState::default();
        for i in 0..3 {
            s = attempt(&p, s, T0 + i, false).0;
        }
        s = p.acquire(s, T0 + p.forgive_secs + 10).0;
        // Three counted, one forgiven, one more counted.
        assert_eq!(s.failures, 3);
        s = p.acquire(s, T0 + 10 * p.forgive_secs).0;
        assert_eq!(s.failures, 1, "everything forgiven, then this attempt");
        assert_eq!(s.since_success, 5, "the owner's notice is not forgiven");
    }

    #[test]
    fn yearly_bounds() {
        assert_eq!(RateLimitPolicy::totp_default().max_guesses_per_year(), 92);
        assert_eq!(
            RateLimitPolicy::fixed_window().max_guesses_per_year(),
            262_800 + 12
        );
        let capped = RateLimitPolicy {
            max_lockout_secs: 90 * 86_400,
            ..RateLimitPolicy::totp_default()
        };
        assert!(capped.max_guesses_per_year() <= 110);
    }

    /// The attacker at the fastest rate allowed for a year, the owner succeeding every hour in
    /// between: the attacker's evaluations are counted here, not asked of the policy.
    #[test]
    fn a_year_of_attack_with_the_owner_logging_in_hourly() {
        let p = RateLimitPolicy::totp_default();
        let mut s = LimiterState::default();
        let mut attacker = 0u64;
        let mut next_owner = T0;
        let mut now = T0;
        while now < T0 + YEAR_SECS {
            if now >= next_owner {
                s = attempt(&p, s, now, true).0;
                next_owner += 3600;
            }
            let (n, d) = p.acquire(s, now);
            s = n;
            match d {
                Decision::Allowed => {
                    attacker += 1;
                    now += 1;
                }
                Decision::Refused { retry_after_secs } => {
                    now += retry_after_secs.min(next_owner.saturating_sub(now).max(1));
                }
            }
        }
        assert!(attacker <= 100, "attacker evaluated {attacker}");
        assert!(attacker >= 60, "the attacker was active: {attacker}");
    }

    /// A guess weighed as five candidates (five authenticators) for a year at the fastest rate:
    /// the candidates compared stay within the one-candidate bound, and an owner's success
    /// gives back exactly its own units.
    #[test]
    fn weighted_guesses_keep_the_yearly_bound_in_candidates() {
        let p = RateLimitPolicy::totp_default();
        for weight in [1u32, 2, 3, 5, 7, 20] {
            let mut s = LimiterState::default();
            let mut candidates = 0u64;
            let mut now = T0;
            while now < T0 + YEAR_SECS {
                let (n, d) = p.acquire_weighted(s, now, weight);
                s = n;
                match d {
                    Decision::Allowed => {
                        candidates += u64::from(weight);
                        now += 1;
                    }
                    Decision::Refused { retry_after_secs } => now += retry_after_secs,
                }
            }
            let bound = p.max_guesses_per_year() + u64::from(weight) - 1;
            assert!(
                candidates <= bound,
                "weight {weight}: {candidates} candidates compared, bound {bound}"
            );
            assert!(candidates >= 40, "weight {weight}: the attacker was active");
        }
        let (s, d) = p.acquire_weighted(LimiterState::default(), T0, 5);
        assert_eq!(d, Decision::Allowed);
        assert_eq!((s.attempts, s.failures, s.since_success), (5, 5, 1));
        assert!(s.locked_until > T0, "five units fill the window");
        let s = p.succeed_weighted(s, T0, 5);
        assert_eq!((s.attempts, s.failures, s.locked_until), (0, 0, 0));
        let (s, _) = p.acquire_weighted(LimiterState::default(), T0, 3);
        let s = p.release_weighted(s, T0, 3);
        assert_eq!((s.attempts, s.failures, s.since_success), (0, 0, 0));
    }

    #[test]
    fn release_gives_the_attempt_back() {
        let p = RateLimitPolicy::totp_default();
        let (s, _) = p.acquire(LimiterState::default(), T0);
        assert_eq!((s.attempts, s.failures, s.since_success), (1, 1, 1));
        let s = p.release(s, T0);
        assert_eq!((s.attempts, s.failures, s.since_success), (0, 0, 0));
    }
}
