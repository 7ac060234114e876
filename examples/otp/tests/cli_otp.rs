//! The `otp` CLI, run as a process: outputs, exit codes, and no panics on bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

/// RFC 6238 Appendix B, SHA-1 seed "12345678901234567890" in base32.
const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn otp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otp"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Asserts exit code 2 with exactly one line on stderr and no panic.
fn assert_usage_error(args: &[&str], mentions: &str) {
    let o = otp(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err:?}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(
        err.contains(mentions),
        "{args:?}: {err:?} should mention {mentions:?}"
    );
    assert!(stdout(&o).is_empty(), "{args:?}");
}

#[test]
fn rfc6238_vector_through_the_cli() {
    let o = otp(&[
        "code", "--secret", RFC_SECRET, "--digits", "8", "--time", "59",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "94287082\n");
    // SHA-256 with its 32-byte seed (RFC 6238 erratum), algorithm name in any case.
    let o = otp(&[
        "code",
        "--secret",
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA",
        "--algorithm",
        "Sha256",
        "--digits=8",
        "--time",
        "1111111109",
    ]);
    assert_eq!(stdout(&o), "68084774\n", "{}", stderr(&o));
    // Lenient secret input: lower case with spaces.
    let o = otp(&[
        "code",
        "--secret",
        "gezd gnbv gy3t qojq gezd gnbv gy3t qojq",
        "--digits",
        "8",
        "--time",
        "1234567890",
    ]);
    assert_eq!(stdout(&o), "89005924\n");
}

#[test]
fn hotp_code_and_verify() {
    // RFC 4226 Appendix D, counter 5.
    let o = otp(&["code", "--hotp", "--counter", "5", "--secret", RFC_SECRET]);
    assert_eq!(stdout(&o), "254676\n");
    let o = otp(&[
        "verify",
        "--hotp",
        "--counter",
        "3",
        "--future",
        "4",
        "--secret",
        RFC_SECRET,
        "--code",
        "162583",
    ]);
    assert_eq!(
        (o.status.code(), stdout(&o)),
        (Some(0), "ok counter=7\n".into())
    );
    let o = otp(&[
        "verify",
        "--hotp",
        "--counter",
        "3",
        "--future",
        "3",
        "--secret",
        RFC_SECRET,
        "--code",
        "162583",
    ]);
    assert_eq!((o.status.code(), stdout(&o)), (Some(1), "invalid\n".into()));
}

#[test]
fn verify_reports_step_and_drift() {
    let base = ["--secret", RFC_SECRET, "--digits", "8", "--time"];
    // 1111111109 is the last second of step 0x23523EC = 37037036 (07081804); 14050471 is the
    // code of the next step.
    let run = |time: &str, code: &str, extra: &[&str]| {
        let mut args = vec!["verify"];
        args.extend_from_slice(&base);
        args.extend([time, "--code", code]);
        args.extend_from_slice(extra);
        let o = otp(&args);
        (o.status.code(), stdout(&o))
    };
    assert_eq!(
        run("1111111109", "07081804", &[]),
        (Some(0), "ok step=37037036 drift=0\n".into())
    );
    assert_eq!(
        run("1111111109", "14050471", &[]),
        (Some(0), "ok step=37037037 drift=1\n".into())
    );
    assert_eq!(
        run("1111111139", "07081804", &[]),
        (Some(0), "ok step=37037036 drift=-1\n".into())
    );
    assert_eq!(
        run("1111111141", "07081804", &[]),
        (Some(1), "invalid\n".into())
    );
    assert_eq!(
        run("1111111141", "07081804", &["--past", "2", "--future", "0"]),
        (Some(0), "ok step=37037036 drift=-2\n".into())
    );
    assert_eq!(
        run("1111111109", "14050471", &["--future", "0"]),
        (Some(1), "invalid\n".into())
    );
    assert_eq!(
        run("1111111109", "00000000", &[]),
        (Some(1), "invalid\n".into())
    );
}

#[test]
fn diagnose_names_the_offset() {
    // The code of 1111111109 checked 3 steps (90 s) later: the device is 90 s behind.
    let o = otp(&[
        "diagnose",
        "--secret",
        RFC_SECRET,
        "--digits",
        "8",
        "--time",
        "1111111199",
        "--code",
        "07081804",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("match offset_steps=-3 offset_seconds=-90: "),
        "{out}"
    );
    assert!(out.contains("90 s behind"), "{out}");
    let o = otp(&[
        "diagnose",
        "--secret",
        RFC_SECRET,
        "--digits",
        "8",
        "--time",
        "1111111109",
        "--code",
        "14050471",
    ]);
    assert!(
        stdout(&o).starts_with("match offset_steps=1 offset_seconds=30"),
        "{}",
        stdout(&o)
    );
    let o = otp(&[
        "diagnose",
        "--secret",
        RFC_SECRET,
        "--digits",
        "8",
        "--time",
        "2000000000",
        "--code",
        "07081804",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).starts_with("no match within ±20 steps (±600 s)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn new_secret_round_trips() {
    for (alg, chars) in [("sha1", 32), ("SHA256", 52), ("Sha512", 103)] {
        let o = otp(&["new", "--algorithm", alg]);
        assert_eq!(o.status.code(), Some(0));
        let secret = stdout(&o).trim_end().to_owned();
        assert_eq!(secret.len(), chars, "{alg}: {secret}");
        let o = otp(&[
            "code",
            "--secret",
            &secret,
            "--algorithm",
            alg,
            "--time",
            "0",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stdout(&o).trim_end().len(), 6);
    }
    let a = stdout(&otp(&["new"]));
    let b = stdout(&otp(&["new"]));
    assert_ne!(a, b);
}

#[test]
fn bad_input_is_a_one_line_error_with_exit_2() {
    let s = RFC_SECRET;
    assert_usage_error(&[], "usage");
    assert_usage_error(&["frobnicate"], "unknown command");
    assert_usage_error(&["code"], "--secret is required");
    assert_usage_error(&["code", "--secret", "not base32!"], "--secret");
    assert_usage_error(&["code", "--secret", "GEZDGNBV"], "--secret");
    assert_usage_error(&["code", "--secret", s, "--digits", "5"], "digits");
    assert_usage_error(&["code", "--secret", s, "--digits", "11"], "digits");
    assert_usage_error(&["code", "--secret", s, "--digits", "x"], "--digits");
    assert_usage_error(&["code", "--secret", s, "--period", "0"], "period");
    assert_usage_error(&["code", "--secret", s, "--time", "-1"], "negative");
    assert_usage_error(&["code", "--secret", s, "--time=-1"], "negative");
    assert_usage_error(
        &["code", "--secret", s, "--time", "99999999999999999999999"],
        "--time",
    );
    assert_usage_error(
        &["code", "--secret", s, "--algorithm", "md5"],
        "--algorithm",
    );
    assert_usage_error(&["code", "--secret", s, "--bogus"], "unknown option");
    assert_usage_error(&["code", "--secret", s, "stray"], "unexpected argument");
    assert_usage_error(&["code", "--secret"], "needs a value");
    assert_usage_error(&["code", "--secret", s, "--hotp"], "--counter");
    assert_usage_error(&["code", "--secret", s, "--counter", "1"], "--hotp");
    assert_usage_error(&["verify", "--secret", s], "--code is required");
    assert_usage_error(&["verify", "--secret", s, "--code", "12345"], "digits");
    assert_usage_error(&["verify", "--secret", s, "--code", "12345a"], "digits");
    assert_usage_error(
        &["verify", "--secret", s, "--code", "123456", "--past", "11"],
        "window",
    );
    assert_usage_error(
        &[
            "verify", "--secret", s, "--code", "123456", "--future", "-1",
        ],
        "negative",
    );
    assert_usage_error(
        &[
            "diagnose", "--secret", s, "--code", "123456", "--range", "100000",
        ],
        "range",
    );
    assert_usage_error(
        &[
            "diagnose",
            "--secret",
            s,
            "--hotp",
            "--counter",
            "1",
            "--code",
            "123456",
        ],
        "TOTP",
    );
    assert_usage_error(&["new", "--algorithm", "sha3"], "--algorithm");
}

#[test]
fn backup_codes_prints_a_fresh_normalisable_set() {
    let o = otp(&["backup-codes", "--count", "5"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let codes: Vec<&str> = out.lines().collect();
    assert_eq!(codes.len(), 5, "{out}");
    for code in &codes {
        assert_eq!(code.len(), 14, "{code}");
        assert_eq!((&code[4..5], &code[9..10]), ("-", "-"), "{code}");
        assert!(
            twofactor::backup_codes::looks_like_backup_code(code),
            "{code}"
        );
    }
    let mut unique = codes.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 5, "codes repeat: {out}");
    // The default is a set of 8, and two runs never print the same set.
    let again = stdout(&otp(&["backup-codes"]));
    assert_eq!(again.lines().count(), 8);
    assert!(again.lines().all(|c| !codes.contains(&c)));

    assert_usage_error(&["backup-codes", "--count", "0"], "--count");
    assert_usage_error(&["backup-codes", "--count", "101"], "--count");
    assert_usage_error(&["backup-codes", "--count", "x"], "--count");
    assert_usage_error(&["backup-codes", "--bogus"], "--bogus");
}

/// The classic 80-bit secret of many tutorials: refused with a hint at the CLI flag, accepted
/// with it. 996554 at T=59 is what Python's hmac and oathtool compute for it.
#[test]
fn legacy_short_secrets_need_an_explicit_flag() {
    let legacy = "JBSWY3DPEHPK3PXP";
    assert_usage_error(
        &["code", "--secret", legacy, "--time", "59"],
        "--allow-short-secret",
    );
    let o = otp(&[
        "code",
        "--secret",
        legacy,
        "--time",
        "59",
        "--allow-short-secret",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "996554\n");
    let uri = format!("otpauth://totp/Example:alice?secret={legacy}&issuer=Example");
    assert_usage_error(&["parse", &uri], "--allow-short-secret");
    let o = otp(&["parse", &uri, "--allow-short-secret"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains(legacy));
}
