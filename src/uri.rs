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
use core::str::FromStr;

use zeroize::Zeroizing;

use crate::error::{Base32Error, Error, SecretError, UriError};
use crate::otp::{Algorithm, Digits, Hotp, Totp};
use crate::secret::{Secret, decode_base32};

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

fn check_digits(value: u64) -> Result<Digits, UriError> {
    let out_of_range = UriError::OutOfRange {
        name: "digits",
        min: 6,
        max: 10,
    };
    let value = u32::try_from(value).map_err(|_| out_of_range.clone())?;
    Digits::new(value).map_err(|_| out_of_range)
}

fn check_period(value: u64) -> Result<u64, UriError> {
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

fn check_names(issuer: Option<&str>, account: &str) -> Result<(), UriError> {
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
    /// Longest URI accepted by [`OtpAuthUri::parse`] (4 KiB), checked before any other work. Every
    /// URI that [`OtpAuthUri::to_uri`] writes is shorter (the component limits guarantee it).
    pub const MAX_LEN: usize = 4096;
    /// Longest issuer, in bytes of UTF-8.
    pub const MAX_ISSUER_LEN: usize = 128;
    /// Longest account name, in bytes of UTF-8.
    pub const MAX_ACCOUNT_LEN: usize = 256;
    /// Longest TOTP period accepted: one day.
    pub const MAX_PERIOD: u64 = 86_400;

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

    /// Parses an otpauth:// URI (see the [module docs](self) for what is accepted).
    ///
    /// The secret must decode to at least [`Secret::MIN_LEN`] bytes; see
    /// [`danger::parse_uri_allowing_short_secret`](crate::danger::parse_uri_allowing_short_secret)
    /// for legacy 80-bit secrets.
    ///
    /// # Errors
    /// A [`UriError`] variant naming exactly what is wrong; never the secret itself.
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        parse(uri, false)
    }

    /// Behind [`crate::danger::parse_uri_allowing_short_secret`].
    pub(crate) fn parse_with_short_secret(uri: &str) -> Result<Self, UriError> {
        parse(uri, true)
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

impl FromStr for OtpAuthUri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Bytes written as themselves: RFC 3986 unreserved characters, plus `@` (legal in a path segment
/// and a query, and what e-mail addresses look like in every app's URIs).
const fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@')
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encodes `text` (as UTF-8) onto `out`.
fn encode_into(text: &str, out: &mut String) {
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

const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `raw` (which starts at byte `offset` of the URI) into bytes.
fn decode_bytes(raw: &str, offset: usize, out: &mut Vec<u8>) -> Result<(), UriError> {
    let bytes = raw.as_bytes();
    out.reserve(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(UriError::InvalidPercentEncoding {
                    position: offset + i,
                });
            };
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(())
}

/// Percent-decodes `raw` into a UTF-8 string.
fn decode_text(raw: &str, offset: usize, part: &'static str) -> Result<String, UriError> {
    let mut bytes = Vec::new();
    decode_bytes(raw, offset, &mut bytes)?;
    String::from_utf8(bytes).map_err(|_| UriError::InvalidUtf8 { part })
}

/// The parameters this parser understands.
#[derive(Clone, Copy)]
enum Param {
    Secret,
    Issuer,
    Algorithm,
    Digits,
    Period,
    Counter,
}

impl Param {
    fn from_name(name: &[u8]) -> Option<Self> {
        const NAMES: [(&[u8], Param); 6] = [
            (b"secret", Param::Secret),
            (b"issuer", Param::Issuer),
            (b"algorithm", Param::Algorithm),
            (b"digits", Param::Digits),
            (b"period", Param::Period),
            (b"counter", Param::Counter),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, p)| *p)
    }

    const fn name(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Issuer => "issuer",
            Self::Algorithm => "algorithm",
            Self::Digits => "digits",
            Self::Period => "period",
            Self::Counter => "counter",
        }
    }
}

/// Parses a plain decimal number (ASCII digits only, no sign).
fn parse_number(
    raw: &str,
    offset: usize,
    name: &'static str,
    (min, max): (u64, u64),
) -> Result<u64, UriError> {
    let mut bytes = Vec::new();
    decode_bytes(raw, offset, &mut bytes)?;
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(UriError::NotANumber { name });
    }
    let mut value: u64 = 0;
    for &b in &bytes {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(UriError::OutOfRange { name, min, max })?;
    }
    Ok(value)
}

fn set_once<T>(slot: &mut Option<T>, value: T, param: Param) -> Result<(), UriError> {
    if slot.is_some() {
        return Err(UriError::DuplicateParameter { name: param.name() });
    }
    *slot = Some(value);
    Ok(())
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

#[allow(clippy::too_many_lines)]
fn parse(uri: &str, allow_short_secret: bool) -> Result<OtpAuthUri, UriError> {
    if uri.len() > OtpAuthUri::MAX_LEN {
        return Err(UriError::TooLong {
            len: uri.len(),
            max: OtpAuthUri::MAX_LEN,
        });
    }
    // A fragment is not part of the credential.
    let uri = uri.split_once('#').map_or(uri, |(before, _)| before);
    let rest = strip_prefix_ignore_case(uri, "otpauth://").ok_or(UriError::InvalidScheme)?;
    let (kind_raw, rest) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let is_totp = if kind_raw.eq_ignore_ascii_case("totp") {
        true
    } else if kind_raw.eq_ignore_ascii_case("hotp") {
        false
    } else {
        return Err(UriError::UnknownType);
    };
    let Some(rest) = rest.strip_prefix('/') else {
        return Err(UriError::MissingLabel);
    };
    let label_offset = uri.len() - rest.len();
    let (label_raw, query) = match rest.split_once('?') {
        Some((label, query)) => (label, query),
        None => (rest, ""),
    };
    let query_offset = label_offset + label_raw.len() + 1;

    // Label: a literal colon separates issuer and account when present; otherwise an encoded one.
    let (label_issuer, account) = if let Some((issuer, account)) = label_raw.split_once(':') {
        let account_offset = label_offset + issuer.len() + 1;
        let issuer = decode_text(issuer, label_offset, "label")?;
        let account = decode_text(account, account_offset, "label")?;
        (Some(issuer), account)
    } else {
        let label = decode_text(label_raw, label_offset, "label")?;
        match label.split_once(':') {
            Some((issuer, account)) => (Some(issuer.to_owned()), account.to_owned()),
            None => (None, label),
        }
    };
    // The format allows spaces before the account name.
    let account = account.trim_start_matches(' ').to_owned();
    if account.is_empty() {
        if label_raw.is_empty() {
            return Err(UriError::MissingLabel);
        }
        return Err(UriError::EmptyAccount);
    }
    if label_issuer.as_deref() == Some("") {
        return Err(UriError::EmptyIssuer);
    }

    let mut secret: Option<&str> = None;
    let mut secret_offset = 0;
    let mut issuer_param: Option<String> = None;
    let mut algorithm: Option<Algorithm> = None;
    let mut digits: Option<u64> = None;
    let mut period: Option<u64> = None;
    let mut counter: Option<u64> = None;
    let mut offset = query_offset;
    for pair in query.split('&') {
        let pair_offset = offset;
        offset += pair.len() + 1;
        if pair.is_empty() {
            continue;
        }
        let (name_raw, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value_offset = pair_offset + name_raw.len() + 1;
        let mut name = Vec::new();
        decode_bytes(name_raw, pair_offset, &mut name)?;
        let Some(param) = Param::from_name(&name) else {
            // Unknown parameters (image=, color=, ...) are ignored, but must still be well formed.
            decode_bytes(value, value_offset, &mut Vec::new())?;
            continue;
        };
        match param {
            Param::Secret => {
                set_once(&mut secret, value, param)?;
                secret_offset = value_offset;
            }
            Param::Issuer => {
                let issuer = decode_text(value, value_offset, "issuer")?;
                set_once(&mut issuer_param, issuer, param)?;
            }
            Param::Algorithm => {
                let mut name = Vec::new();
                decode_bytes(value, value_offset, &mut name)?;
                let alg = core::str::from_utf8(&name)
                    .ok()
                    .and_then(Algorithm::from_name)
                    .ok_or(UriError::UnknownAlgorithm)?;
                set_once(&mut algorithm, alg, param)?;
            }
            Param::Digits => {
                let n = parse_number(value, value_offset, "digits", (6, 10))?;
                set_once(&mut digits, n, param)?;
            }
            Param::Period => {
                let n = parse_number(value, value_offset, "period", (1, OtpAuthUri::MAX_PERIOD))?;
                set_once(&mut period, n, param)?;
            }
            Param::Counter => {
                let n = parse_number(value, value_offset, "counter", (0, u64::MAX))?;
                set_once(&mut counter, n, param)?;
            }
        }
    }

    // An empty issuer= is what some generators write for "no issuer".
    let issuer_param = issuer_param.filter(|i| !i.is_empty());
    let issuer = match (label_issuer, issuer_param) {
        (Some(label), Some(param)) if label != param => return Err(UriError::IssuerMismatch),
        (label, param) => param.or(label),
    };

    let secret = decode_secret(
        secret.ok_or(UriError::MissingSecret)?,
        secret_offset,
        allow_short_secret,
    )?;
    let digits = check_digits(digits.unwrap_or(6))?;
    let kind = if is_totp {
        OtpKind::Totp {
            period: check_period(period.unwrap_or(Totp::DEFAULT_PERIOD))?,
        }
    } else {
        OtpKind::Hotp {
            counter: counter.ok_or(UriError::MissingCounter)?,
        }
    };
    check_names(issuer.as_deref(), &account)?;
    Ok(OtpAuthUri {
        kind,
        issuer,
        account,
        secret,
        algorithm: algorithm.unwrap_or_default(),
        digits,
    })
}

fn decode_secret(raw: &str, offset: usize, allow_short: bool) -> Result<Secret, UriError> {
    let mut bytes = Zeroizing::new(Vec::new());
    decode_bytes(raw, offset, &mut bytes)?;
    let text =
        core::str::from_utf8(&bytes).map_err(|_| UriError::InvalidUtf8 { part: "secret" })?;
    let decoded = decode_base32(text).map_err(|e| match e {
        Base32Error::Empty => UriError::EmptySecret,
        other => UriError::InvalidSecret(other),
    })?;
    let secret = if allow_short {
        Secret::from_bytes_unchecked_len(&decoded)
    } else {
        Secret::from_bytes(&decoded)
    };
    secret.map_err(|e| match e {
        SecretError::Empty => UriError::EmptySecret,
        other => UriError::Secret(other),
    })
}

#[cfg(test)]
mod tests {
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
