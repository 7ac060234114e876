//! Rate limiting and lockout: a policy and pure decision functions.
//!
//! Nothing here reads a clock or touches storage. The service runs these functions inside
//! [`EphemeralStore::update_limiter`](crate::store::EphemeralStore::update_limiter), which makes
//! each read-modify-write atomic, so several application instances sharing one store share one
//! budget.
//!
//! # How an attempt is counted
//!
//! 1. [`RateLimitPolicy::acquire`] runs **before** a code is evaluated. It takes one attempt from
//!    the current window's budget or refuses. Because the attempt is taken before the code is
//!    looked at, N concurrent guesses cannot exceed the budget: the store serialises the N
//!    acquisitions and only the first `max_failures` get through.
//! 2. After the code was evaluated, [`RateLimitPolicy::record_failure`] or
//!    [`RateLimitPolicy::record_success`] settles it. A success resets everything (the owner has
//!    proved possession of the factor); a failure counts towards the lockout.
//!
//! Whether an acquisition was granted is read from the state it returned, with
//! [`RateLimitPolicy::decision`]: `Allowed` unless the state is locked at `now`.
//!
//! # The default policy and its arithmetic
//!
//! [`RateLimitPolicy::totp_default`] allows 5 failed attempts per 10-minute window (the seed's
//! policy); after the 5th, every attempt, even with a valid code, is refused until the window
//! passes. On top of that it escalates: every 5 *consecutive* failures (across windows, until a
//! success) start lockout number *k*, which lasts `600 s × 2^(k-1)` (the first one: until the
//! window ends), with no upper cap.
//!
//! An attacker who never stops, at the maximum rate allowed, gets 5 guesses, waits 10 min, gets 5,
//! waits 20 min, 40 min, ... Lockout *k* begins after `600 × (2^(k-1) − 1)` seconds, so in one
//! year (31,536,000 s) lockouts 1..=16 begin (the 16th at 19,660,200 s ≈ 228 days; the 17th would
//! begin at 39,321,000 s ≈ 455 days). That is **16 × 5 = 80 guesses evaluated per year**
//! ([`RateLimitPolicy::max_guesses_per_year`] computes it), at most 4 more if the attacker keeps
//! requests in flight across a lockout. Against a ±1 window (3 valid codes out of 10⁶), the chance
//! of success is at most `1 − (1 − 3×10⁻⁶)^84 ≈ 2.5×10⁻⁴` a year, within NIST SP 800-63B's limit
//! of 100 consecutive failures.
//!
//! The seed's policy alone (no escalation, [`RateLimitPolicy::seed`]) allows 5 guesses per 600 s:
//! `31,536,000 / 600 × 5 = 262,800` guesses a year, and `1 − (1 − 3×10⁻⁶)^262,800 ≈ 55 %` chance to
//! get in.
//!
//! Escalation locks the real user's TOTP out too while an attacker keeps guessing. The owner keeps
//! a way in: backup codes have their own limiter ([`RateLimitPolicy::backup_code_default`], the
//! seed's 5 per 10 minutes without escalation), and a successful backup-code login resets the TOTP
//! limiter. Guessing backup codes is hopeless: a code carries 50 random bits and a user holds at
//! most 8, so each guess hits with probability `8 / 2^50 ≈ 7.1×10⁻¹⁵`; 262,800 guesses a year give
//! `≈ 1.9×10⁻⁹` a year. An operator's admin reset is the last resort.
//!
//! # Memory
//!
//! A limiter state may be dropped by the store after [`RateLimitPolicy::expire_at`]:
//! [`RateLimitPolicy::memory_secs`] (default one year) after the last attempt. Every attempt,
//! refused or not, renews it, so an attacker who keeps trying never escapes escalation, and one who
//! stops for a year before starting again has spent that year without a single guess.

use crate::store::LimiterState;

/// Seconds in a (non-leap) year, the period of [`RateLimitPolicy::max_guesses_per_year`].
pub const YEAR_SECS: u64 = 365 * 24 * 3600;

/// How many attempts a user gets, and how lockouts grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RateLimitPolicy {
    /// Failed attempts allowed per window (and per lockout level) before attempts are refused.
    /// At least 1 (0 is treated as 1).
    pub max_failures: u32,
    /// Length of the counting window in seconds; also the first lockout's length and the base of
    /// escalation. At least 1 (0 is treated as 1).
    pub window_secs: u64,
    /// Double the lockout for every further `max_failures` consecutive failures. Without it, the
    /// policy is the plain fixed window (see [`RateLimitPolicy::seed`]).
    pub escalate: bool,
    /// Upper bound on one lockout in seconds (`u64::MAX`: no cap, the default). A cap `C` lets a
    /// patient attacker make about `max_failures × YEAR_SECS / C` guesses a year once lockouts
    /// reach it, on top of the ramp: check a capped policy with
    /// [`RateLimitPolicy::max_guesses_per_year`] (a 90-day cap keeps the default under 100).
    pub max_lockout_secs: u64,
    /// How long after the last attempt the store may forget the state.
    pub memory_secs: u64,
}

/// Whether an attempt may be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use]
pub enum Decision {
    /// Evaluate the code.
    Allowed,
    /// Refuse without evaluating the code; try again after this many seconds.
    Refused {
        /// Seconds until an attempt may be allowed again (at least 1).
        retry_after_secs: u64,
    },
}

impl RateLimitPolicy {
    /// The default for TOTP codes: 5 failures per 10 minutes, then escalating lockouts without a
    /// cap (at most 80 guesses evaluated per year; see the [module docs](self)).
    #[must_use]
    pub const fn totp_default() -> Self {
        Self {
            max_failures: 5,
            window_secs: 600,
            escalate: true,
            max_lockout_secs: u64::MAX,
            memory_secs: YEAR_SECS,
        }
    }

    /// The default for backup codes: 5 failures per 10 minutes, no escalation, so an attacker
    /// hammering TOTP codes cannot lock the owner out of their backup codes.
    #[must_use]
    pub const fn backup_code_default() -> Self {
        Self {
            escalate: false,
            ..Self::totp_default()
        }
    }

    /// The seed tutorial's policy: 5 attempts per 10 minutes and nothing more (262,800 guesses a
    /// year). For comparison; do not use it for TOTP codes.
    #[must_use]
    pub const fn seed() -> Self {
        Self::backup_code_default()
    }

    fn max(&self) -> u32 {
        self.max_failures.max(1)
    }

    fn window(&self) -> u64 {
        self.window_secs.max(1)
    }

    /// Takes one attempt from the budget at `now`, before a code is evaluated. Pure: run it inside
    /// `update_limiter` and read the result with [`RateLimitPolicy::decision`].
    ///
    /// A locked state is returned unchanged. A window that has passed is restarted. When the
    /// window's budget is already taken (by failures or by attempts still in flight), the state is
    /// locked until the window ends.
    #[must_use]
    pub fn acquire(&self, state: LimiterState, now: u64) -> LimiterState {
        let mut s = state;
        if s.locked_until > now {
            return s;
        }
        if now >= s.window_start.saturating_add(self.window()) || s.window_start > now {
            s.window_start = now;
            s.attempts = 0;
        }
        if s.attempts >= self.max() {
            s.locked_until = s.window_start.saturating_add(self.window());
            return s;
        }
        s.attempts += 1;
        s
    }

    /// Whether the state returned by [`RateLimitPolicy::acquire`] at `now` granted the attempt.
    pub fn decision(&self, state: &LimiterState, now: u64) -> Decision {
        if state.locked_until > now {
            Decision::Refused {
                retry_after_secs: state.locked_until - now,
            }
        } else {
            Decision::Allowed
        }
    }

    /// Settles an acquired attempt whose code was wrong (or replayed, or malformed). Every
    /// `max_failures`-th consecutive failure starts a lockout (see [`RateLimitPolicy::lockout_secs`]).
    #[must_use]
    pub fn record_failure(&self, state: LimiterState, now: u64) -> LimiterState {
        let mut s = state;
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        let window_end = s.window_start.saturating_add(self.window());
        if s.consecutive_failures.is_multiple_of(self.max()) {
            let level = s.consecutive_failures / self.max();
            let until = if level <= 1 || !self.escalate {
                window_end.max(now.saturating_add(1))
            } else {
                now.saturating_add(self.lockout_secs(level))
            };
            s.locked_until = s.locked_until.max(until);
        } else if s.attempts >= self.max() {
            // The window's budget is spent even though the consecutive count is not at a
            // multiple (a success earlier in the window reset it): hold until the window ends.
            s.locked_until = s.locked_until.max(window_end);
        }
        s
    }

    /// Settles an acquired attempt whose code was accepted: the owner proved possession of the
    /// factor, so the count, the escalation and any lock are cleared.
    #[must_use]
    pub fn record_success(&self, _state: LimiterState, _now: u64) -> LimiterState {
        LimiterState::default()
    }

    /// Gives back an acquired attempt that was never evaluated (an infrastructure error happened
    /// in between), so an outage does not lock users out.
    #[must_use]
    pub fn release(&self, state: LimiterState, _now: u64) -> LimiterState {
        let mut s = state;
        s.attempts = s.attempts.saturating_sub(1);
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

    /// The most guesses an attacker who never stops, starting from a clean state and always
    /// trying again the moment it is allowed, gets evaluated in one year (excluding the at most
    /// `max_failures - 1` requests it may keep in flight across a lockout). 80 for
    /// [`RateLimitPolicy::totp_default`], 262,800 for [`RateLimitPolicy::seed`].
    #[must_use]
    pub fn max_guesses_per_year(&self) -> u64 {
        // Batch k of `max` guesses happens at `t`, then lockout k. Closed form for the
        // non-escalating case (one batch per window); a loop otherwise (at most ~64 iterations
        // before the lockout saturates past a year).
        if !self.escalate || self.max_lockout_secs <= self.window() {
            return YEAR_SECS.div_ceil(self.window()) * u64::from(self.max());
        }
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
        guesses
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

    fn attempt(
        p: &RateLimitPolicy,
        s: LimiterState,
        now: u64,
        ok: bool,
    ) -> (LimiterState, Decision) {
        let s = p.acquire(s, now);
        let d = p.decision(&s, now);
        if d != Decision::Allowed {
            return (s, d);
        }
        let s = if ok {
            p.record_success(s, now)
        } else {
            p.record_failure(s, now)
        };
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
        assert_eq!(n, LimiterState::default(), "success resets");
    }

    #[test]
    fn success_resets_the_count() {
        let p = RateLimitPolicy::totp_default();
        let mut s = LimiterState::default();
        for i in 0..4 {
            s = attempt(&p, s, T0 + i, false).0;
        }
        s = attempt(&p, s, T0 + 5, true).0;
        for i in 0..5 {
            let (n, d) = attempt(&p, s, T0 + 10 + i, false);
            assert_eq!(d, Decision::Allowed);
            s = n;
        }
        assert!(matches!(
            attempt(&p, s, T0 + 20, true).1,
            Decision::Refused { .. }
        ));
    }

    #[test]
    fn in_flight_attempts_count_against_the_budget() {
        let p = RateLimitPolicy::totp_default();
        let mut s = LimiterState::default();
        let mut granted = 0;
        // 32 concurrent acquisitions before any settles.
        for _ in 0..32 {
            s = p.acquire(s, T0);
            if p.decision(&s, T0) == Decision::Allowed {
                granted += 1;
            }
        }
        assert_eq!(granted, 5);
    }

    #[test]
    fn escalation_doubles_and_slow_attackers_escalate_too() {
        let p = RateLimitPolicy::totp_default();
        assert_eq!(p.lockout_secs(1), 600);
        assert_eq!(p.lockout_secs(2), 1200);
        assert_eq!(p.lockout_secs(17), 600 << 16);
        assert_eq!(p.lockout_secs(200), u64::MAX);
        // One guess every 150 s never fills a window, but consecutive failures still lock.
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
        // 30 days = 2,592,000 s: lockouts 1..=12 begin (the 12th after 600 × 2047 s).
        assert!(evaluated <= 65, "evaluated {evaluated}");
        assert!(evaluated >= 55, "evaluated {evaluated}");
    }

    #[test]
    fn yearly_bounds() {
        assert_eq!(RateLimitPolicy::totp_default().max_guesses_per_year(), 80);
        assert_eq!(RateLimitPolicy::seed().max_guesses_per_year(), 262_800);
        let capped = RateLimitPolicy {
            max_lockout_secs: 90 * 86_400,
            ..RateLimitPolicy::totp_default()
        };
        assert!(capped.max_guesses_per_year() <= 100);
    }

    #[test]
    fn release_gives_the_attempt_back() {
        let p = RateLimitPolicy::totp_default();
        let s = p.acquire(LimiterState::default(), T0);
        assert_eq!(s.attempts, 1);
        assert_eq!(p.release(s, T0).attempts, 0);
    }
}
