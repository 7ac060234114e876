//! Our codes against oathtool's on random secrets, times and parameters, for all three
//! algorithms. Runs when `TWOFACTOR_INTEROP=1`; with it set, a missing oathtool is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use rand::{Rng, RngExt, SeedableRng, rngs::StdRng};
use twofactor::{Algorithm, Hotp, Secret, Totp};

/// Returns whether the interop tests should run, following the crate's test-switch rules.
fn enabled() -> bool {
    if std::env::var("TWOFACTOR_INTEROP").as_deref() == Ok("1") {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but TWOFACTOR_INTEROP=1 is not set: the oathtool interop test must run in CI"
    );
    eprintln!("skipped: set TWOFACTOR_INTEROP=1 to compare codes with oathtool");
    false
}

/// Runs oathtool with `args`, returning its stdout lines.
fn oathtool(args: &[String]) -> Vec<String> {
    let out = Command::new("oathtool").args(args).output().unwrap_or_else(|e| {
        panic!("TWOFACTOR_INTEROP=1 but oathtool could not be run ({e}); install the Debian package oathtool")
    });
    assert!(
        out.status.success(),
        "oathtool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rng() -> StdRng {
    let seed: u64 = rand::rng().random();
    eprintln!("interop seed {seed}");
    StdRng::seed_from_u64(seed)
}

const ALGORITHMS: [Algorithm; 3] = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512];

#[test]
fn totp_matches_oathtool() {
    if !enabled() {
        return;
    }
    let mut rng = rng();
    let mut compared = 0;
    // 60 invocations, each checking a run of 5 consecutive steps (`-w 4`): 300 codes.
    for i in 0..60 {
        let algorithm = ALGORITHMS[i % 3];
        let len = rng.random_range(16..=64);
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        // oathtool supports 6, 7 and 8 digits.
        let digits = rng.random_range(6..=8u32);
        let period = [30u64, 60, rng.random_range(1..=120)][rng.random_range(0..3)];
        let unix = rng.random_range(0..=4_102_444_800u64); // until 2100
        let secret = Secret::from_bytes(&bytes).unwrap();
        let totp = Totp::builder(&secret)
            .algorithm(algorithm)
            .digits(digits)
            .period(period)
            .build()
            .unwrap();
        let args = vec![
            format!("--totp={}", algorithm.as_str().to_ascii_lowercase()),
            "-d".into(),
            digits.to_string(),
            "-s".into(),
            format!("{period}s"),
            "--now".into(),
            format!("@{unix}"),
            "-w".into(),
            "4".into(),
            hex(&bytes),
        ];
        let theirs = oathtool(&args);
        assert_eq!(theirs.len(), 5, "oathtool {args:?}");
        let step = totp.step_at(unix).unwrap();
        for (k, code) in theirs.iter().enumerate() {
            assert_eq!(
                totp.generate_step(step + k as u64).as_str(),
                code,
                "{algorithm}, {len}-byte secret, {digits} digits, period {period}, time {unix}+{k} steps"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 300);
}

#[test]
fn hotp_matches_oathtool() {
    if !enabled() {
        return;
    }
    let mut rng = rng();
    // oathtool's HOTP mode is HMAC-SHA-1 only (RFC 4226); the other algorithms share the same
    // HMAC/truncation code and are covered by the TOTP comparison above.
    let algorithm = Algorithm::Sha1;
    // 30 invocations of 5 consecutive counters: 150 codes.
    for _ in 0..30 {
        let len = rng.random_range(16..=64);
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        let digits = rng.random_range(6..=8u32);
        let counter = rng.random_range(0..=u64::from(u32::MAX) * 16);
        let secret = Secret::from_bytes(&bytes).unwrap();
        let hotp = Hotp::new(&secret, algorithm, digits).unwrap();
        let mut args = vec!["--hotp".to_owned()];
        args.extend([
            "-d".into(),
            digits.to_string(),
            "-c".into(),
            counter.to_string(),
            "-w".into(),
            "4".into(),
            hex(&bytes),
        ]);
        let theirs = oathtool(&args);
        assert_eq!(theirs.len(), 5, "oathtool {args:?}");
        for (k, code) in theirs.iter().enumerate() {
            assert_eq!(
                hotp.generate(counter + k as u64).as_str(),
                code,
                "HOTP {algorithm}, {len}-byte secret, {digits} digits, counter {counter}+{k}"
            );
        }
    }
}
