//! otpauth:// URI building and parsing: tables, every refusal, round trips, no panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use twofactor::error::{Base32Error, SecretError, UriError};
use twofactor::{Algorithm, OtpAuthUri, OtpKind, Secret};

/// RFC 4226 Appendix D secret "12345678901234567890" in base32.
const B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn secret() -> Secret {
    Secret::from_base32(B32).unwrap()
}

#[test]
fn build_table() {
    let cases: &[(OtpAuthUri, &str)] = &[
        (
            OtpAuthUri::totp_builder(secret(), "alice@example.com")
                .build()
                .unwrap(),
            "otpauth://totp/alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=SHA1&digits=6&period=30",
        ),
        (
            OtpAuthUri::totp_builder(secret(), "alice@example.com")
                .issuer("ACME Co")
                .algorithm(Algorithm::Sha256)
                .digits(8)
                .period(60)
                .build()
                .unwrap(),
            "otpauth://totp/ACME%20Co:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60",
        ),
        (
            OtpAuthUri::hotp_builder(secret(), "bob", 42)
                .issuer("Ex")
                .algorithm(Algorithm::Sha512)
                .build()
                .unwrap(),
            "otpauth://hotp/Ex:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Ex&algorithm=SHA512&digits=6&counter=42",
        ),
        (
            OtpAuthUri::totp_builder(secret(), "kirk")
                .issuer("Star Trek: Website")
                .build()
                .unwrap(),
            "otpauth://totp/Star%20Trek%3A%20Website:kirk?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Star%20Trek%3A%20Website&algorithm=SHA1&digits=6&period=30",
        ),
        (
            OtpAuthUri::totp_builder(secret(), "jürgen+1 a/b&c=d%e")
                .issuer("Café €")
                .build()
                .unwrap(),
            "otpauth://totp/Caf%C3%A9%20%E2%82%AC:j%C3%BCrgen%2B1%20a%2Fb%26c%3Dd%25e?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Caf%C3%A9%20%E2%82%AC&algorithm=SHA1&digits=6&period=30",
        ),
    ];
    for (uri, want) in cases {
        assert_eq!(uri.to_uri().as_str(), *want);
        assert_eq!(&OtpAuthUri::parse(want).unwrap(), uri, "{want}");
    }
}

#[test]
fn star_trek_colon() {
    let uri = "otpauth://totp/Star%20Trek%3A%20Website:kirk@enterprise?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Star%20Trek%3A%20Website";
    let parsed = OtpAuthUri::parse(uri).unwrap();
    assert_eq!(parsed.issuer(), Some("Star Trek: Website"));
    assert_eq!(parsed.account(), "kirk@enterprise");
    // An account with a colon, behind an issuer.
    let built = OtpAuthUri::totp_builder(secret(), "a:b")
        .issuer("x:y")
        .build()
        .unwrap();
    assert!(built.to_uri().contains("/x%3Ay:a%3Ab?"));
    assert_eq!(OtpAuthUri::parse(&built.to_uri()).unwrap(), built);
    // Without an issuer, an account with a colon would be misread by apps.
    assert_eq!(
        OtpAuthUri::totp_builder(secret(), "a:b")
            .build()
            .unwrap_err(),
        UriError::AmbiguousAccount
    );
}

/// (uri, issuer, account, algorithm, digits, kind)
type Expect = (
    &'static str,
    Option<&'static str>,
    &'static str,
    Algorithm,
    u32,
    OtpKind,
);

#[test]
fn parse_table() {
    let s = B32;
    let cases: Vec<(String, Expect)> = vec![
        // Scheme and type in any case.
        (
            format!("OTPAUTH://TOTP/Ex:alice?secret={s}"),
            (
                "",
                Some("Ex"),
                "alice",
                Algorithm::Sha1,
                6,
                OtpKind::Totp { period: 30 },
            ),
        ),
        (
            format!("otpAuth://Hotp/alice?Counter=7&SECRET={s}"),
            (
                "",
                None,
                "alice",
                Algorithm::Sha1,
                6,
                OtpKind::Hotp { counter: 7 },
            ),
        ),
        // `/` inside the label.
        (
            format!("otpauth://totp/ACME/EU:alice/admin?secret={s}"),
            (
                "",
                Some("ACME/EU"),
                "alice/admin",
                Algorithm::Sha1,
                6,
                OtpKind::Totp { period: 30 },
            ),
        ),
        // Encoded colon as the separator, and spaces before the account.
        (
            format!(
                "otpauth://totp/ACME%20Co%3A%20%20john.doe@email.com?secret={s}&issuer=ACME%20Co"
            ),
            (
                "",
                Some("ACME Co"),
                "john.doe@email.com",
                Algorithm::Sha1,
                6,
                OtpKind::Totp { period: 30 },
            ),
        ),
        // Literal colon, space after it.
        (
            format!("otpauth://totp/ACME%20Co:%20john?secret={s}"),
            (
                "",
                Some("ACME Co"),
                "john",
                Algorithm::Sha1,
                6,
                OtpKind::Totp { period: 30 },
            ),
        ),
        // Issuer only as parameter; params in any order; lower-case algorithm; unknown params.
        (
            format!(
                "otpauth://totp/john?period=60&image=https%3A%2F%2Fx%2Fa.png&digits=8&algorithm=sha256&issuer=Ex&secret={s}&color=ff0000"
            ),
            (
                "",
                Some("Ex"),
                "john",
                Algorithm::Sha256,
                8,
                OtpKind::Totp { period: 60 },
            ),
        ),
        // Secret in lower case, with padding (21 bytes), sha-512 spelled with a hyphen.
        (
            "otpauth://totp/Ex:j?secret=gezdgnbvgy3tqojqgezdgnbvgy3tqojqge======&algorithm=SHA-512"
                .to_owned(),
            (
                "",
                Some("Ex"),
                "j",
                Algorithm::Sha512,
                6,
                OtpKind::Totp { period: 30 },
            ),
        ),
        // Empty issuer parameter means none; fragment ignored; `+` is a literal plus.
        (
            format!("otpauth://totp/a+b@x?secret={s}&issuer=#frag"),
            (
                "",
                None,
                "a+b@x",
                Algorithm::Sha1,
                6,
                OtpKind::Totp { period: 30 },
            ),
        ),
        // Raw UTF-8 in the label and lower-case hex escapes.
        (
            format!("otpauth://totp/Caf%c3%a9:jürgen?secret={s}&issuer=Caf%C3%A9&&"),
            (
                "",
                Some("Café"),
                "jürgen",
                Algorithm::Sha1,
                6,
                OtpKind::Totp { period: 30 },
            ),
        ),
        (
            format!("otpauth://hotp/Ex:a?secret={s}&counter=18446744073709551615&digits=10"),
            (
                "",
                Some("Ex"),
                "a",
                Algorithm::Sha1,
                10,
                OtpKind::Hotp { counter: u64::MAX },
            ),
        ),
    ];
    for (uri, (_, issuer, account, algorithm, digits, kind)) in cases {
        let p = OtpAuthUri::parse(&uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert_eq!(p.issuer(), issuer, "{uri}");
        assert_eq!(p.account(), account, "{uri}");
        assert_eq!(p.algorithm(), algorithm, "{uri}");
        assert_eq!(p.digits().get(), digits, "{uri}");
        assert_eq!(p.kind(), kind, "{uri}");
        assert!(p.secret().len() >= 16);
        // Whatever was parsed can be written and read back unchanged.
        assert_eq!(OtpAuthUri::parse(&p.to_uri()).unwrap(), p);
    }
}

#[test]
fn refusals() {
    let s = B32;
    let long = format!("otpauth://totp/a?secret={s}&x={}", "a".repeat(5000));
    let cases: Vec<(String, UriError)> = vec![
        (
            format!("https://totp/a?secret={s}"),
            UriError::InvalidScheme,
        ),
        (
            format!("otpauth:totp/a?secret={s}"),
            UriError::InvalidScheme,
        ),
        (
            format!("otpauth-migration://offline?data={s}"),
            UriError::InvalidScheme,
        ),
        (String::new(), UriError::InvalidScheme),
        (
            format!("otpauth://motp/a?secret={s}"),
            UriError::UnknownType,
        ),
        (format!("otpauth://?secret={s}"), UriError::UnknownType),
        (format!("otpauth://totp?secret={s}"), UriError::MissingLabel),
        (
            format!("otpauth://totp/?secret={s}"),
            UriError::MissingLabel,
        ),
        (
            format!("otpauth://totp/Ex:?secret={s}"),
            UriError::EmptyAccount,
        ),
        (
            format!("otpauth://totp/:a?secret={s}"),
            UriError::EmptyIssuer,
        ),
        ("otpauth://totp/a".to_owned(), UriError::MissingSecret),
        (
            "otpauth://totp/a?issuer=x".to_owned(),
            UriError::MissingSecret,
        ),
        ("otpauth://totp/a?secret=".to_owned(), UriError::EmptySecret),
        (
            "otpauth://totp/a?secret=%20".to_owned(),
            UriError::EmptySecret,
        ),
        (
            "otpauth://totp/a?secret=GEZD1NBV".to_owned(),
            UriError::InvalidSecret(Base32Error::InvalidCharacter {
                character: '1',
                position: 4,
            }),
        ),
        (
            "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP".to_owned(),
            UriError::Secret(SecretError::TooShort { len: 10, min: 16 }),
        ),
        (
            format!("otpauth://totp/a?secret={s}&secret={s}"),
            UriError::DuplicateParameter { name: "secret" },
        ),
        (
            format!("otpauth://totp/a?secret={s}&Digits=6&digits=6"),
            UriError::DuplicateParameter { name: "digits" },
        ),
        (
            format!("otpauth://totp/a?issuer=x&secret={s}&issuer=x"),
            UriError::DuplicateParameter { name: "issuer" },
        ),
        (
            format!("otpauth://totp/a?secret={s}&algorithm=SHA1&algorithm=SHA1"),
            UriError::DuplicateParameter { name: "algorithm" },
        ),
        (
            format!("otpauth://totp/a?secret={s}&period=30&period=30"),
            UriError::DuplicateParameter { name: "period" },
        ),
        (
            format!("otpauth://hotp/a?secret={s}&counter=1&counter=1"),
            UriError::DuplicateParameter { name: "counter" },
        ),
        (
            format!("otpauth://totp/a?secret={s}&digits=5"),
            UriError::OutOfRange {
                name: "digits",
                min: 6,
                max: 10,
            },
        ),
        (
            format!("otpauth://totp/a?secret={s}&digits=11"),
            UriError::OutOfRange {
                name: "digits",
                min: 6,
                max: 10,
            },
        ),
        (
            format!("otpauth://totp/a?secret={s}&digits=99999999999999999999999"),
            UriError::OutOfRange {
                name: "digits",
                min: 6,
                max: 10,
            },
        ),
        (
            format!("otpauth://totp/a?secret={s}&digits=six"),
            UriError::NotANumber { name: "digits" },
        ),
        (
            format!("otpauth://totp/a?secret={s}&digits=+6"),
            UriError::NotANumber { name: "digits" },
        ),
        (
            format!("otpauth://totp/a?secret={s}&period=0"),
            UriError::OutOfRange {
                name: "period",
                min: 1,
                max: 86_400,
            },
        ),
        (
            format!("otpauth://totp/a?secret={s}&period=86401"),
            UriError::OutOfRange {
                name: "period",
                min: 1,
                max: 86_400,
            },
        ),
        (
            format!("otpauth://totp/a?secret={s}&period=-30"),
            UriError::NotANumber { name: "period" },
        ),
        (
            format!("otpauth://totp/a?secret={s}&period="),
            UriError::NotANumber { name: "period" },
        ),
        (
            format!("otpauth://hotp/a?secret={s}&counter=1.5"),
            UriError::NotANumber { name: "counter" },
        ),
        (
            format!("otpauth://hotp/a?secret={s}&counter=18446744073709551616"),
            UriError::OutOfRange {
                name: "counter",
                min: 0,
                max: u64::MAX,
            },
        ),
        (
            format!("otpauth://totp/a?secret={s}&algorithm=MD5"),
            UriError::UnknownAlgorithm,
        ),
        (
            format!("otpauth://totp/a?secret={s}&algorithm=SHA3-256"),
            UriError::UnknownAlgorithm,
        ),
        (
            format!("otpauth://totp/a%2?secret={s}"),
            UriError::InvalidPercentEncoding { position: 16 },
        ),
        (
            format!("otpauth://totp/a?secret={s}&issuer=%G1"),
            UriError::InvalidPercentEncoding { position: 64 },
        ),
        (
            format!("otpauth://totp/a?secret={s}&image=%"),
            UriError::InvalidPercentEncoding { position: 63 },
        ),
        (
            format!("otpauth://totp/a%FF?secret={s}"),
            UriError::InvalidUtf8 { part: "label" },
        ),
        (
            format!("otpauth://totp/a?secret={s}&issuer=%C3%28"),
            UriError::InvalidUtf8 { part: "issuer" },
        ),
        (
            format!("otpauth://totp/Google:a?secret={s}&issuer=Evil"),
            UriError::IssuerMismatch,
        ),
        (
            format!("otpauth://totp/google:a?secret={s}&issuer=Google"),
            UriError::IssuerMismatch,
        ),
        (
            format!("otpauth://hotp/a?secret={s}"),
            UriError::MissingCounter,
        ),
        (
            format!("otpauth://totp/{}:a?secret={s}", "i".repeat(129)),
            UriError::IssuerTooLong { max: 128 },
        ),
        (
            format!("otpauth://totp/{}?secret={s}", "a".repeat(257)),
            UriError::AccountTooLong { max: 256 },
        ),
        (
            long.clone(),
            UriError::TooLong {
                len: long.len(),
                max: 4096,
            },
        ),
    ];
    for (uri, want) in cases {
        let got = OtpAuthUri::parse(&uri);
        assert_eq!(got.as_ref().err(), Some(&want), "{uri}");
        // The message never echoes the secret.
        assert!(!want.to_string().contains(B32));
    }
}

#[test]
fn build_refusals() {
    let b = || OtpAuthUri::totp_builder(secret(), "alice");
    assert_eq!(
        b().digits(5).build().unwrap_err(),
        UriError::OutOfRange {
            name: "digits",
            min: 6,
            max: 10
        }
    );
    assert_eq!(
        b().period(0).build().unwrap_err(),
        UriError::OutOfRange {
            name: "period",
            min: 1,
            max: 86_400
        }
    );
    assert_eq!(b().issuer("").build().unwrap_err(), UriError::EmptyIssuer);
    assert_eq!(
        b().issuer("i".repeat(129)).build().unwrap_err(),
        UriError::IssuerTooLong { max: 128 }
    );
    assert!(b().issuer("i".repeat(128)).build().is_ok());
    assert_eq!(
        OtpAuthUri::totp_builder(secret(), "").build().unwrap_err(),
        UriError::EmptyAccount
    );
    assert_eq!(
        OtpAuthUri::totp_builder(secret(), " a")
            .build()
            .unwrap_err(),
        UriError::AccountLeadingWhitespace
    );
    assert_eq!(
        OtpAuthUri::totp_builder(secret(), "a".repeat(257))
            .build()
            .unwrap_err(),
        UriError::AccountTooLong { max: 256 }
    );
    // The largest URI the limits allow still parses (it stays under MAX_LEN).
    let big = OtpAuthUri::totp_builder(Secret::from_bytes(&[7u8; 1024]).unwrap(), "€".repeat(85))
        .issuer("€".repeat(42))
        .build()
        .unwrap();
    assert!(big.to_uri().len() <= OtpAuthUri::MAX_LEN);
    assert_eq!(OtpAuthUri::parse(&big.to_uri()).unwrap(), big);
}

#[test]
fn short_secret_escape_hatch() {
    let uri = "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example";
    let p = twofactor::danger::parse_uri_allowing_short_secret(uri).unwrap();
    assert_eq!(p.secret().expose_secret(), b"Hello!\xde\xad\xbe\xef");
    assert_eq!(
        twofactor::danger::parse_uri_allowing_short_secret(&p.to_uri()).unwrap(),
        p
    );
}

#[test]
fn debug_redacts_secret() {
    let uri = OtpAuthUri::totp_builder(secret(), "alice")
        .issuer("Ex")
        .build()
        .unwrap();
    let dbg = format!("{uri:?}");
    assert!(dbg.contains("[REDACTED]") && !dbg.contains(B32) && !dbg.contains("49, 50"));
    let builder = OtpAuthUri::totp_builder(secret(), "alice");
    assert!(!format!("{builder:?}").contains(B32));
}

#[test]
fn otp_from_uri() {
    // RFC 6238 Appendix B, SHA-1, T = 59 -> 94287082 (8 digits).
    let t = OtpAuthUri::parse(&format!("otpauth://totp/a?secret={B32}&digits=8")).unwrap();
    assert_eq!(
        t.totp().unwrap().generate_at(59).unwrap().as_str(),
        "94287082"
    );
    assert!(t.hotp().is_err());
    // RFC 4226 Appendix D, counter 1 -> 287082.
    let h = OtpAuthUri::parse(&format!("otpauth://hotp/a?secret={B32}&counter=1")).unwrap();
    assert_eq!(
        h.hotp().unwrap().generate(h.counter().unwrap()).as_str(),
        "287082"
    );
    assert!(matches!(
        h.totp(),
        Err(twofactor::Error::Uri(UriError::WrongType {
            expected: "totp",
            actual: "hotp"
        }))
    ));
}

fn name_strategy() -> impl Strategy<Value = String> {
    // Unicode, spaces and every character with a meaning in a URI.
    let pieces = prop::sample::select(vec![
        "a", "Z", "0", " ", "&", "=", "%", "/", "+", "@", ":", "?", "#", "é", "€", "日本", "😀",
        "-", ".", "~", "%3A", "%20",
    ]);
    prop::collection::vec(pieces, 1..12).prop_map(|v| v.concat())
}

fn uri_strategy() -> impl Strategy<Value = OtpAuthUri> {
    (
        prop::collection::vec(any::<u8>(), 16..80),
        prop::option::of(name_strategy()),
        name_strategy(),
        prop::sample::select(vec![Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512]),
        6u32..=10,
        prop_oneof![
            (1u64..=86_400).prop_map(|period| OtpKind::Totp { period }),
            any::<u64>().prop_map(|counter| OtpKind::Hotp { counter }),
        ],
    )
        .prop_filter_map(
            "valid per the documented rules",
            |(bytes, issuer, account, alg, digits, kind)| {
                let secret = Secret::from_bytes(&bytes).ok()?;
                let mut b = match kind {
                    OtpKind::Totp { period } => {
                        OtpAuthUri::totp_builder(secret, account).period(period)
                    }
                    OtpKind::Hotp { counter } => OtpAuthUri::hotp_builder(secret, account, counter),
                };
                if let Some(issuer) = issuer {
                    b = b.issuer(issuer);
                }
                b.algorithm(alg).digits(digits).build().ok()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip(uri in uri_strategy()) {
        let text = uri.to_uri();
        prop_assert!(!text.contains(' ') && !text.contains('+'));
        prop_assert_eq!(OtpAuthUri::parse(&text).unwrap(), uri);
    }

    #[test]
    fn builder_only_refuses_documented_cases(issuer in prop::option::of(name_strategy()), account in name_strategy()) {
        let r = {
            let b = OtpAuthUri::totp_builder(secret(), account.clone());
            match &issuer { Some(i) => b.issuer(i.clone()), None => b }.build()
        };
        match r {
            Ok(u) => prop_assert_eq!(OtpAuthUri::parse(&u.to_uri()).unwrap(), u),
            Err(UriError::AccountLeadingWhitespace) => prop_assert!(account.starts_with(' ')),
            Err(UriError::AmbiguousAccount) => prop_assert!(issuer.is_none() && account.contains(':')),
            Err(UriError::IssuerTooLong { .. } | UriError::AccountTooLong { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,300}") {
        let _ = OtpAuthUri::parse(&s);
    }

    #[test]
    fn parse_never_panics_near_valid(
        prefix in prop::sample::select(vec!["otpauth://totp/", "otpauth://hotp/", "OTPAUTH://TOTP/", "otpauth://"]),
        rest in "[a-zA-Z0-9%:/?&=#@+ .é-]{0,200}",
    ) {
        let _ = OtpAuthUri::parse(&format!("{prefix}{rest}"));
    }
}
