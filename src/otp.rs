//! HOTP (RFC 4226) and TOTP (RFC 6238): pure, synchronous and allocation-free.
//!
//! Building an [`Hotp`] or [`Totp`] from a [`Secret`](crate::Secret) computes the HMAC key
//! schedule (the inner and outer padded states) once. Every code after that costs two hash
//! compressions, and a verification over a ±1 window costs six, with no heap allocation.

mod code;
mod hotp;
mod mac;
mod totp;

pub use code::Code;
pub use hotp::{Hotp, HotpOutcome};
pub use totp::{Diagnosis, Totp, TotpBuilder, TotpMatch, TotpOutcome, Window};

use subtle::Choice;

use crate::error::OtpError;

/// The HMAC hash function behind the codes.
///
/// With the `serde` feature it is written as in otpauth URIs: `"SHA1"`, `"SHA256"`, `"SHA512"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA-1: what RFC 4226 specifies and what every authenticator app supports.
    #[default]
    #[cfg_attr(feature = "serde", serde(rename = "SHA1"))]
    Sha1,
    /// HMAC-SHA-256 (RFC 6238). Not every authenticator app honours it.
    #[cfg_attr(feature = "serde", serde(rename = "SHA256"))]
    Sha256,
    /// HMAC-SHA-512 (RFC 6238). Not every authenticator app honours it.
    #[cfg_attr(feature = "serde", serde(rename = "SHA512"))]
    Sha512,
}

impl Algorithm {
    /// The name used in otpauth:// URIs and by oathtool: `SHA1`, `SHA256` or `SHA512`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Parses `SHA1`/`SHA256`/`SHA512` in any case, also with a hyphen (`sha-256`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        let mut buf = [0u8; 7];
        let mut len = 0;
        for b in name.bytes().filter(|b| *b != b'-') {
            if len == buf.len() {
                return None;
            }
            buf[len] = b.to_ascii_uppercase();
            len += 1;
        }
        match &buf[..len] {
            b"SHA1" => Some(Self::Sha1),
            b"SHA256" => Some(Self::Sha256),
            b"SHA512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The hash output length in bytes, which is also the recommended secret length.
    #[must_use]
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

impl core::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for Algorithm {
    type Err = OtpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(OtpError::UnknownAlgorithm)
    }
}

/// The number of digits in a code, 6 to 10.
///
/// With the `serde` feature it is a number, checked on the way in like [`Digits::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "u32", into = "u32")
)]
pub struct Digits(u8);

impl TryFrom<u32> for Digits {
    type Error = OtpError;
    fn try_from(digits: u32) -> Result<Self, OtpError> {
        Self::new(digits)
    }
}

impl From<Digits> for u32 {
    fn from(digits: Digits) -> u32 {
        digits.get()
    }
}

impl Digits {
    /// Whether `code` has the shape of a code of this length: exactly this many ASCII digits.
    /// Verification treats any other input as an ordinary wrong code; use this where a typo
    /// deserves its own message (a form, a command line).
    ///
    /// # Errors
    /// [`OtpError::CodeLength`] or [`OtpError::CodeNotDigits`].
    pub fn check(self, code: &str) -> Result<(), OtpError> {
        parse_code(code, self).map(|_| ())
    }

    /// Six digits: the default of every authenticator app.
    pub const SIX: Self = Self(6);
    /// Eight digits.
    pub const EIGHT: Self = Self(8);

    /// # Errors
    /// [`OtpError::InvalidDigits`] outside 6..=10.
    pub const fn new(digits: u32) -> Result<Self, OtpError> {
        if digits >= 6 && digits <= 10 {
            // Checked just above: fits in u8.
            #[allow(clippy::cast_possible_truncation)]
            Ok(Self(digits as u8))
        } else {
            Err(OtpError::InvalidDigits(digits))
        }
    }

    /// The count as a number.
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0 as u32
    }

    /// A truncated HMAC value (31 bits) modulo 10^digits. Each length divides by a constant,
    /// which the compiler turns into a multiply and shift; 10^10 exceeds every 31-bit value.
    /// The match is on the configured length, never on the value.
    #[inline]
    pub(crate) const fn reduce(self, bin: u32) -> u32 {
        match self.0 {
            6 => bin % 1_000_000,
            7 => bin % 10_000_000,
            8 => bin % 100_000_000,
            9 => bin % 1_000_000_000,
            _ => bin,
        }
    }
}

impl Default for Digits {
    fn default() -> Self {
        Self::SIX
    }
}

/// `if_found` when `found`, else `otherwise`. Both outcomes are fully built before the choice, so
/// it compiles to a flag set (`sete`) on the tag, not a jump; `benches/timing.rs` checks that the
/// outcome costs the same whether the code matched. (A two-entry table indexed by `found` does
/// not: its load address depends on the match, and that measured.)
#[inline]
fn select<T: Copy>(found: Choice, otherwise: T, if_found: T) -> T {
    if bool::from(found) {
        if_found
    } else {
        otherwise
    }
}

/// Checks that `code` is exactly `digits` ASCII digits and returns its value.
pub(crate) fn parse_code(code: &str, digits: Digits) -> Result<u64, OtpError> {
    let bytes = code.as_bytes();
    if bytes.len() != digits.0 as usize {
        return Err(OtpError::CodeLength {
            expected: digits.get(),
            actual: code.chars().count(),
        });
    }
    let mut value: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return Err(OtpError::CodeNotDigits);
        }
        value = value * 10 + u64::from(b - b'0');
    }
    Ok(value)
}
