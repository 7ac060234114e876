//! Reading: [`OtpAuthUri::parse`], linear in the input, never panicking.

use core::str::FromStr;

use zeroize::Zeroizing;

use super::build::{check_digits, check_names, check_period};
use super::{OtpAuthUri, OtpKind};
use crate::error::{Base32Error, SecretError, UriError};
use crate::otp::{Algorithm, Totp};
use crate::secret::{Secret, decode_base32};

impl OtpAuthUri {
    /// Parses an otpauth:// URI (see the [module docs](crate::uri) for what is accepted).
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
}

impl FromStr for OtpAuthUri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
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
pub(super) fn decode_text(
    raw: &str,
    offset: usize,
    part: &'static str,
) -> Result<String, UriError> {
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
pub(super) fn parse_number(
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
