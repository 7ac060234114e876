//! The keyed HMAC state shared by HOTP and TOTP.
//!
//! HOTP always MACs one 8-byte counter, so the whole HMAC (RFC 2104) fits in exactly two hash
//! compressions once the key schedule is done: one for the inner hash (counter plus padding) and
//! one for the outer hash (inner digest plus padding). This module keeps the two chaining values
//! left after compressing `K ^ ipad` and `K ^ opad`, and runs those two compressions directly
//! through the `sha1`/`sha2` crates' block functions. Nothing here is hand-written cryptography:
//! the compression functions are RustCrypto's, and a proptest (this module's tests) proves the
//! result equal to the `hmac` crate's on arbitrary keys and counters.

use digest::Digest;
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use zeroize::Zeroize;

use super::{Algorithm, Digits};
use crate::Secret;

const SHA1_IV: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];
const SHA256_IV: [u32; 8] = [
    0x6A09_E667,
    0xBB67_AE85,
    0x3C6E_F372,
    0xA54F_F53A,
    0x510E_527F,
    0x9B05_688C,
    0x1F83_D9AB,
    0x5BE0_CD19,
];
const SHA512_IV: [u64; 8] = [
    0x6A09_E667_F3BC_C908,
    0xBB67_AE85_84CA_A73B,
    0x3C6E_F372_FE94_F82B,
    0xA54F_F53A_5F1D_36F1,
    0x510E_527F_ADE6_82D1,
    0x9B05_688C_2B3E_6C1F,
    0x1F83_D9AB_FB41_BD6B,
    0x5BE0_CD19_137E_2179,
];

/// HMAC with the key schedule already applied: the chaining values after `K ^ ipad` (inner) and
/// `K ^ opad` (outer). These are key-equivalent, so they are zeroized on drop.
///
/// The per-code temporaries are not zeroized, by design: the copy of a chaining value is
/// transformed in place by the compression into the inner digest, so no key-equivalent state
/// outlives a call; what remains on the stack is the MAC of one counter, from which the code is
/// derived anyway. Volatile wiping of those buffers measured at about 300 ns per code (more than
/// the HMAC itself), for no protection of the key.
#[derive(Clone)]
pub(crate) enum KeyedMac {
    Sha1 { inner: [u32; 5], outer: [u32; 5] },
    Sha256 { inner: [u32; 8], outer: [u32; 8] },
    Sha512 { inner: [u64; 8], outer: [u64; 8] },
}

impl Drop for KeyedMac {
    fn drop(&mut self) {
        match self {
            Self::Sha1 { inner, outer } => {
                inner.zeroize();
                outer.zeroize();
            }
            Self::Sha256 { inner, outer } => {
                inner.zeroize();
                outer.zeroize();
            }
            Self::Sha512 { inner, outer } => {
                inner.zeroize();
                outer.zeroize();
            }
        }
    }
}

/// `K0` of RFC 2104: the key, hashed first if longer than a block, zero-padded to a block.
fn padded_key<D: Digest, const B: usize>(key: &[u8]) -> [u8; B] {
    let mut k0 = [0u8; B];
    if key.len() > B {
        let mut digest = D::digest(key);
        k0[..digest.len()].copy_from_slice(&digest);
        digest.as_mut_slice().zeroize();
    } else {
        k0[..key.len()].copy_from_slice(key);
    }
    k0
}

/// `k0 ^ pad` as a block (the caller zeroizes it).
fn xor_block<const B: usize>(k0: &[u8; B], pad: u8) -> [u8; B] {
    let mut block = *k0;
    for b in &mut block {
        *b ^= pad;
    }
    block
}

impl KeyedMac {
    pub(crate) fn new(algorithm: Algorithm, secret: &Secret) -> Self {
        let key = secret.expose_secret();
        match algorithm {
            Algorithm::Sha1 => {
                let mut k0 = padded_key::<Sha1, 64>(key);
                let (mut inner, mut outer) = (SHA1_IV, SHA1_IV);
                let mut ipad = xor_block(&k0, 0x36);
                let mut opad = xor_block(&k0, 0x5c);
                sha1::block_api::compress(&mut inner, &[ipad]);
                sha1::block_api::compress(&mut outer, &[opad]);
                k0.zeroize();
                ipad.zeroize();
                opad.zeroize();
                Self::Sha1 { inner, outer }
            }
            Algorithm::Sha256 => {
                let mut k0 = padded_key::<Sha256, 64>(key);
                let (mut inner, mut outer) = (SHA256_IV, SHA256_IV);
                let mut ipad = xor_block(&k0, 0x36);
                let mut opad = xor_block(&k0, 0x5c);
                sha2::block_api::compress256(&mut inner, &[ipad]);
                sha2::block_api::compress256(&mut outer, &[opad]);
                k0.zeroize();
                ipad.zeroize();
                opad.zeroize();
                Self::Sha256 { inner, outer }
            }
            Algorithm::Sha512 => {
                let mut k0 = padded_key::<Sha512, 128>(key);
                let (mut inner, mut outer) = (SHA512_IV, SHA512_IV);
                let mut ipad = xor_block(&k0, 0x36);
                let mut opad = xor_block(&k0, 0x5c);
                sha2::block_api::compress512(&mut inner, &[ipad]);
                sha2::block_api::compress512(&mut outer, &[opad]);
                k0.zeroize();
                ipad.zeroize();
                opad.zeroize();
                Self::Sha512 { inner, outer }
            }
        }
    }

    /// HOTP value for `counter` (RFC 4226 section 5.3): HMAC, dynamic truncation, modulo
    /// 10^digits.
    #[inline]
    pub(crate) fn hotp(&self, counter: u64, digits: Digits) -> u64 {
        let bin = match self {
            Self::Sha1 { inner, outer } => {
                let mut mac = [0u8; 20];
                hmac_sha1(inner, outer, counter, &mut mac);
                truncate(&mac)
            }
            Self::Sha256 { inner, outer } => {
                let mut mac = [0u8; 32];
                hmac_sha256(inner, outer, counter, &mut mac);
                truncate(&mac)
            }
            Self::Sha512 { inner, outer } => {
                let mut mac = [0u8; 64];
                hmac_sha512(inner, outer, counter, &mut mac);
                truncate(&mac)
            }
        };
        u64::from(bin) % digits.modulus()
    }

    /// The full HMAC of an 8-byte big-endian counter, for the equivalence proptest.
    #[cfg(test)]
    pub(crate) fn mac_counter(&self, counter: u64) -> Vec<u8> {
        match self {
            Self::Sha1 { inner, outer } => {
                let mut mac = [0u8; 20];
                hmac_sha1(inner, outer, counter, &mut mac);
                mac.to_vec()
            }
            Self::Sha256 { inner, outer } => {
                let mut mac = [0u8; 32];
                hmac_sha256(inner, outer, counter, &mut mac);
                mac.to_vec()
            }
            Self::Sha512 { inner, outer } => {
                let mut mac = [0u8; 64];
                hmac_sha512(inner, outer, counter, &mut mac);
                mac.to_vec()
            }
        }
    }
}

/// One 64-byte block holding `msg` followed by SHA-1/SHA-256 padding for a message whose total
/// length (including the already-compressed key block) is `64 + msg.len()` bytes.
#[inline(always)]
fn last_block_64(msg: &[u8]) -> [u8; 64] {
    let mut block = [0u8; 64];
    block[..msg.len()].copy_from_slice(msg);
    block[msg.len()] = 0x80;
    let bits = ((64 + msg.len()) as u64) * 8;
    block[56..].copy_from_slice(&bits.to_be_bytes());
    block
}

/// The same for SHA-512's 128-byte blocks and 128-bit length field.
#[inline(always)]
fn last_block_128(msg: &[u8]) -> [u8; 128] {
    let mut block = [0u8; 128];
    block[..msg.len()].copy_from_slice(msg);
    block[msg.len()] = 0x80;
    let bits = ((128 + msg.len()) as u128) * 8;
    block[112..].copy_from_slice(&bits.to_be_bytes());
    block
}

#[inline(always)]
fn hmac_sha1(inner: &[u32; 5], outer: &[u32; 5], counter: u64, out: &mut [u8; 20]) {
    let mut state = *inner;
    let mut block = last_block_64(&counter.to_be_bytes());
    sha1::block_api::compress(&mut state, &[block]);
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    block = last_block_64(out);
    state = *outer;
    sha1::block_api::compress(&mut state, &[block]);
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
}

#[inline(always)]
fn hmac_sha256(inner: &[u32; 8], outer: &[u32; 8], counter: u64, out: &mut [u8; 32]) {
    let mut state = *inner;
    let mut block = last_block_64(&counter.to_be_bytes());
    sha2::block_api::compress256(&mut state, &[block]);
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    block = last_block_64(out);
    state = *outer;
    sha2::block_api::compress256(&mut state, &[block]);
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
}

#[inline(always)]
fn hmac_sha512(inner: &[u64; 8], outer: &[u64; 8], counter: u64, out: &mut [u8; 64]) {
    let mut state = *inner;
    let mut block = last_block_128(&counter.to_be_bytes());
    sha2::block_api::compress512(&mut state, &[block]);
    for (chunk, word) in out.chunks_exact_mut(8).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    block = last_block_128(out);
    state = *outer;
    sha2::block_api::compress512(&mut state, &[block]);
    for (chunk, word) in out.chunks_exact_mut(8).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
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
    use hmac::{Hmac, KeyInit, Mac};
    use proptest::prelude::*;

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

    fn reference(algorithm: Algorithm, key: &[u8], counter: u64) -> Vec<u8> {
        let msg = counter.to_be_bytes();
        match algorithm {
            Algorithm::Sha1 => {
                let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(key).unwrap();
                m.update(&msg);
                m.finalize().into_bytes().to_vec()
            }
            Algorithm::Sha256 => {
                let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
                m.update(&msg);
                m.finalize().into_bytes().to_vec()
            }
            Algorithm::Sha512 => {
                let mut m = <Hmac<Sha512> as KeyInit>::new_from_slice(key).unwrap();
                m.update(&msg);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The two-compression fast path equals the `hmac` crate on every key length (shorter
        /// than, equal to and longer than a block, where RFC 2104 hashes the key first) and every
        /// counter, for all three hashes.
        #[test]
        fn fast_path_equals_hmac_crate(
            key in proptest::collection::vec(any::<u8>(), 1..=300),
            counter in any::<u64>(),
            alg in prop_oneof![Just(Algorithm::Sha1), Just(Algorithm::Sha256), Just(Algorithm::Sha512)],
        ) {
            let secret = crate::danger::short_secret(&key).unwrap();
            let fast = KeyedMac::new(alg, &secret).mac_counter(counter);
            prop_assert_eq!(fast, reference(alg, &key, counter));
        }
    }

    #[test]
    fn block_boundary_keys() {
        for alg in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            for len in [1, 16, 20, 32, 63, 64, 65, 127, 128, 129, 1024] {
                let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let secret = crate::danger::short_secret(&key).unwrap();
                for counter in [0, 1, u64::MAX] {
                    assert_eq!(
                        KeyedMac::new(alg, &secret).mac_counter(counter),
                        reference(alg, &key, counter),
                        "{alg} key {len} counter {counter}"
                    );
                }
            }
        }
    }
}
