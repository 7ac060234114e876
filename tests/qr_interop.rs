//! The PNG QR codes decode, with zbarimg, to exactly the URI. Runs when `TWOFACTOR_INTEROP=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use twofactor::{Algorithm, OtpAuthUri, Qr, Secret};

/// Whether to run; follows the switch rules every interop test shares.
fn enabled() -> bool {
    if std::env::var("TWOFACTOR_INTEROP").is_ok_and(|v| v == "1") {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but TWOFACTOR_INTEROP is not 1: the zbarimg interop test must run in CI"
    );
    eprintln!("skipped: set TWOFACTOR_INTEROP=1 to decode QR codes with zbarimg");
    false
}

/// Decodes `png` with zbarimg and returns the raw bytes of the first symbol.
fn zbar_decode(png: &[u8], name: &str) -> Vec<u8> {
    let path = std::env::temp_dir().join(format!("twofactor-qr-{}-{name}.png", std::process::id()));
    std::fs::write(&path, png).unwrap();
    // -Sbinary: the bytes exactly as stored, without zbar's character-set guessing.
    let out = Command::new("zbarimg")
        .args(["--raw", "-q", "-Sbinary"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("TWOFACTOR_INTEROP=1 but zbarimg cannot run ({e}); install zbar-tools")
        });
    std::fs::remove_file(&path).unwrap();
    assert!(
        out.status.success(),
        "zbarimg found no QR code in {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut bytes = out.stdout;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    bytes
}

fn secret(alg: Algorithm) -> Secret {
    Secret::from_bytes(&(0u8..64).collect::<Vec<_>>()[..alg.output_len()]).unwrap()
}

#[test]
fn png_decodes_to_the_exact_uri() {
    if !enabled() {
        return;
    }
    let uris = [
        OtpAuthUri::totp_builder(secret(Algorithm::Sha1), "alice@example.com")
            .issuer("Example")
            .build()
            .unwrap(),
        OtpAuthUri::totp_builder(secret(Algorithm::Sha256), "kirk")
            .issuer("Star Trek: Website")
            .algorithm(Algorithm::Sha256)
            .digits(8)
            .period(60)
            .build()
            .unwrap(),
        OtpAuthUri::totp_builder(secret(Algorithm::Sha512), "jürgen@müller.de")
            .issuer("Café € 日本 😀")
            .algorithm(Algorithm::Sha512)
            .build()
            .unwrap(),
        OtpAuthUri::hotp_builder(secret(Algorithm::Sha1), "a&b=c%d/e+f g", 12345)
            .issuer("x:y")
            .build()
            .unwrap(),
    ];
    for (i, uri) in uris.iter().enumerate() {
        let text = uri.to_uri();
        // The data URL carries the same PNG.
        let url = Qr::new(uri).unwrap().to_data_url().unwrap();
        let b64 = url.strip_prefix("data:image/png;base64,").unwrap();
        let png = data_encoding::BASE64.decode(b64.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(zbar_decode(&png, &format!("{i}-url"))).unwrap(),
            text.as_str()
        );
        for px in [Qr::DEFAULT_MODULE_PX, 3] {
            let png = Qr::new(uri)
                .unwrap()
                .module_size(px)
                .unwrap()
                .to_png()
                .unwrap();
            let decoded = zbar_decode(&png, &format!("{i}-{px}"));
            assert_eq!(String::from_utf8(decoded).unwrap(), text.as_str());
            assert_eq!(OtpAuthUri::parse(&text).unwrap(), *uri);
        }
    }
}

#[test]
fn raw_utf8_text_comes_back_byte_for_byte() {
    if !enabled() {
        return;
    }
    // Not what OtpAuthUri writes (it percent-encodes), but a URI built elsewhere may carry raw
    // UTF-8; the code must hold its bytes unchanged.
    let text = "otpauth://totp/Café:jürgen日本?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Café";
    let png = Qr::from_text(text).unwrap().to_png().unwrap();
    assert_eq!(zbar_decode(&png, "raw-utf8"), text.as_bytes());
}
