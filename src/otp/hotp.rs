//! HOTP: RFC 4226.

use core::fmt;

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::mac::KeyedMac;
use super::{Algorithm, Code, Digits, parse_code};
use crate::Secret;
use crate::error::OtpError;

/// An HMAC-based one-time password generator and verifier (RFC 4226), keyed once.
#[derive(Clone)]
pub struct Hotp {
    mac: KeyedMac,
    algorithm: Algorithm,
    digits: Digits,
}

/// The result of [`Hotp::verify`]. A wrong code is an ordinary outcome, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "outcome", rename_all = "snake_case"))]
#[must_use]
pub enum HotpOutcome {
    /// The code matched this counter. Store `counter + 1` as the next expected counter
    /// (this resynchronises a token whose counter ran ahead, RFC 4226 section 7.4).
    Valid {
        /// The counter value that produced the code.
        counter: u64,
    },
    /// No counter in the look-ahead window produced the code.
    Invalid,
}

impl HotpOutcome {
    /// `true` for [`HotpOutcome::Valid`].
    #[must_use]
    pub const fn is_valid(&self) -> bool {
        matches!(self, Self::Valid { .. })
    }
}

impl Hotp {
    /// The largest look-ahead [`Hotp::verify`] accepts. RFC 4226 section 7.4 asks for a small
    /// resynchronisation window: every extra counter is another chance for a guess to match.
    pub const MAX_LOOK_AHEAD: u32 = 100;

    /// Keys an HOTP generator.
    ///
    /// # Errors
    /// [`OtpError::InvalidDigits`] unless `digits` is 6 to 10.
    pub fn new(secret: &Secret, algorithm: Algorithm, digits: u32) -> Result<Self, OtpError> {
        Ok(Self {
            mac: KeyedMac::new(algorithm, secret),
            algorithm,
            digits: Digits::new(digits)?,
        })
    }

    /// The code for `counter`.
    #[must_use]
    pub fn generate(&self, counter: u64) -> Code {
        Code::new(self.mac.hotp(counter, self.digits), self.digits)
    }

    /// Checks `code` against counters `counter ..= counter + look_ahead`.
    ///
    /// Every counter in the window is evaluated and compared in constant time, with no early exit,
    /// so timing does not reveal which counter matched.
    ///
    /// A malformed code (wrong length, a non-digit) is [`HotpOutcome::Invalid`], like a wrong one.
    ///
    /// # Errors
    /// [`OtpError::LookAheadTooLarge`] above [`Hotp::MAX_LOOK_AHEAD`], and
    /// [`OtpError::CounterOverflow`] when the window passes `u64::MAX`.
    pub fn verify(
        &self,
        code: &str,
        counter: u64,
        look_ahead: u32,
    ) -> Result<HotpOutcome, OtpError> {
        if look_ahead > Self::MAX_LOOK_AHEAD {
            return Err(OtpError::LookAheadTooLarge(look_ahead));
        }
        let last = counter
            .checked_add(u64::from(look_ahead))
            .ok_or(OtpError::CounterOverflow)?;
        let Ok(given) = parse_code(code, self.digits) else {
            return Ok(HotpOutcome::Invalid);
        };
        let mut found = Choice::from(0);
        let mut matched = 0u64;
        self.mac.hotp_range(counter, last, self.digits, |c, value| {
            let hit = u64::from(value).ct_eq(&given) & !found;
            matched.conditional_assign(&c, hit);
            found |= hit;
        });
        Ok(super::select(
            found,
            HotpOutcome::Invalid,
            HotpOutcome::Valid { counter: matched },
        ))
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
}

impl fmt::Debug for Hotp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hotp")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits.get())
            .finish_non_exhaustive()
    }
}
