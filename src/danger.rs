//! Escape hatches that weaken a default. Each one names its risk; use them only for legacy data
//! or interoperability you cannot change, and say why in a comment where you call them.

use crate::error::{OtpError, SecretError};
use crate::otp::Window;
use crate::secret::Secret;

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
