//! The keyed HMAC state shared by HOTP and TOTP.
//!
//! HOTP always MACs one 8-byte counter, so the whole HMAC (RFC 2104) fits in exactly two hash
//! compressions once the key schedule is done: one for the inner hash (counter plus padding) and
//! one for the outer hash (inner digest plus padding). This module keeps the two chaining values
//! left after compressing `K ^ ipad` and `K ^ opad`, and runs those two compressions directly
//! through the `sha1`/`sha2` crates' block functions; a verification window's codes go through
//! in batches, their inner compressions back to back, then their outer ones (see [`lanes`]).
//! Nothing here is hand-written cryptography:
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
/// outlives a call; what remains on the stack is counter blocks, inner digests and the MACs of
/// the counters, from which the codes are derived anyway. Volatile wiping of those buffers measured at about 300 ns per code (more than
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
    pub(crate) fn hotp(&self, counter: u64, digits: Digits) -> u32 {
        let [bin] = match self {
            Self::Sha1 { inner, outer } => lanes::<Sha1Core, 1>(inner, outer, counter),
            Self::Sha256 { inner, outer } => lanes::<Sha256Core, 1>(inner, outer, counter),
            Self::Sha512 { inner, outer } => lanes::<Sha512Core, 1>(inner, outer, counter),
        };
        digits.reduce(bin)
    }

    /// Calls `each(counter, value)` with the HOTP value of every counter in `first..=last`, in
    /// order. Up to [`LANES`] counters are hashed together: their inner compressions are issued
    /// back to back, then their outer ones, so the processor overlaps the independent hash chains
    /// instead of waiting for each code's outer hash before starting the next code.
    ///
    /// How many counters go together depends only on `last - first`, never on the key or a code.
    #[inline]
    pub(crate) fn hotp_range(
        &self,
        first: u64,
        last: u64,
        digits: Digits,
        each: impl FnMut(u64, u32),
    ) {
        match self {
            Self::Sha1 { inner, outer } => {
                range::<Sha1Core>(inner, outer, first, last, digits, each)
            }
            Self::Sha256 { inner, outer } => {
                range::<Sha256Core>(inner, outer, first, last, digits, each);
            }
            Self::Sha512 { inner, outer } => {
                range::<Sha512Core>(inner, outer, first, last, digits, each);
            }
        }
    }

    /// The full HMAC of an 8-byte big-endian counter, for the equivalence proptest.
    #[cfg(test)]
    pub(crate) fn mac_counter(&self, counter: u64) -> Vec<u8> {
        fn mac<C: Compression>(inner: &C::State, outer: &C::State, counter: u64) -> Vec<u8> {
            let mut state = *inner;
            C::compress(&mut state, &C::counter_block(counter));
            let block = C::digest_block(&state);
            state = *outer;
            C::compress(&mut state, &block);
            C::digest_bytes(&state)
        }
        match self {
            Self::Sha1 { inner, outer } => mac::<Sha1Core>(inner, outer, counter),
            Self::Sha256 { inner, outer } => mac::<Sha256Core>(inner, outer, counter),
            Self::Sha512 { inner, outer } => mac::<Sha512Core>(inner, outer, counter),
        }
    }
}

/// How many counters [`KeyedMac::hotp_range`] hashes together. A ±1 window (3 steps) is one
/// batch; four SHA-1 compressions in flight are about what the reorder buffer of a current x86
/// core overlaps.
pub(crate) const LANES: usize = 4;

/// One hash's compression function as the two-block HMAC needs it, over RustCrypto's block API.
trait Compression {
    /// The chaining value.
    type State: Copy;
    /// One message block.
    type Block;
    fn compress(state: &mut Self::State, block: &Self::Block);
    /// The inner hash's last block: the 8-byte big-endian counter and the padding for a
    /// message of one key block plus 8 bytes.
    fn counter_block(counter: u64) -> Self::Block;
    /// The outer hash's last block: the inner digest (the chaining value in big-endian bytes)
    /// and the padding for one key block plus the digest.
    fn digest_block(inner: &Self::State) -> Self::Block;
    /// Dynamic truncation (RFC 4226 section 5.3) of the digest this final chaining value
    /// encodes: the 31-bit value of the 4 bytes at the offset given by the digest's last nibble.
    fn truncate(state: &Self::State) -> u32;
    #[cfg(test)]
    fn digest_bytes(state: &Self::State) -> Vec<u8>;
}

struct Sha1Core;
struct Sha256Core;
struct Sha512Core;

/// The padding of a last block holding `len` message bytes of a hash whose whole input is
/// `total` bytes, for the 64-byte-block hashes (64-bit big-endian length in bits).
#[inline(always)]
fn pad_64(block: &mut [u8; 64], len: usize, total: u64) {
    block[len] = 0x80;
    block[56..].copy_from_slice(&(total * 8).to_be_bytes());
}

/// The same for SHA-512's 128-byte blocks and 128-bit length field.
#[inline(always)]
fn pad_128(block: &mut [u8; 128], len: usize, total: u128) {
    block[len] = 0x80;
    block[112..].copy_from_slice(&(total * 8).to_be_bytes());
}

/// Dynamic truncation read straight from big-endian 32-bit digest words: the offset is the low
/// nibble of the digest's last byte, and the 4 bytes from there span words `offset / 4` and the
/// next one. `word(i)` must return the i-th big-endian 32-bit word of the digest, for i ≤ 4.
#[inline(always)]
fn truncate_words(last_byte: u32, word: impl Fn(usize) -> u32) -> u32 {
    let offset = (last_byte & 0x0f) as usize;
    let (index, shift) = (offset / 4, (offset % 4) * 8);
    let pair = (u64::from(word(index)) << 32) | u64::from(word(index + 1));
    // The 32 bits starting `shift` bits into the pair; the top bit is masked off (RFC 4226).
    #[allow(clippy::cast_possible_truncation)]
    let value = (pair << shift >> 32) as u32;
    value & 0x7fff_ffff
}

/// SHA-1 and SHA-256 differ only in the state's length and the block function: one body for both.
macro_rules! compression_32 {
    ($core:ty, $words:literal, $compress:path) => {
        impl Compression for $core {
            type State = [u32; $words];
            type Block = [u8; 64];
            #[inline(always)]
            fn compress(state: &mut [u32; $words], block: &[u8; 64]) {
                $compress(state, core::slice::from_ref(block));
            }
            #[inline(always)]
            fn counter_block(counter: u64) -> [u8; 64] {
                let mut block = [0u8; 64];
                block[..8].copy_from_slice(&counter.to_be_bytes());
                pad_64(&mut block, 8, 64 + 8);
                block
            }
            #[inline(always)]
            fn digest_block(inner: &[u32; $words]) -> [u8; 64] {
                let mut block = [0u8; 64];
                for (chunk, word) in block.chunks_exact_mut(4).zip(inner) {
                    chunk.copy_from_slice(&word.to_be_bytes());
                }
                pad_64(&mut block, 4 * $words, 64 + 4 * $words);
                block
            }
            #[inline(always)]
            fn truncate(state: &[u32; $words]) -> u32 {
                truncate_words(state[$words - 1], |i| state[i])
            }
            #[cfg(test)]
            fn digest_bytes(state: &[u32; $words]) -> Vec<u8> {
                state.iter().flat_map(|w| w.to_be_bytes()).collect()
            }
        }
    };
}

compression_32!(Sha1Core, 5, sha1::block_api::compress);
compression_32!(Sha256Core, 8, sha2::block_api::compress256);

impl Compression for Sha512Core {
    type State = [u64; 8];
    type Block = [u8; 128];
    #[inline(always)]
    fn compress(state: &mut [u64; 8], block: &[u8; 128]) {
        sha2::block_api::compress512(state, core::slice::from_ref(block));
    }
    #[inline(always)]
    fn counter_block(counter: u64) -> [u8; 128] {
        let mut block = [0u8; 128];
        block[..8].copy_from_slice(&counter.to_be_bytes());
        pad_128(&mut block, 8, 128 + 8);
        block
    }
    #[inline(always)]
    fn digest_block(inner: &[u64; 8]) -> [u8; 128] {
        let mut block = [0u8; 128];
        for (chunk, word) in block.chunks_exact_mut(8).zip(inner) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        pad_128(&mut block, 64, 128 + 64);
        block
    }
    #[inline(always)]
    fn truncate(state: &[u64; 8]) -> u32 {
        // 32-bit word i is the high (even i) or low (odd i) half of 64-bit word i / 2.
        #[allow(clippy::cast_possible_truncation)]
        let word = |i: usize| (state[i / 2] >> (32 * (1 - i % 2))) as u32;
        #[allow(clippy::cast_possible_truncation)]
        truncate_words(state[7] as u32, word)
    }
    #[cfg(test)]
    fn digest_bytes(state: &[u64; 8]) -> Vec<u8> {
        state.iter().flat_map(|w| w.to_be_bytes()).collect()
    }
}

/// The truncated HMAC (before the modulus) of counters `first .. first + N`, in four passes:
/// build the N counter blocks, run the N inner compressions, build the N digest blocks, run the
/// N outer compressions. The compressions of one pass are independent, so the processor overlaps
/// them; and a block is never read right after it was written in pieces (a load the store buffer
/// cannot forward waits for those stores to retire), except the first of each pass. The floor of
/// one code is still two compressions in series.
#[inline(always)]
fn lanes<C: Compression, const N: usize>(
    inner: &C::State,
    outer: &C::State,
    first: u64,
) -> [u32; N] {
    let mut counter = first;
    let counter_blocks: [C::Block; N] = core::array::from_fn(|_| {
        let block = C::counter_block(counter);
        counter = counter.wrapping_add(1);
        block
    });
    let mut states = [*inner; N];
    for (state, block) in states.iter_mut().zip(&counter_blocks) {
        C::compress(state, block);
    }
    let digest_blocks: [C::Block; N] = core::array::from_fn(|i| C::digest_block(&states[i]));
    for (state, block) in states.iter_mut().zip(&digest_blocks) {
        *state = *outer;
        C::compress(state, block);
    }
    states.map(|state| C::truncate(&state))
}

#[inline(always)]
fn range<C: Compression>(
    inner: &C::State,
    outer: &C::State,
    first: u64,
    last: u64,
    digits: Digits,
    mut each: impl FnMut(u64, u32),
) {
    let mut emit = |start: u64, values: &[u32]| {
        let mut counter = start;
        for &bin in values {
            each(counter, digits.reduce(bin));
            counter = counter.wrapping_add(1);
        }
    };
    let mut counter = first;
    loop {
        // Branches on the window's size only (`last - counter`), which is public.
        match last - counter {
            0 => return emit(counter, &lanes::<C, 1>(inner, outer, counter)),
            1 => return emit(counter, &lanes::<C, 2>(inner, outer, counter)),
            2 => return emit(counter, &lanes::<C, 3>(inner, outer, counter)),
            rest => {
                emit(counter, &lanes::<C, LANES>(inner, outer, counter));
                if rest + 1 == LANES as u64 {
                    return;
                }
                counter += LANES as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, KeyInit, Mac};
    use proptest::prelude::*;

    /// Dynamic truncation as RFC 4226 section 5.3 writes it, over the digest's bytes.
    fn truncate_bytes(hmac: &[u8]) -> u32 {
        let offset = usize::from(hmac[hmac.len() - 1] & 0x0f);
        u32::from_be_bytes([
            hmac[offset] & 0x7f,
            hmac[offset + 1],
            hmac[offset + 2],
            hmac[offset + 3],
        ])
    }

    fn words32(bytes: &[u8]) -> Vec<u32> {
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn rfc4226_truncation_example() {
        // RFC 4226 section 5.4.
        let h = [
            0x1f, 0x86, 0x98, 0x69, 0x0e, 0x02, 0xca, 0x16, 0x61, 0x85, 0x50, 0xef, 0x7f, 0x19,
            0xda, 0x8e, 0x94, 0x5b, 0x55, 0x5a,
        ];
        assert_eq!(truncate_bytes(&h), 0x50ef_7f19);
        let state: [u32; 5] = words32(&h).try_into().unwrap();
        assert_eq!(Sha1Core::truncate(&state), 0x50ef_7f19);
        assert_eq!(Digits::SIX.reduce(Sha1Core::truncate(&state)), 872_921);
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

    proptest! {
        /// Truncation from the chaining words equals the RFC's byte-wise truncation of the
        /// digest, for every offset and all three digest layouts.
        #[test]
        fn word_truncation_equals_byte_truncation(digest in proptest::array::uniform32(any::<u8>()), wide in proptest::array::uniform32(any::<u8>())) {
            let sha1: [u32; 5] = words32(&digest[..20]).try_into().unwrap();
            prop_assert_eq!(Sha1Core::truncate(&sha1), truncate_bytes(&digest[..20]));
            let sha256: [u32; 8] = words32(&digest).try_into().unwrap();
            prop_assert_eq!(Sha256Core::truncate(&sha256), truncate_bytes(&digest));
            let bytes512: Vec<u8> = digest.iter().chain(&wide).copied().collect();
            let sha512: [u64; 8] = core::array::from_fn(|i| {
                u64::from_be_bytes(bytes512[8 * i..8 * i + 8].try_into().unwrap())
            });
            prop_assert_eq!(Sha512Core::truncate(&sha512), truncate_bytes(&bytes512));
        }

        /// A batched range gives every counter, in order, the value of computing it alone, for
        /// every batch size and remainder.
        #[test]
        fn range_equals_one_at_a_time(
            key in proptest::collection::vec(any::<u8>(), 1..=80),
            first in prop_oneof![any::<u64>(), Just(u64::MAX - 20)],
            len in 0u64..=20,
            alg in prop_oneof![Just(Algorithm::Sha1), Just(Algorithm::Sha256), Just(Algorithm::Sha512)],
            digits in 6u32..=10,
        ) {
            let secret = crate::danger::short_secret(&key).unwrap();
            let mac = KeyedMac::new(alg, &secret);
            let digits = Digits::new(digits).unwrap();
            let first = first.min(u64::MAX - len);
            let mut seen = Vec::new();
            mac.hotp_range(first, first + len, digits, |c, v| seen.push((c, v)));
            let expected: Vec<(u64, u32)> =
                (first..=first + len).map(|c| (c, mac.hotp(c, digits))).collect();
            prop_assert_eq!(seen, expected);
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
