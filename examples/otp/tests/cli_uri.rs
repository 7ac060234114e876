//! The `otp uri`, `otp parse` and `otp qr` commands, run as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

fn otp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otp"))
        .args(args)
        .output()
        .unwrap()
}

const B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

#[test]
fn uri_then_parse() {
    let out = otp(&[
        "uri",
        "--secret",
        B32,
        "--account",
        "kirk@enterprise",
        "--issuer",
        "Star Trek: Website",
        "--algorithm",
        "sha256",
        "--digits",
        "8",
        "--period",
        "60",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uri = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        uri.trim_end(),
        format!(
            "otpauth://totp/Star%20Trek%3A%20Website:kirk@enterprise?secret={B32}&issuer=Star%20Trek%3A%20Website&algorithm=SHA256&digits=8&period=60"
        )
    );
    let out = otp(&["parse", uri.trim_end()]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"type": "totp", "issuer": "Star Trek: Website", "account": "kirk@enterprise",
            "secret": B32, "algorithm": "SHA256", "digits": 8, "period": 60, "counter": null})
    );
}

#[test]
fn hotp_uri_and_parse() {
    let out = otp(&[
        "uri",
        "--secret",
        B32,
        "--account",
        "bob",
        "--hotp",
        "--counter",
        "5",
    ]);
    assert!(out.status.success());
    let uri = String::from_utf8(out.stdout).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&otp(&["parse", uri.trim_end()]).stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"type": "hotp", "issuer": null, "account": "bob", "secret": B32,
            "algorithm": "SHA1", "digits": 6, "period": null, "counter": 5})
    );
    // --hotp without a counter is a usage error.
    let out = otp(&["uri", "--secret", B32, "--account", "bob", "--hotp"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_uri_exits_2_with_one_line() {
    for bad in [
        "https://example.com",
        "otpauth://totp/a?secret=GEZD1NBV",
        "otpauth://hotp/a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    ] {
        let out = otp(&["parse", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!err.contains("GEZD"), "error echoes the secret: {err}");
    }
}

#[test]
fn qr_outputs() {
    let uri = format!("otpauth://totp/Ex:alice?secret={B32}&issuer=Ex");
    let dir = std::env::temp_dir().join(format!("twofactor-cli-qr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("code.png");
    let svg = dir.join("code.svg");
    assert!(
        otp(&["qr", &uri, "--out", png.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        otp(&["qr", &uri, "--out", svg.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    let term = otp(&["qr", &uri]);
    assert!(term.status.success());
    let text = String::from_utf8(term.stdout).unwrap();
    assert!(text.contains('▀') || text.contains('▄'));
    assert_eq!(otp(&["qr", &uri, "--out", "x.gif"]).status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
