//! Properties of generate/verify, the window, HOTP look-ahead and base32, over generated inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use twofactor::{
    Algorithm, Error, Hotp, HotpOutcome, OtpError, Secret, Totp, TotpOutcome, Window, danger,
};

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::Sha1),
        Just(Algorithm::Sha256),
        Just(Algorithm::Sha512)
    ]
}

fn secret() -> impl Strategy<Value = Secret> {
    prop::collection::vec(any::<u8>(), Secret::MIN_LEN..=80)
        .prop_map(|bytes| Secret::from_bytes(&bytes).unwrap())
}

prop_compose! {
    /// A TOTP with random parameters and a random window inside the cap.
    fn totp()(
        secret in secret(),
        algorithm in algorithm(),
        digits in 6u32..=10,
        period in prop_oneof![Just(30u64), Just(60), 1u64..=300],
        t0 in prop_oneof![Just(0u64), 0u64..1_000_000],
        past in 0..=Window::MAX_STEPS,
        future in 0..=Window::MAX_STEPS,
    ) -> Totp {
        Totp::builder(&secret)
            .algorithm(algorithm)
            .digits(digits)
            .period(period)
            .t0(t0)
            .window(Window::new(past, future).unwrap())
            .build()
            .unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_at_t_verifies_at_t(totp in totp(), offset in 0u64..=1 << 40) {
        let t = totp.t0() + offset;
        let code = totp.generate_at(t).unwrap();
        prop_assert_eq!(code.as_str().len(), totp.digits().get() as usize);
        let outcome = totp.verify_at(code.as_str(), t).unwrap();
        let m = outcome.matched().unwrap();
        // Another step in the window may produce the same code by chance; the first match wins,
        // so the reported drift is never later than 0.
        prop_assert!(m.drift <= 0);
        prop_assert_eq!(totp.generate_step(m.step), code);
        prop_assert_eq!(m.step as i64 - totp.step_at(t).unwrap() as i64, m.drift);
    }

    /// The step is `(t - T0) / period` for every period and time, including the edges of the
    /// division-free path (periods up to 2^32 - 1, elapsed times up to 2^32 - 1) and past them.
    #[test]
    fn step_is_the_quotient(
        period in prop_oneof![
            Just(1u64), Just(2), Just(30), Just(60), 1u64..=1000,
            Just(u64::from(u32::MAX)), Just(u64::from(u32::MAX) + 1),
            (1u64 << 31)..=u64::from(u32::MAX), 1u64..=u64::MAX,
        ],
        elapsed in prop_oneof![
            Just(0u64), Just(u64::from(u32::MAX)), Just(u64::from(u32::MAX) + 1),
            (u64::from(u32::MAX) - 1000)..=u64::from(u32::MAX), 0u64..=u64::from(u32::MAX),
            any::<u64>(),
        ],
        t0 in prop_oneof![Just(0u64), 0u64..1_000_000],
    ) {
        let secret = Secret::from_bytes(&[7u8; 20]).unwrap();
        let totp = Totp::builder(&secret).period(period).t0(t0).build().unwrap();
        let Some(t) = t0.checked_add(elapsed) else { return Ok(()) };
        prop_assert_eq!(totp.step_at(t).unwrap(), elapsed / period);
    }

    #[test]
    fn code_k_steps_away_accepted_exactly_inside_window(
        totp in totp(),
        offset in 100_000u64..=1 << 40,
        k in -15i64..=15,
    ) {
        let t = totp.t0() + offset;
        let step = totp.step_at(t).unwrap();
        let target = step.checked_add_signed(k).unwrap();
        let code = totp.generate_step(target);
        let w = totp.window();
        let inside = -i64::from(w.past()) <= k && k <= i64::from(w.future());
        // Which steps of the window produce the same code (a 10^-6 chance per step at 6 digits).
        let first_twin = (-i64::from(w.past())..=i64::from(w.future()))
            .find(|&d| totp.generate_step(step.checked_add_signed(d).unwrap()) == code);
        match totp.verify_at(code.as_str(), t).unwrap() {
            TotpOutcome::Valid(m) => {
                prop_assert!(first_twin.is_some());
                prop_assert_eq!(Some(m.drift), first_twin);
                prop_assert_eq!(m.step, step.checked_add_signed(m.drift).unwrap());
                if inside {
                    prop_assert!(m.drift <= k);
                }
            }
            TotpOutcome::Invalid => {
                prop_assert!(!inside);
                prop_assert!(first_twin.is_none());
            }
        }
        if inside && first_twin == Some(k) {
            let m = totp.verify_at(code.as_str(), t).unwrap().matched().unwrap();
            prop_assert_eq!((m.step, m.drift), (target, k));
        }
    }

    #[test]
    fn hotp_look_ahead(
        secret in secret(),
        algorithm in algorithm(),
        digits in 6u32..=10,
        counter in 0u64..=u64::MAX - 200,
        look_ahead in 0..=Hotp::MAX_LOOK_AHEAD,
        k in 0u64..=120,
    ) {
        let hotp = Hotp::new(&secret, algorithm, digits).unwrap();
        let code = hotp.generate(counter + k);
        let first_twin = (0..=u64::from(look_ahead))
            .find(|&d| hotp.generate(counter + d) == code);
        match hotp.verify(code.as_str(), counter, look_ahead).unwrap() {
            HotpOutcome::Valid { counter: c } => {
                prop_assert_eq!(Some(c - counter), first_twin);
                if k <= u64::from(look_ahead) {
                    prop_assert!(c - counter <= k);
                }
            }
            HotpOutcome::Invalid => {
                prop_assert!(k > u64::from(look_ahead));
                prop_assert!(first_twin.is_none());
            }
        }
    }

    #[test]
    fn base32_round_trip(bytes in prop::collection::vec(any::<u8>(), Secret::MIN_LEN..=Secret::MAX_LEN)) {
        let secret = Secret::from_bytes(&bytes).unwrap();
        let encoded = secret.to_base32();
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        prop_assert_eq!(&Secret::from_base32(&encoded).unwrap(), &secret);
        // The way people paste it: lower case, in groups of four separated by spaces or hyphens.
        let pasted: String = encoded
            .to_ascii_lowercase()
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(if bytes[0] % 2 == 0 { " " } else { "-" });
        prop_assert_eq!(&Secret::from_base32(&pasted).unwrap(), &secret);
        // With `=` padding to a multiple of 8.
        let mut padded = encoded.to_string();
        while !padded.len().is_multiple_of(8) {
            padded.push('=');
        }
        prop_assert_eq!(&Secret::from_base32(&padded).unwrap(), &secret);
    }

    #[test]
    fn lenient_decoder_never_panics(input in any::<String>()) {
        match Secret::from_base32(&input) {
            Ok(secret) => prop_assert!(secret.len() >= Secret::MIN_LEN),
            Err(Error::Base32(_) | Error::Secret(_)) => {}
            Err(other) => prop_assert!(false, "unexpected error kind {other:?}"),
        }
    }

    #[test]
    fn lenient_decoder_never_panics_on_near_base32(
        input in "[A-Za-z2-7 =\\-]{0,64}[^A-Za-z2-7]?[A-Za-z2-7 =]{0,8}",
    ) {
        let _ = Secret::from_base32(&input);
    }

    #[test]
    fn bad_parameters_are_errors(
        secret in secret(),
        digits in prop_oneof![0u32..6, 11u32..=u32::MAX],
        past in Window::MAX_STEPS + 1..=u32::MAX,
        future in 0..=u32::MAX,
        bad_code in "[0-9]{0,5}|[0-9]{7,12}|[0-9]{0,5}[^0-9][0-9]{0,5}",
    ) {
        prop_assert_eq!(
            Totp::builder(&secret).digits(digits).build().unwrap_err(),
            OtpError::InvalidDigits(digits)
        );
        prop_assert_eq!(
            Hotp::new(&secret, Algorithm::Sha1, digits).unwrap_err(),
            OtpError::InvalidDigits(digits)
        );
        prop_assert_eq!(Totp::builder(&secret).period(0).build().unwrap_err(), OtpError::ZeroPeriod);
        assert!(matches!(Window::new(past, future), Err(OtpError::WindowTooLarge { .. })));
        assert!(matches!(Window::new(future, past), Err(OtpError::WindowTooLarge { .. })));
        if past <= Window::DANGER_MAX_STEPS {
            prop_assert!(danger::wide_window(past, 0).is_ok());
        } else {
            prop_assert!(danger::wide_window(past, 0).is_err());
        }
        let totp = Totp::builder(&secret).t0(1000).build().unwrap();
        // A typo is an ordinary wrong code; `Digits::check` tells it apart.
        prop_assert_eq!(totp.verify_at(&bad_code, 2000), Ok(TotpOutcome::Invalid));
        assert!(matches!(
            totp.digits().check(&bad_code),
            Err(OtpError::CodeLength { .. } | OtpError::CodeNotDigits)
        ));
        assert!(matches!(totp.verify_at("123456", 999), Err(OtpError::TimeBeforeT0 { .. })));
        assert!(matches!(totp.generate_at(999), Err(OtpError::TimeBeforeT0 { .. })));
        let hotp = Hotp::new(&secret, Algorithm::Sha1, 6).unwrap();
        prop_assert_eq!(hotp.verify("123456", u64::MAX, 1).unwrap_err(), OtpError::CounterOverflow);
        assert!(matches!(
            hotp.verify("123456", 0, Hotp::MAX_LOOK_AHEAD + 1),
            Err(OtpError::LookAheadTooLarge(_))
        ));
    }
}
