//! Fuzzes lenient base32 secret decoding: `Secret::from_base32`, and the short-secret path that
//! `twofactor::danger::parse_uri_allowing_short_secret` takes for legacy 80-bit secrets.
//!
//! Neither may panic. Both must agree with a small reference decoder written from the documented
//! rules (any case; spaces, hyphens and tabs ignored; `=` only at the end; trailing bits not
//! checked), and whatever decodes must survive `to_base32` and decoding again with equal bytes.
//! Bytes are compared, never text: the lenient input and the canonical output differ.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twofactor::error::{Base32Error, SecretError};
use twofactor::{Error, OtpAuthUri, Secret};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let expected = reference_decode(text);

    match Secret::from_base32(text) {
        Ok(secret) => {
            let bytes = expected
                .as_deref()
                .expect("the reference decoder accepts it too");
            assert_eq!(secret.expose_secret(), bytes, "decoded bytes differ");
            assert!(secret.len() >= Secret::MIN_LEN);
            round_trip(&secret);
        }
        Err(Error::Secret(SecretError::TooShort { len, min })) => {
            let bytes = expected.as_deref().expect("too short means it decoded");
            assert_eq!((len, min), (bytes.len(), Secret::MIN_LEN));
        }
        Err(Error::Base32(error)) => {
            assert!(
                expected.is_none(),
                "refused what the reference accepts: {error:?}"
            );
            check_error(text, &error);
        }
        Err(other) => panic!("unexpected error kind {other:?}"),
    }

    // The short-secret path decodes with the same function but keeps any non-empty result.
    if let Some(uri) = uri_with_secret(text) {
        match twofactor::danger::parse_uri_allowing_short_secret(&uri) {
            Ok(parsed) => {
                let bytes = expected
                    .as_deref()
                    .expect("the reference decoder accepts it too");
                assert_eq!(parsed.secret().expose_secret(), bytes, "short path differs");
                let short = twofactor::danger::short_secret(bytes).expect("non-empty, bounded");
                let again = uri_with_secret(&short.to_base32()).expect("canonical text fits");
                let reparsed = twofactor::danger::parse_uri_allowing_short_secret(&again)
                    .expect("canonical base32 parses");
                assert_eq!(reparsed.secret().expose_secret(), bytes, "short round trip");
            }
            Err(_) => assert!(expected.is_none(), "URI path refused a valid secret"),
        }
    }
});

/// `to_base32` is canonical (upper case, unpadded, shortest length) and decodes to equal bytes.
fn round_trip(secret: &Secret) {
    let encoded = secret.to_base32();
    assert_eq!(encoded.len(), (secret.len() * 8).div_ceil(5));
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    );
    let again = Secret::from_base32(&encoded).expect("canonical base32 decodes");
    assert_eq!(
        again.expose_secret(),
        secret.expose_secret(),
        "round trip changed bytes"
    );
    assert_eq!(*again.to_base32(), *encoded, "encoding is not canonical");
}

/// An error names what the input really holds at the position it reports.
fn check_error(text: &str, error: &Base32Error) {
    match *error {
        Base32Error::InvalidCharacter {
            character,
            position,
        } => {
            assert_eq!(text.chars().nth(position), Some(character), "{error:?}");
            assert!(!character.is_ascii_alphanumeric() || "0189".contains(character));
        }
        Base32Error::MisplacedPadding { position } => {
            assert_eq!(text.chars().nth(position), Some('='), "{error:?}");
        }
        _ => {}
    }
}

/// The documented decoding rules, written independently of the crate.
fn reference_decode(text: &str) -> Option<Vec<u8>> {
    let max_chars = (Secret::MAX_LEN * 8).div_ceil(5);
    let mut values = Vec::new();
    let mut padded = false;
    for c in text.chars() {
        let value = match c {
            ' ' | '-' | '\t' => continue,
            '=' => {
                padded = true;
                continue;
            }
            'A'..='Z' => c as u8 - b'A',
            'a'..='z' => c as u8 - b'a',
            '2'..='7' => c as u8 - b'2' + 26,
            _ => return None,
        };
        if padded || values.len() == max_chars {
            return None;
        }
        values.push(value);
    }
    if values.is_empty() || matches!(values.len() % 8, 1 | 3 | 6) {
        return None;
    }
    let mut out = Vec::with_capacity(values.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in values {
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (out.len() <= Secret::MAX_LEN).then_some(out)
}

/// `otpauth://totp/a?secret=<text>`, percent-encoding everything but letters, digits and `-`;
/// `None` when that would exceed the URI length limit.
fn uri_with_secret(text: &str) -> Option<String> {
    let mut uri = String::from("otpauth://totp/a?secret=");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    (uri.len() <= OtpAuthUri::MAX_LEN).then_some(uri)
}
