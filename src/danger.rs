//! Escape hatches that weaken a default. Each one names its risk; use them only for legacy data
//! or interoperability you cannot change, and say why in a comment where you call them.

use crate::error::{Error, OtpError, SecretError, UriError};
use crate::otp::Window;
use crate::secret::{Secret, decode_base32};
use crate::uri::OtpAuthUri;

/// Accepts a secret shorter than [`Secret::MIN_LEN`] (16 bytes), such as the 10-byte secrets
/// older services issued.
///
/// Risk: RFC 4226 R6 requires 128 bits; an 80-bit secret is within reach of an attacker who
/// observes several codes and can afford a large offline search. Re-enrol such users with a
/// fresh secret when you can.
///
/// # Errors
/// [`SecretError::Empty`] or [`SecretError::TooLong`].
pub fn short_secret(bytes: &[u8]) -> Result<Secret, SecretError> {
    Secret::from_bytes_unchecked_len(bytes)
}

/// [`Secret::from_base32`] for a secret shorter than [`Secret::MIN_LEN`], such as the classic
/// 80-bit `JBSWY3DPEHPK3PXP`. Same risk as [`short_secret`].
///
/// # Errors
/// A base32 error naming the character and its position, [`SecretError::Empty`] or
/// [`SecretError::TooLong`].
pub fn short_secret_from_base32(encoded: &str) -> Result<Secret, Error> {
    let bytes = decode_base32(encoded)?;
    Ok(short_secret(&bytes)?)
}

/// [`OtpAuthUri::parse`] for a URI whose secret is shorter than [`Secret::MIN_LEN`] (the 80-bit
/// secrets of older generators). Same risk as [`short_secret`]: use it to import existing
/// credentials, and re-enrol those users with a fresh secret when you can.
///
/// # Errors
/// As [`OtpAuthUri::parse`], except for a secret that is too short.
pub fn parse_uri_allowing_short_secret(uri: &str) -> Result<OtpAuthUri, UriError> {
    OtpAuthUri::parse_with_short_secret(uri)
}

/// A verification window wider than [`Window::MAX_STEPS`], up to [`Window::DANGER_MAX_STEPS`]
/// each way.
///
/// Risk: every extra step is one more valid code per guess; a ±5 window accepts codes up to 2.5
/// minutes old and multiplies an attacker's odds by 11/3 against the default.
///
/// # Errors
/// [`OtpError::WindowTooLarge`] above [`Window::DANGER_MAX_STEPS`].
pub const fn wide_window(past: u32, future: u32) -> Result<Window, OtpError> {
    Window::with_cap(past, future, Window::DANGER_MAX_STEPS)
}
