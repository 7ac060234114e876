//! Writing: the builder that validates a URI's parts, and [`OtpAuthUri::to_uri`].

use core::fmt;

use zeroize::Zeroizing;

use super::{OtpAuthUri, OtpKind};
use crate::error::UriError;
use crate::otp::{Algorithm, Digits, Totp};
use crate::secret::Secret;

/// Builds an [`OtpAuthUri`]; everything is validated in [`OtpAuthUriBuilder::build`].
#[must_use]
pub struct OtpAuthUriBuilder {
    kind: OtpKind,
    issuer: Option<String>,
    account: String,
    secret: Secret,
    algorithm: Algorithm,
    digits: u32,
}

impl fmt::Debug for OtpAuthUriBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpAuthUriBuilder")
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("account", &self.account)
            .field("secret", &"[REDACTED]")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .finish()
    }
}

impl OtpAuthUriBuilder {
    /// The service name shown in the app (recommended: without it, apps show only the account).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The HMAC algorithm (default SHA-1; not every app honours the others).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Number of digits, 6 to 10 (default 6; many apps support only 6 and 8).
    pub fn digits(mut self, digits: u32) -> Self {
        self.digits = digits;
        self
    }

    /// TOTP period in seconds (default 30). Ignored for HOTP.
    pub fn period(mut self, seconds: u64) -> Self {
        if let OtpKind::Totp { period } = &mut self.kind {
            *period = seconds;
        }
        self
    }

    /// Validates everything.
    ///
    /// # Errors
    /// [`UriError::EmptyAccount`], [`UriError::EmptyIssuer`],
    /// [`UriError::AccountLeadingWhitespace`], [`UriError::AmbiguousAccount`],
    /// [`UriError::IssuerTooLong`], [`UriError::AccountTooLong`] or [`UriError::OutOfRange`] (digits
    /// or period).
    pub fn build(self) -> Result<OtpAuthUri, UriError> {
        let digits = check_digits(u64::from(self.digits))?;
        if let OtpKind::Totp { period } = self.kind {
            check_period(period)?;
        }
        check_names(self.issuer.as_deref(), &self.account)?;
        Ok(OtpAuthUri {
            kind: self.kind,
            issuer: self.issuer,
            account: self.account,
            secret: self.secret,
            algorithm: self.algorithm,
            digits,
        })
    }
}

pub(super) fn check_digits(value: u64) -> Result<Digits, UriError> {
    let out_of_range = UriError::OutOfRange {
        name: "digits",
        min: 6,
        max: 10,
    };
    let value = u32::try_from(value).map_err(|_| out_of_range.clone())?;
    Digits::new(value).map_err(|_| out_of_range)
}

pub(super) fn check_period(value: u64) -> Result<u64, UriError> {
    if (1..=OtpAuthUri::MAX_PERIOD).contains(&value) {
        Ok(value)
    } else {
        Err(UriError::OutOfRange {
            name: "period",
            min: 1,
            max: OtpAuthUri::MAX_PERIOD,
        })
    }
}

pub(super) fn check_names(issuer: Option<&str>, account: &str) -> Result<(), UriError> {
    if let Some(issuer) = issuer {
        if issuer.is_empty() {
            return Err(UriError::EmptyIssuer);
        }
        if issuer.len() > OtpAuthUri::MAX_ISSUER_LEN {
            return Err(UriError::IssuerTooLong {
                max: OtpAuthUri::MAX_ISSUER_LEN,
            });
        }
    }
    if account.is_empty() {
        return Err(UriError::EmptyAccount);
    }
    if account.len() > OtpAuthUri::MAX_ACCOUNT_LEN {
        return Err(UriError::AccountTooLong {
            max: OtpAuthUri::MAX_ACCOUNT_LEN,
        });
    }
    if account.starts_with(char::is_whitespace) {
        return Err(UriError::AccountLeadingWhitespace);
    }
    if issuer.is_none() && account.contains(':') {
        return Err(UriError::AmbiguousAccount);
    }
    Ok(())
}

impl OtpAuthUri {
    /// Starts a TOTP URI with the defaults: SHA-1, 6 digits, 30-second period, no issuer.
    pub fn totp_builder(secret: Secret, account: impl Into<String>) -> OtpAuthUriBuilder {
        OtpAuthUriBuilder {
            kind: OtpKind::Totp {
                period: Totp::DEFAULT_PERIOD,
            },
            issuer: None,
            account: account.into(),
            secret,
            algorithm: Algorithm::Sha1,
            digits: 6,
        }
    }

    /// Starts an HOTP URI whose app will use `counter` next; SHA-1, 6 digits, no issuer.
    pub fn hotp_builder(
        secret: Secret,
        account: impl Into<String>,
        counter: u64,
    ) -> OtpAuthUriBuilder {
        OtpAuthUriBuilder {
            kind: OtpKind::Hotp { counter },
            issuer: None,
            account: account.into(),
            secret,
            algorithm: Algorithm::Sha1,
            digits: 6,
        }
    }

    /// Writes the URI. It contains the secret: the string is zeroized on drop; never log it.
    #[must_use]
    pub fn to_uri(&self) -> Zeroizing<String> {
        let secret = self.secret.to_base32();
        let mut out = Zeroizing::new(String::with_capacity(64 + secret.len() + 2 * 128 + 256));
        out.push_str("otpauth://");
        out.push_str(self.kind.as_str());
        out.push('/');
        if let Some(issuer) = &self.issuer {
            encode_into(issuer, &mut out);
            out.push(':');
        }
        encode_into(&self.account, &mut out);
        out.push_str("?secret=");
        out.push_str(&secret);
        if let Some(issuer) = &self.issuer {
            out.push_str("&issuer=");
            encode_into(issuer, &mut out);
        }
        out.push_str("&algorithm=");
        out.push_str(self.algorithm.as_str());
        out.push_str("&digits=");
        push_number(u64::from(self.digits.get()), &mut out);
        match self.kind {
            OtpKind::Totp { period } => {
                out.push_str("&period=");
                push_number(period, &mut out);
            }
            OtpKind::Hotp { counter } => {
                out.push_str("&counter=");
                push_number(counter, &mut out);
            }
        }
        out
    }
}

/// Bytes written as themselves: RFC 3986 unreserved characters, plus `@` (legal in a path segment
/// and a query, and what e-mail addresses look like in every app's URIs).
const fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@')
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encodes `text` (as UTF-8) onto `out`.
pub(super) fn encode_into(text: &str, out: &mut String) {
    for &b in text.as_bytes() {
        if is_plain(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

fn push_number(n: u64, out: &mut String) {
    use core::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, "{n}");
}
