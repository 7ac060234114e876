//! The shared secret behind HOTP and TOTP codes.

use core::fmt;

use data_encoding::{BASE32_NOPAD, Encoding};
use rand::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Base32Error, Error, SecretError};
use crate::otp::Algorithm;

/// An HOTP/TOTP shared secret (the HMAC key).
///
/// Zeroized on drop; `Debug` prints `[REDACTED]`; there is no `Display`; equality runs in constant
/// time. Reading the bytes takes an explicit [`Secret::expose_secret`], and the base32 form an
/// explicit [`Secret::to_base32`]: never log either.
#[derive(Clone)]
pub struct Secret {
    bytes: Zeroizing<Vec<u8>>,
}

impl Secret {
    /// Minimum length accepted by [`Secret::from_bytes`] and [`Secret::from_base32`]: 128 bits, as
    /// RFC 4226 requirement R6 demands. Use [`crate::danger::short_secret`] for legacy secrets.
    pub const MIN_LEN: usize = 16;
    /// Maximum length accepted anywhere (1 KiB); HMAC hashes longer keys anyway, and the cap keeps
    /// hostile input from costing memory.
    pub const MAX_LEN: usize = 1024;

    /// Generates a fresh secret of the recommended length for `algorithm` (20 bytes for SHA-1, 32
    /// for SHA-256, 64 for SHA-512: the hash's output size, as RFC 2104 recommends) from the
    /// operating system's CSPRNG.
    #[must_use]
    pub fn generate(algorithm: Algorithm) -> Self {
        Self::generate_with_rng(algorithm, &mut crate::rng::os_rng())
    }

    /// Like [`Secret::generate`], with the random number generator injected (tests, HSM-backed RNGs).
    #[must_use]
    pub fn generate_with_rng<R: CryptoRng + ?Sized>(algorithm: Algorithm, rng: &mut R) -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; algorithm.output_len()]);
        rng.fill_bytes(&mut bytes);
        Self { bytes }
    }

    /// Wraps existing secret bytes (copied; zeroize your own copy).
    ///
    /// # Errors
    /// [`SecretError::TooShort`] below [`Secret::MIN_LEN`] bytes, [`SecretError::TooLong`] above
    /// [`Secret::MAX_LEN`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.len() < Self::MIN_LEN {
            return Err(SecretError::TooShort {
                len: bytes.len(),
                min: Self::MIN_LEN,
            });
        }
        Self::from_bytes_unchecked_len(bytes)
    }

    /// Any non-empty length up to [`Secret::MAX_LEN`]; used by `danger::short_secret`.
    pub(crate) fn from_bytes_unchecked_len(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.is_empty() {
            return Err(SecretError::Empty);
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(SecretError::TooLong {
                len: bytes.len(),
                max: Self::MAX_LEN,
            });
        }
        Ok(Self {
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// Decodes a base32 secret the way people paste it: any case, spaces and hyphens between
    /// groups, with or without `=` padding.
    ///
    /// # Errors
    /// [`Error::Base32`] naming the offending character and its position, or [`Error::Secret`]
    /// when the decoded secret is shorter than [`Secret::MIN_LEN`].
    pub fn from_base32(encoded: &str) -> Result<Self, Error> {
        let bytes = decode_base32(encoded)?;
        Ok(Self::from_bytes(&bytes)?)
    }

    /// The secret as RFC 4648 base32, upper case, without padding: what authenticator apps expect.
    /// The returned string is zeroized on drop.
    #[must_use]
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE32_NOPAD.encode(&self.bytes))
    }

    /// The raw secret bytes. Handle with care: never log them.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.bytes
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always `false`: an empty secret cannot be constructed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl ConstantTimeEq for Secret {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        // Lengths are not secret (they follow from the algorithm); contents are compared in
        // constant time.
        self.bytes.as_slice().ct_eq(other.bytes.as_slice())
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Secret {}

/// Lenient base32 alphabet: upper case RFC 4648, trailing bits not checked (some generators emit
/// random characters rather than encoded bytes, leaving non-zero trailing bits).
fn lenient() -> Encoding {
    let mut spec = BASE32_NOPAD.specification();
    spec.check_trailing_bits = false;
    // The specification is a constant, valid alphabet; this cannot fail.
    spec.encoding().unwrap_or_else(|_| BASE32_NOPAD.clone())
}

/// Decodes lenient base32 into bytes (zeroized on drop), enforcing [`Secret::MAX_LEN`].
pub(crate) fn decode_base32(encoded: &str) -> Result<Zeroizing<Vec<u8>>, Base32Error> {
    // Refuse absurd input before doing any work on it.
    let max_chars = (Secret::MAX_LEN * 8).div_ceil(5);
    let mut clean = Zeroizing::new(String::with_capacity(encoded.len().min(max_chars + 8)));
    let mut padding_at: Option<usize> = None;
    for (position, character) in encoded.chars().enumerate() {
        match character {
            ' ' | '-' | '\t' => {}
            '=' => {
                padding_at.get_or_insert(position);
            }
            'a'..='z' | 'A'..='Z' | '2'..='7' => {
                if let Some(pad) = padding_at {
                    return Err(Base32Error::MisplacedPadding { position: pad });
                }
                if clean.len() >= max_chars {
                    return Err(Base32Error::TooLong {
                        max: Secret::MAX_LEN,
                    });
                }
                clean.push(character.to_ascii_uppercase());
            }
            _ => {
                return Err(Base32Error::InvalidCharacter {
                    character,
                    position,
                });
            }
        }
    }
    if clean.is_empty() {
        return Err(Base32Error::Empty);
    }
    if matches!(clean.len() % 8, 1 | 3 | 6) {
        return Err(Base32Error::InvalidLength {
            length: clean.len(),
        });
    }
    let encoding = lenient();
    let mut out = Zeroizing::new(vec![
        0u8;
        encoding.decode_len(clean.len()).map_err(|_| {
            Base32Error::InvalidLength {
                length: clean.len(),
            }
        })?
    ]);
    let written = encoding
        .decode_mut(clean.as_bytes(), &mut out)
        .map_err(|_| Base32Error::InvalidLength {
            length: clean.len(),
        })?;
    if written > Secret::MAX_LEN {
        out.zeroize();
        return Err(Base32Error::TooLong {
            max: Secret::MAX_LEN,
        });
    }
    out.truncate(written);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from_bytes(b"12345678901234567890").unwrap();
        assert_eq!(format!("{s:?}"), "Secret([REDACTED])");
    }

    #[test]
    fn lenient_base32() {
        let a = Secret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        let b = Secret::from_base32("gezd gnbv-gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.expose_secret(), b"12345678901234567890");
        assert_eq!(&*a.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        // Padding accepted at the end.
        let c = Secret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGE======").unwrap();
        assert_eq!(c.len(), 21);
    }

    #[test]
    fn precise_errors() {
        assert_eq!(
            decode_base32("GEZD1NBV").unwrap_err(),
            Base32Error::InvalidCharacter {
                character: '1',
                position: 4
            }
        );
        assert_eq!(
            decode_base32("GE==ZD").unwrap_err(),
            Base32Error::MisplacedPadding { position: 2 }
        );
        assert_eq!(decode_base32(" - ").unwrap_err(), Base32Error::Empty);
        assert_eq!(
            decode_base32("A").unwrap_err(),
            Base32Error::InvalidLength { length: 1 }
        );
        let long = "A".repeat(2000);
        assert_eq!(
            decode_base32(&long).unwrap_err(),
            Base32Error::TooLong { max: 1024 }
        );
        assert!(matches!(
            Secret::from_base32("JBSWY3DPEHPK3PXP"),
            Err(Error::Secret(SecretError::TooShort { len: 10, min: 16 }))
        ));
    }
}
