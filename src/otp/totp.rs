//! TOTP: RFC 6238.

use core::fmt;

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::mac::KeyedMac;
use super::{Algorithm, Code, Digits, parse_code};
use crate::Secret;
use crate::clock::Clock;
use crate::error::OtpError;

/// How many time steps around the current one a code may come from.
///
/// The default, one step each way, tolerates a 30-second clock skew or a code typed just as it
/// changed, which is what NIST SP 800-63B and RFC 6238 section 5.2 recommend. Each extra step is
/// another valid code an attacker's guess can hit, so windows are capped at
/// [`Window::MAX_STEPS`] each way; wider ones exist only through [`crate::danger::wide_window`].
///
/// With the `serde` feature it is `{"past": 1, "future": 1}`, checked on the way in like
/// [`Window::new`]: a window beyond [`Window::MAX_STEPS`] is made in code, through
/// [`crate::danger::wide_window`], never by a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "WindowSides")
)]
pub struct Window {
    past: u32,
    future: u32,
}

impl Window {
    /// The cap on past and on future steps for [`Window::new`].
    pub const MAX_STEPS: u32 = 10;
    /// The cap on each side for [`crate::danger::wide_window`]: past it, one verification costs
    /// more HMACs than any server should spend on an unauthenticated request.
    pub const DANGER_MAX_STEPS: u32 = 1000;
    /// Exactly the current step.
    pub const EXACT: Self = Self { past: 0, future: 0 };
    /// One step each way (the default).
    pub const ONE: Self = Self { past: 1, future: 1 };

    /// A window of `past` steps back and `future` steps ahead.
    ///
    /// # Errors
    /// [`OtpError::WindowTooLarge`] when either side exceeds [`Window::MAX_STEPS`].
    pub const fn new(past: u32, future: u32) -> Result<Self, OtpError> {
        Self::with_cap(past, future, Self::MAX_STEPS)
    }

    pub(crate) const fn with_cap(past: u32, future: u32, max: u32) -> Result<Self, OtpError> {
        if past > max || future > max {
            Err(OtpError::WindowTooLarge { past, future, max })
        } else {
            Ok(Self { past, future })
        }
    }

    /// Steps accepted before the current one.
    #[must_use]
    pub const fn past(self) -> u32 {
        self.past
    }

    /// Steps accepted after the current one.
    #[must_use]
    pub const fn future(self) -> u32 {
        self.future
    }
}

/// The unchecked form a [`Window`] is deserialised through.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct WindowSides {
    past: u32,
    future: u32,
}

#[cfg(feature = "serde")]
impl TryFrom<WindowSides> for Window {
    type Error = OtpError;
    fn try_from(w: WindowSides) -> Result<Self, OtpError> {
        Self::new(w.past, w.future)
    }
}

impl Default for Window {
    fn default() -> Self {
        Self::ONE
    }
}

/// Which time step a valid code belonged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TotpMatch {
    /// The matched time step, `(t - T0) / period`. Store it: a step once accepted must never be
    /// accepted again (RFC 6238 section 5.2).
    pub step: u64,
    /// The matched step minus the current step: -1 means the code was from the previous step
    /// (the authenticator's clock is behind, or the user was slow).
    pub drift: i64,
}

/// The result of a TOTP verification. A wrong code is an ordinary outcome, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "outcome", rename_all = "snake_case"))]
#[must_use]
pub enum TotpOutcome {
    /// The code is valid for the step in the match.
    Valid(TotpMatch),
    /// The code matches no step in the window.
    Invalid,
}

impl TotpOutcome {
    /// `true` for [`TotpOutcome::Valid`].
    #[must_use]
    pub const fn is_valid(&self) -> bool {
        matches!(self, Self::Valid(_))
    }

    /// The match, if any.
    #[must_use]
    pub const fn matched(&self) -> Option<TotpMatch> {
        match self {
            Self::Valid(m) => Some(*m),
            Self::Invalid => None,
        }
    }
}

/// Where a code belongs in time, found by [`Totp::diagnose_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Diagnosis {
    /// The code's step minus the current step: -3 means the code is three steps old.
    pub offset_steps: i64,
    /// The same offset in seconds (`offset_steps * period`): negative means the authenticator's
    /// clock is behind the server's by about that much.
    pub offset_seconds: i64,
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset_seconds {
            0 => f.write_str("the code matches the current time step; the clocks agree"),
            s if s < 0 => write!(
                f,
                "the code is {} step(s) old: the device's clock is about {} s behind",
                -self.offset_steps, -s
            ),
            s => write!(
                f,
                "the code is {} step(s) ahead: the device's clock is about {} s ahead",
                self.offset_steps, s
            ),
        }
    }
}

/// A time-based one-time password generator and verifier (RFC 6238), keyed once.
///
/// ```
/// use twofactor::{Algorithm, Secret, Totp, TotpOutcome};
///
/// let secret = Secret::generate(Algorithm::Sha1);
/// let totp = Totp::builder(&secret).build()?;
/// let code = totp.generate_at(1_700_000_000)?;
/// let outcome = totp.verify_at(code.as_str(), 1_700_000_000)?;
/// assert!(matches!(outcome, TotpOutcome::Valid(m) if m.drift == 0));
/// # Ok::<(), twofactor::Error>(())
/// ```
#[derive(Clone)]
pub struct Totp {
    mac: KeyedMac,
    algorithm: Algorithm,
    digits: Digits,
    period: u64,
    /// `ceil(2^64 / period)` for periods from 2 to `u32::MAX`, else 0: turns the step division
    /// into a multiplication (see [`Totp::step_at`]).
    period_reciprocal: u64,
    t0: u64,
    window: Window,
}

/// Builds a [`Totp`]; parameters are validated in [`TotpBuilder::build`].
#[derive(Debug)]
#[must_use]
pub struct TotpBuilder<'a> {
    secret: &'a Secret,
    algorithm: Algorithm,
    digits: u32,
    period: u64,
    t0: u64,
    window: Window,
}

impl TotpBuilder<'_> {
    /// The HMAC algorithm (default SHA-1).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Number of digits, 6 to 10 (default 6).
    pub fn digits(mut self, digits: u32) -> Self {
        self.digits = digits;
        self
    }

    /// Time step in seconds, at least 1 (default 30).
    pub fn period(mut self, seconds: u64) -> Self {
        self.period = seconds;
        self
    }

    /// The Unix time at which step 0 starts (default 0).
    pub fn t0(mut self, t0: u64) -> Self {
        self.t0 = t0;
        self
    }

    /// The verification window (default one step each way).
    pub fn window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    /// Validates the parameters and computes the HMAC key schedule once.
    ///
    /// # Errors
    /// [`OtpError::InvalidDigits`] or [`OtpError::ZeroPeriod`].
    pub fn build(self) -> Result<Totp, OtpError> {
        let digits = Digits::new(self.digits)?;
        if self.period == 0 {
            return Err(OtpError::ZeroPeriod);
        }
        Ok(Totp {
            mac: KeyedMac::new(self.algorithm, self.secret),
            algorithm: self.algorithm,
            digits,
            period: self.period,
            period_reciprocal: reciprocal(self.period),
            t0: self.t0,
            window: self.window,
        })
    }
}

impl Totp {
    /// The default period, 30 seconds.
    pub const DEFAULT_PERIOD: u64 = 30;
    /// The cap on [`Totp::diagnose_at`]'s range each way (one day at 30-second steps).
    pub const MAX_DIAGNOSE_STEPS: u32 = 2880;

    /// Starts building a TOTP over `secret` with the defaults: SHA-1, 6 digits, 30 s, T0 = 0,
    /// window ±1.
    pub fn builder(secret: &Secret) -> TotpBuilder<'_> {
        TotpBuilder {
            secret,
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: Self::DEFAULT_PERIOD,
            t0: 0,
            window: Window::ONE,
        }
    }

    /// The time step containing Unix time `unix`.
    ///
    /// # Errors
    /// [`OtpError::TimeBeforeT0`].
    pub const fn step_at(&self, unix: u64) -> Result<u64, OtpError> {
        match unix.checked_sub(self.t0) {
            Some(elapsed) => Ok(self.steps_in(elapsed)),
            None => Err(OtpError::TimeBeforeT0 {
                time: unix,
                t0: self.t0,
            }),
        }
    }

    /// `elapsed / period`, without a division instruction for elapsed times below 2^32 s (until
    /// 2106 from T0 = 0) and periods up to `u32::MAX` s: for `d` and `n` below 2^32 and `c = ceil(2^64 / d)`,
    /// `n / d` is the high half of `c * n` (Lemire, Kaser and Kurz, "Faster remainder by direct
    /// computation", 2019, theorem 1). A proptest checks it against the division.
    #[inline]
    const fn steps_in(&self, elapsed: u64) -> u64 {
        if self.period_reciprocal != 0 && elapsed <= u32::MAX as u64 {
            // The high half of a 128-bit product fits in 64 bits.
            #[allow(clippy::cast_possible_truncation)]
            {
                ((self.period_reciprocal as u128 * elapsed as u128) >> 64) as u64
            }
        } else if self.period == 1 {
            elapsed
        } else {
            elapsed / self.period
        }
    }

    /// The code for time step `step`.
    #[must_use]
    pub fn generate_step(&self, step: u64) -> Code {
        Code::new(self.mac.hotp(step, self.digits), self.digits)
    }

    /// The code valid at Unix time `unix`.
    ///
    /// # Errors
    /// [`OtpError::TimeBeforeT0`].
    pub fn generate_at(&self, unix: u64) -> Result<Code, OtpError> {
        Ok(self.generate_step(self.step_at(unix)?))
    }

    /// The code valid now, by `clock`.
    ///
    /// # Errors
    /// [`OtpError::TimeBeforeT0`].
    pub fn generate_now(&self, clock: &impl Clock) -> Result<Code, OtpError> {
        self.generate_at(clock.now())
    }

    /// Verifies `code` at Unix time `unix` over the configured window.
    ///
    /// What the user typed is never an error: a code of the wrong length or with a non-digit is
    /// [`TotpOutcome::Invalid`], like a wrong one ([`Digits::check`] tells a typo apart where a
    /// form wants to say so).
    ///
    /// Every step of the window is evaluated and compared in constant time with no early exit or
    /// branch on the match, so timing reveals neither whether nor where the code matched
    /// (`benches/timing.rs` measures it). This does not remember used
    /// steps: store [`TotpMatch::step`] and refuse steps not later than it (the service layer does
    /// this atomically).
    ///
    /// # Errors
    /// Only for the time: [`OtpError::TimeBeforeT0`], [`OtpError::CounterOverflow`].
    pub fn verify_at(&self, code: &str, unix: u64) -> Result<TotpOutcome, OtpError> {
        self.verify_shifted_at(code, unix, 0)
    }

    /// Verifies `code` now, by `clock`.
    ///
    /// # Errors
    /// As [`Totp::verify_at`].
    pub fn verify_now(&self, code: &str, clock: &impl Clock) -> Result<TotpOutcome, OtpError> {
        self.verify_at(code, clock.now())
    }

    /// Like [`Totp::verify_at`], with the window centred `shift` steps away from the current step
    /// (to follow an authenticator whose clock is known to drift). The shift is bounded by
    /// [`Window::MAX_STEPS`]; the reported drift stays relative to the current step.
    ///
    /// # Errors
    /// As [`Totp::verify_at`], and [`OtpError::WindowTooLarge`] when `|shift|` exceeds
    /// [`Window::MAX_STEPS`].
    pub fn verify_shifted_at(
        &self,
        code: &str,
        unix: u64,
        shift: i64,
    ) -> Result<TotpOutcome, OtpError> {
        if shift.unsigned_abs() > u64::from(Window::MAX_STEPS) {
            let s = u32::try_from(shift.unsigned_abs()).unwrap_or(u32::MAX);
            return Err(OtpError::WindowTooLarge {
                past: s,
                future: s,
                max: Window::MAX_STEPS,
            });
        }
        let current = self.step_at(unix)?;
        let Ok(given) = parse_code(code, self.digits) else {
            // The length is what the caller typed, not a secret: no need to hash the window.
            return Ok(TotpOutcome::Invalid);
        };
        let centre = current
            .checked_add_signed(shift)
            .ok_or(OtpError::CounterOverflow)?;
        let first = centre.saturating_sub(u64::from(self.window.past));
        let last = centre
            .checked_add(u64::from(self.window.future))
            .ok_or(OtpError::CounterOverflow)?;
        // The first matching step wins. Every step is hashed, compared and offset from the
        // current step alike, and the match is kept by masked selects, not branches.
        let mut found = Choice::from(0);
        let mut matched = TotpMatch { step: 0, drift: 0 };
        self.mac
            .hotp_range(first, last, self.digits, |step, value| {
                let hit = u64::from(value).ct_eq(&given) & !found;
                matched.step.conditional_assign(&step, hit);
                matched
                    .drift
                    .conditional_assign(&step_offset(step, current), hit);
                found |= hit;
            });
        Ok(super::select(
            found,
            TotpOutcome::Invalid,
            TotpOutcome::Valid(matched),
        ))
    }

    /// Finds which step offset `code` belongs to, searching outwards from the current step up to
    /// `range` steps each way, and returns the closest match.
    ///
    /// For support tools only ("your phone's clock is 90 s slow"): it is neither constant time
    /// nor rate limited and must never be used to grant access.
    ///
    /// # Errors
    /// As [`Totp::verify_at`], and [`OtpError::DiagnoseRangeTooLarge`] above
    /// [`Totp::MAX_DIAGNOSE_STEPS`].
    pub fn diagnose_at(
        &self,
        code: &str,
        unix: u64,
        range: u32,
    ) -> Result<Option<Diagnosis>, OtpError> {
        if range > Self::MAX_DIAGNOSE_STEPS {
            return Err(OtpError::DiagnoseRangeTooLarge(range));
        }
        let given = parse_code(code, self.digits)?;
        let current = self.step_at(unix)?;
        let period = i64::try_from(self.period).unwrap_or(i64::MAX);
        for distance in 0..=i64::from(range) {
            // The current step first, then the previous and next, and so on outwards.
            let offsets = [-distance, distance];
            let count = if distance == 0 { 1 } else { 2 };
            for &offset in &offsets[..count] {
                let Some(step) = current.checked_add_signed(offset) else {
                    continue;
                };
                if u64::from(self.mac.hotp(step, self.digits)) == given {
                    return Ok(Some(Diagnosis {
                        offset_steps: offset,
                        offset_seconds: offset.saturating_mul(period),
                    }));
                }
            }
        }
        Ok(None)
    }

    /// The algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The number of digits.
    #[must_use]
    pub const fn digits(&self) -> Digits {
        self.digits
    }

    /// The period in seconds.
    #[must_use]
    pub const fn period(&self) -> u64 {
        self.period
    }

    /// T0, the Unix time of step 0.
    #[must_use]
    pub const fn t0(&self) -> u64 {
        self.t0
    }

    /// The verification window.
    #[must_use]
    pub const fn window(&self) -> Window {
        self.window
    }
}

/// `ceil(2^64 / period)` where that makes [`Totp::steps_in`] exact (periods 2 to `u32::MAX`),
/// else 0.
const fn reciprocal(period: u64) -> u64 {
    if period >= 2 && period <= u32::MAX as u64 {
        // Exactly ceil(2^64 / period): (2^64 - 1) / period rounds down to floor(2^64 / period)
        // when period does not divide 2^64, and to 2^64 / period - 1 when it does.
        u64::MAX / period + 1
    } else {
        0
    }
}

/// `step - current` as i64, without a branch. Exact for steps less than 2^63 apart: a window's
/// steps are at most `2 × DANGER_MAX_STEPS + MAX_STEPS` from the current one.
#[inline]
const fn step_offset(step: u64, current: u64) -> i64 {
    // Two's complement: the wrapped difference reinterpreted is the signed difference.
    #[allow(clippy::cast_possible_wrap)]
    {
        step.wrapping_sub(current) as i64
    }
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Totp")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits.get())
            .field("period", &self.period)
            .field("t0", &self.t0)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_first_vector_and_drift() {
        let secret = Secret::from_bytes(b"12345678901234567890").unwrap();
        let totp = Totp::builder(&secret).digits(8).build().unwrap();
        assert_eq!(totp.generate_at(59).unwrap().as_str(), "94287082");
        let prev = totp.generate_at(1_111_111_109 - 30).unwrap();
        let out = totp.verify_at(prev.as_str(), 1_111_111_109).unwrap();
        assert_eq!(out.matched().map(|m| m.drift), Some(-1));
        let far = totp.generate_at(1_111_111_109 - 90).unwrap();
        assert_eq!(
            totp.verify_at(far.as_str(), 1_111_111_109).unwrap(),
            TotpOutcome::Invalid
        );
        let d = totp
            .diagnose_at(far.as_str(), 1_111_111_109, 20)
            .unwrap()
            .unwrap();
        assert_eq!((d.offset_steps, d.offset_seconds), (-3, -90));
    }
}
