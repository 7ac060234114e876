//! otpauth:// URIs (the Key URI Format of Google Authenticator): build them for enrolment QR codes,
//! parse them to import existing credentials.
//!
//! # What is written
//!
//! ```text
//! otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
//! otpauth://hotp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&counter=0
//! ```
//!
//! - Every byte outside RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`) and `@` is
//!   percent-encoded as UTF-8: a space is `%20`, never `+`.
//! - The issuer is written twice, as the label prefix and as the `issuer` parameter, as the format
//!   recommends; old apps read the first, new ones the second.
//! - **Colons.** The separator between issuer and account is a literal `:`. A `:` *inside* the
//!   issuer or the account is percent-encoded as `%3A`, so the separator stays unambiguous: issuer
//!   `Star Trek: Website` and account `kirk` give the label `Star%20Trek%3A%20Website:kirk`. Without
//!   an issuer, an account containing `:` is refused ([`UriError::AmbiguousAccount`]): apps would
//!   show the part before the colon as the issuer.
//! - Limits: issuer [`OtpAuthUri::MAX_ISSUER_LEN`] bytes, account [`OtpAuthUri::MAX_ACCOUNT_LEN`]
//!   bytes, whole URI [`OtpAuthUri::MAX_LEN`] bytes (parsing refuses longer input up front).
//!
//! # What is read
//!
//! Scheme and type in any case; `/` inside the label; a literal or a `%3A` colon between issuer and
//! account (a literal colon wins when there is one; spaces after it are dropped); an issuer only in
//! the label or only as a parameter (both must agree when both are given); parameters in any order
//! with names in any case; algorithm names in any case; unknown parameters (`image=`, `color=`)
//! ignored; secrets in any case, with or without padding. A `+` is a literal plus (RFC 3986), not a
//! space. Parsing is linear in the input and never panics.
//!
//! A URI contains the secret: never log it. [`OtpAuthUri`]'s `Debug` redacts the secret and
//! [`OtpAuthUri::to_uri`] returns a string that is zeroized on drop.

use core::fmt;

use crate::error::{Error, UriError};
use crate::otp::{Algorithm, Digits, Hotp, Totp};
use crate::secret::Secret;

mod build;
mod parse;

pub use build::OtpAuthUriBuilder;

/// TOTP (with its period) or HOTP (with its counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "type", rename_all = "lowercase"))]
pub enum OtpKind {
    /// Time-based (RFC 6238).
    Totp {
        /// Time step in seconds, 1 to [`OtpAuthUri::MAX_PERIOD`].
        period: u64,
    },
    /// Counter-based (RFC 4226).
    Hotp {
        /// The next counter value the app will use.
        counter: u64,
    },
}

impl OtpKind {
    /// `"totp"` or `"hotp"`, as written in the URI.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Totp { .. } => "totp",
            Self::Hotp { .. } => "hotp",
        }
    }
}

/// A validated otpauth:// URI: kind, optional issuer, account, secret, algorithm and digits.
///
/// Every value of this type can be written with [`OtpAuthUri::to_uri`] and read back by
/// [`OtpAuthUri::parse`] to an equal value.
///
/// ```
/// use twofactor::{Algorithm, OtpAuthUri, Secret};
///
/// let secret = Secret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")?;
/// let uri = OtpAuthUri::totp_builder(secret, "alice@example.com")
///     .issuer("Star Trek: Website")
///     .build()?;
/// assert_eq!(
///     uri.to_uri().as_str(),
///     "otpauth://totp/Star%20Trek%3A%20Website:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
///      &issuer=Star%20Trek%3A%20Website&algorithm=SHA1&digits=6&period=30"
/// );
/// let parsed = OtpAuthUri::parse(&uri.to_uri())?;
/// assert_eq!(parsed, uri);
/// assert_eq!(parsed.issuer(), Some("Star Trek: Website"));
/// # Ok::<(), twofactor::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OtpAuthUri {
    kind: OtpKind,
    issuer: Option<String>,
    account: String,
    secret: Secret,
    algorithm: Algorithm,
    digits: Digits,
}

impl OtpAuthUri {
    /// Longest URI accepted by [`OtpAuthUri::parse`] (4 KiB), checked before any other work. Every
    /// URI that [`OtpAuthUri::to_uri`] writes is shorter (the component limits guarantee it).
    pub const MAX_LEN: usize = 4096;
    /// Longest issuer, in bytes of UTF-8.
    pub const MAX_ISSUER_LEN: usize = 128;
    /// Longest account name, in bytes of UTF-8.
    pub const MAX_ACCOUNT_LEN: usize = 256;
    /// Longest TOTP period accepted: one day.
    pub const MAX_PERIOD: u64 = 86_400;

    /// A [`Totp`] with this URI's secret, algorithm, digits and period (T0 = 0, default window).
    ///
    /// # Errors
    /// [`UriError::WrongType`] for an HOTP URI.
    pub fn totp(&self) -> Result<Totp, Error> {
        match self.kind {
            OtpKind::Totp { period } => Ok(Totp::builder(&self.secret)
                .algorithm(self.algorithm)
                .digits(self.digits.get())
                .period(period)
                .build()?),
            OtpKind::Hotp { .. } => Err(UriError::WrongType {
                expected: "totp",
                actual: "hotp",
            }
            .into()),
        }
    }

    /// An [`Hotp`] with this URI's secret, algorithm and digits; the counter is
    /// [`OtpAuthUri::counter`].
    ///
    /// # Errors
    /// [`UriError::WrongType`] for a TOTP URI.
    pub fn hotp(&self) -> Result<Hotp, Error> {
        match self.kind {
            OtpKind::Hotp { .. } => Ok(Hotp::new(&self.secret, self.algorithm, self.digits.get())?),
            OtpKind::Totp { .. } => Err(UriError::WrongType {
                expected: "hotp",
                actual: "totp",
            }
            .into()),
        }
    }

    /// TOTP with its period, or HOTP with its counter.
    #[must_use]
    pub const fn kind(&self) -> OtpKind {
        self.kind
    }

    /// The issuer, if any.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The account name.
    #[must_use]
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The secret. Never log it.
    #[must_use]
    pub const fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The HMAC algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The number of digits.
    #[must_use]
    pub const fn digits(&self) -> Digits {
        self.digits
    }

    /// The TOTP period in seconds, `None` for HOTP.
    #[must_use]
    pub const fn period(&self) -> Option<u64> {
        match self.kind {
            OtpKind::Totp { period } => Some(period),
            OtpKind::Hotp { .. } => None,
        }
    }

    /// The HOTP counter, `None` for TOTP.
    #[must_use]
    pub const fn counter(&self) -> Option<u64> {
        match self.kind {
            OtpKind::Hotp { counter } => Some(counter),
            OtpKind::Totp { .. } => None,
        }
    }
}

impl OtpAuthUri {
    /// Everything in the URI except the secret: what may be shown, logged, or serialised (feature
    /// `serde`). `OtpAuthUri` itself has no `Serialize`, so a secret cannot leave by mistake.
    #[must_use]
    pub fn parts(&self) -> UriParts {
        UriParts {
            kind: self.kind,
            issuer: self.issuer.clone(),
            account: self.account.clone(),
            algorithm: self.algorithm,
            digits: self.digits.get(),
        }
    }
}

/// The non-secret parts of an [`OtpAuthUri`] ([`OtpAuthUri::parts`]).
///
/// With the `serde` feature: `{"kind": {"type": "totp", "period": 30}, "issuer": "Example",
/// "account": "alice@example.com", "algorithm": "SHA1", "digits": 6}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct UriParts {
    /// TOTP with its period, or HOTP with its counter.
    pub kind: OtpKind,
    /// The issuer, if any.
    pub issuer: Option<String>,
    /// The account name.
    pub account: String,
    /// The HMAC algorithm.
    pub algorithm: Algorithm,
    /// Digits per code.
    pub digits: u32,
}

impl fmt::Debug for OtpAuthUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpAuthUri")
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("account", &self.account)
            .field("secret", &"[REDACTED]")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits.get())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::build::encode_into;
    use super::parse::{decode_text, parse_number};
    use super::*;

    #[test]
    fn encode_table() {
        let cases = [
            ("abc", "abc"),
            ("a b", "a%20b"),
            ("a+b", "a%2Bb"),
            ("a:b/c?d&e=f%g#h", "a%3Ab%2Fc%3Fd%26e%3Df%25g%23h"),
            ("alice@example.com", "alice@example.com"),
            ("é", "%C3%A9"),
            ("-._~", "-._~"),
        ];
        for (text, want) in cases {
            let mut out = String::new();
            encode_into(text, &mut out);
            assert_eq!(out, want, "{text:?}");
            assert_eq!(decode_text(&out, 0, "label").unwrap(), text);
        }
    }

    #[test]
    fn decode_errors() {
        for (raw, pos) in [("%", 0), ("a%2", 1), ("%zz", 0), ("ab%g1", 2)] {
            assert_eq!(
                decode_text(raw, 10, "label"),
                Err(UriError::InvalidPercentEncoding { position: 10 + pos })
            );
        }
        assert_eq!(
            decode_text("%FF", 0, "label"),
            Err(UriError::InvalidUtf8 { part: "label" })
        );
        // Lower-case hex and a literal plus.
        assert_eq!(decode_text("%c3%a9+", 0, "label").unwrap(), "é+");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("30", 0, "period", (1, 60)), Ok(30));
        assert_eq!(
            parse_number("", 0, "period", (1, 60)),
            Err(UriError::NotANumber { name: "period" })
        );
        assert_eq!(
            parse_number("-1", 0, "period", (1, 60)),
            Err(UriError::NotANumber { name: "period" })
        );
        assert_eq!(
            parse_number("99999999999999999999999", 0, "counter", (0, u64::MAX)),
            Err(UriError::OutOfRange {
                name: "counter",
                min: 0,
                max: u64::MAX
            })
        );
        assert_eq!(
            parse_number("18446744073709551615", 0, "counter", (0, u64::MAX)),
            Ok(u64::MAX)
        );
    }
}
