//! TOTP generate/verify against the peers (totp-rs, libreauth) and against the physical floor:
//! the raw hash compressions the work cannot avoid (2 per code, 6 for a ±1 window, 2 more to key
//! the HMAC from the secret bytes).
//!
//! Run: `cargo bench --bench otp -- --measurement-time 3 --warm-up-time 1`; `sha1_block_stores`
//! shows why a code costs more than its two compressions (benches/README.md, Speed).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use libreauth::hash::HashFunction;
use twofactor::{Algorithm, Secret, Totp};

/// The start of a step: libreauth reads the system clock plus an offset, so its notion of the
/// current step only holds for 30 s after a `TOTPBuilder` is finalized; each group builds its own.
const T: u64 = 1_699_999_980;
const SEED20: &[u8; 20] = b"12345678901234567890";
const SEED32: &[u8; 32] = b"12345678901234567890123456789012";
const SEED64: &[u8; 64] = b"1234567890123456789012345678901234567890123456789012345678901234";

/// `n` SHA-1 compressions: the floor for work needing `n` compressions. The block goes through
/// `black_box` each time so the compiler cannot hoist its message schedule out of the loop (real
/// work compresses a different block each time).
#[inline]
fn sha1_floor(n: usize) -> [u32; 5] {
    let mut state = black_box([
        0x6745_2301,
        0xefcd_ab89,
        0x98ba_dcfe,
        0x1032_5476,
        0xc3d2_e1f0,
    ]);
    let block = black_box([0x36u8; 64]);
    for _ in 0..n {
        sha1::block_api::compress(&mut state, &[black_box(block)]);
    }
    state
}

#[inline]
fn sha256_floor(n: usize) -> [u32; 8] {
    let mut state = black_box([7u32; 8]);
    let block = black_box([0x36u8; 64]);
    for _ in 0..n {
        sha2::block_api::compress256(&mut state, &[black_box(block)]);
    }
    state
}

#[inline]
fn sha512_floor(n: usize) -> [u64; 8] {
    let mut state = black_box([7u64; 8]);
    let block = black_box([0x36u8; 128]);
    for _ in 0..n {
        sha2::block_api::compress512(&mut state, &[black_box(block)]);
    }
    state
}

fn ours(seed: &[u8], algorithm: Algorithm) -> Totp {
    let secret = Secret::from_bytes(seed).unwrap();
    Totp::builder(&secret).algorithm(algorithm).build().unwrap()
}

fn totp_rs(seed: &[u8], algorithm: totp_rs::Algorithm) -> totp_rs::Totp {
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_secret(totp_rs::Secret::from(seed))
        .with_skew(1)
        .build()
        .unwrap()
}

fn libreauth(seed: &[u8], hash: HashFunction, tolerance: u64) -> libreauth::oath::TOTP {
    libreauth::oath::TOTPBuilder::new()
        .key(seed)
        .hash_function(hash)
        .tolerance(tolerance)
        .timestamp(i64::try_from(T).unwrap())
        .finalize()
        .unwrap()
}

/// A 6-digit code valid at none of the steps T-1, T, T+1.
fn wrong_code(totp: &Totp) -> String {
    let step = totp.step_at(T).unwrap();
    let window: Vec<String> = (step - 1..=step + 1)
        .map(|s| totp.generate_step(s).as_str().to_owned())
        .collect();
    (0..10u32)
        .map(|d| format!("{:06}", d * 111_111))
        .find(|c| !window.contains(c))
        .unwrap()
}

fn generate(c: &mut Criterion) {
    for (group, seed, alg, trs, la) in [
        (
            "totp_generate",
            &SEED20[..],
            Algorithm::Sha1,
            totp_rs::Algorithm::SHA1,
            HashFunction::Sha1,
        ),
        (
            "totp_generate_sha256",
            &SEED32[..],
            Algorithm::Sha256,
            totp_rs::Algorithm::SHA256,
            HashFunction::Sha256,
        ),
        (
            "totp_generate_sha512",
            &SEED64[..],
            Algorithm::Sha512,
            totp_rs::Algorithm::SHA512,
            HashFunction::Sha512,
        ),
    ] {
        let mut g = c.benchmark_group(group);
        let ours = ours(seed, alg);
        g.bench_function("twofactor", |b| {
            b.iter(|| ours.generate_at(black_box(T)).unwrap());
        });
        let peer = totp_rs(seed, trs);
        g.bench_function("totp-rs", |b| b.iter(|| peer.generate(black_box(T))));
        let peer = libreauth(seed, la, 0);
        g.bench_function("libreauth", |b| b.iter(|| peer.generate()));
        match alg {
            Algorithm::Sha256 => g.bench_function("sha256_floor", |b| b.iter(|| sha256_floor(2))),
            Algorithm::Sha512 => g.bench_function("sha512_floor", |b| b.iter(|| sha512_floor(2))),
            _ => g.bench_function("sha1_floor", |b| b.iter(|| sha1_floor(2))),
        };
        g.finish();
    }
}

fn verify(c: &mut Criterion) {
    let totp = ours(SEED20, Algorithm::Sha1);
    let wrong = wrong_code(&totp);
    let right = totp.generate_at(T).unwrap().as_str().to_owned();
    let trs = totp_rs(SEED20, totp_rs::Algorithm::SHA1);

    for (group, code, valid) in [
        ("totp_verify_miss_window1", &wrong, false),
        ("totp_verify_hit_window1", &right, true),
    ] {
        let mut g = c.benchmark_group(group);
        g.bench_function("twofactor", |b| {
            b.iter(|| {
                let out = totp.verify_at(black_box(code), black_box(T)).unwrap();
                assert_eq!(out.is_valid(), valid);
                out
            });
        });
        g.bench_function("totp-rs", |b| {
            b.iter(|| {
                let out = trs.check(black_box(code), black_box(T));
                assert_eq!(out.is_some(), valid);
                out
            });
        });
        let la = libreauth(SEED20, HashFunction::Sha1, 1);
        g.bench_function("libreauth", |b| {
            b.iter(|| {
                let out = la.is_valid(black_box(code));
                assert_eq!(out, valid);
                out
            });
        });
        g.bench_function("sha1_floor", |b| b.iter(|| sha1_floor(6)));
        g.finish();
    }

    // The server's path per login: key the HMAC from stored secret bytes, verify a wrong code ±1.
    let mut g = c.benchmark_group("totp_verify_from_secret");
    g.bench_function("twofactor", |b| {
        b.iter(|| {
            let secret = Secret::from_bytes(black_box(SEED20)).unwrap();
            let totp = Totp::builder(&secret).build().unwrap();
            let out = totp.verify_at(black_box(&wrong), black_box(T)).unwrap();
            assert!(!out.is_valid());
            out
        });
    });
    g.bench_function("totp-rs", |b| {
        b.iter(|| {
            let totp = totp_rs(black_box(SEED20), totp_rs::Algorithm::SHA1);
            let out = totp.check(black_box(&wrong), black_box(T));
            assert!(out.is_none());
            out
        });
    });
    g.bench_function("libreauth", |b| {
        b.iter(|| {
            let totp = libreauth(black_box(SEED20), HashFunction::Sha1, 1);
            let out = totp.is_valid(black_box(&wrong));
            assert!(!out);
            out
        });
    });
    g.bench_function("sha1_floor", |b| b.iter(|| sha1_floor(8)));
    g.finish();
}

/// Why a code costs more than two compressions: one SHA-1 compression of a block copied from a
/// constant (written with 16-byte stores, like the floor's) against one of a block built from a
/// counter with integer stores, as HMAC's inner block is. The compression reads its block in
/// 16-byte loads, which the store buffer cannot forward from several smaller stores, so the
/// second waits for those stores to retire and cannot overlap the previous iteration.
fn block_stores(c: &mut Criterion) {
    let mut g = c.benchmark_group("sha1_block_stores");
    g.bench_function("constant_block", |b| b.iter(|| sha1_floor(1)));
    g.bench_function("counter_block", |b| {
        b.iter(|| {
            let mut state = black_box([7u32; 5]);
            let mut block = [0u8; 64];
            block[..8].copy_from_slice(&black_box(T).to_be_bytes());
            block[8] = 0x80;
            block[56..].copy_from_slice(&576u64.to_be_bytes());
            sha1::block_api::compress(&mut state, &[block]);
            state
        });
    });
    g.finish();
}

criterion_group!(benches, generate, verify, block_stores);
criterion_main!(benches);
