//! The keyed HMAC state shared by HOTP and TOTP.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::{Algorithm, Digits};
use crate::Secret;

/// HMAC with the key schedule already applied: `Hmac<D>` from the `hmac` crate keeps the inner and
/// outer padded states after keying, so cloning it and hashing an 8-byte counter costs exactly two
/// compressions (one inner, one outer). The states are zeroized on drop.
#[derive(Clone)]
pub(crate) enum KeyedMac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

impl KeyedMac {
    pub(crate) fn new(algorithm: Algorithm, secret: &Secret) -> Self {
        let key = secret.expose_secret();
        // HMAC accepts keys of any length (longer ones are hashed first), so keying cannot fail;
        // the fallback is unreachable but keeps the path panic-free.
        match algorithm {
            Algorithm::Sha1 => Self::Sha1(
                <Hmac<Sha1> as KeyInit>::new_from_slice(key)
                    .unwrap_or_else(|_| <Hmac<Sha1> as KeyInit>::new(&Default::default())),
            ),
            Algorithm::Sha256 => Self::Sha256(
                <Hmac<Sha256> as KeyInit>::new_from_slice(key)
                    .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default())),
            ),
            Algorithm::Sha512 => Self::Sha512(
                <Hmac<Sha512> as KeyInit>::new_from_slice(key)
                    .unwrap_or_else(|_| <Hmac<Sha512> as KeyInit>::new(&Default::default())),
            ),
        }
    }

    /// HOTP value for `counter` (RFC 4226 section 5.3): HMAC, dynamic truncation, modulo
    /// 10^digits.
    #[inline]
    pub(crate) fn hotp(&self, counter: u64, digits: Digits) -> u64 {
        let msg = counter.to_be_bytes();
        let bin = match self {
            Self::Sha1(m) => truncate(&finalize(m, &msg)),
            Self::Sha256(m) => truncate(&finalize(m, &msg)),
            Self::Sha512(m) => truncate(&finalize(m, &msg)),
        };
        u64::from(bin) % digits.modulus()
    }
}

#[inline]
fn finalize<M: Mac + Clone>(keyed: &M, msg: &[u8]) -> digest::Output<M> {
    let mut m = keyed.clone();
    m.update(msg);
    m.finalize().into_bytes()
}

/// Dynamic truncation (RFC 4226 section 5.3): a 31-bit value from 4 bytes at the offset given by
/// the low nibble of the last byte.
#[inline]
fn truncate(hmac: &[u8]) -> u32 {
    let offset = usize::from(hmac[hmac.len() - 1] & 0x0f);
    u32::from_be_bytes([
        hmac[offset] & 0x7f,
        hmac[offset + 1],
        hmac[offset + 2],
        hmac[offset + 3],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4226_truncation_example() {
        // RFC 4226 section 5.4.
        let h = [
            0x1f, 0x86, 0x98, 0x69, 0x0e, 0x02, 0xca, 0x16, 0x61, 0x85, 0x50, 0xef, 0x7f, 0x19,
            0xda, 0x8e, 0x94, 0x5b, 0x55, 0x5a,
        ];
        assert_eq!(truncate(&h), 0x50ef_7f19);
        assert_eq!(u64::from(truncate(&h)) % 1_000_000, 872_921);
    }
}
