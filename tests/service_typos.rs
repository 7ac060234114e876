//! A typo costs nothing: input that cannot be a code is `Malformed`, spends no attempt of any
//! budget, touches no limiter and is not audited as a failed second factor; what can be a code
//! is counted as before.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "service_support/mod.rs"]
mod support;

use support::*;
use twofactor::rate_limit::{LimiterState, YEAR_SECS};
use twofactor::service::{
    AddAuthenticatorOutcome, CompleteLogin, Config, Method, Remember, RemoveAuthenticatorOutcome,
    SecondFactor, StartLogin, Verify,
};
use twofactor::store::EphemeralStore;
use twofactor::{
    ConfirmOutcome, DisableOutcome, EnrolmentStart, MemoryStore, RegenerateOutcome, VerifyOutcome,
};

/// What the demo's second step saw people type, and more.
const MALFORMED: &[&str] = &[
    "",
    " ",
    "abc",
    "12345",
    "1234567",
    "12 34 5x",
    "１２３４５６", // full-width digits are not ASCII digits
    "123456\u{0}",
    "AAAAA-BBBB",    // a backup code one character short
    "UUUUU-UUUUU",   // U is not in the alphabet
    "AAAAA-BBBBB-C", // one too many
];

async fn limiter(store: &MemoryStore, user: &str) -> LimiterState {
    store
        .get_limiter(&format!("2fa:user:{user}"))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_year_of_malformed_codes_evaluates_nothing_and_counts_nothing() {
    let cipher = Instrumented::new();
    let store = MemoryStore::new();
    let (svc, clock, events) = service_with(store.clone(), cipher.clone(), config());
    let (secret, _) = enrol(&svc, &clock, "ann").await;
    let before = cipher.count();
    let state = limiter(&store, "ann").await;
    events.clear();
    let mut sent = 0u64;
    let start = clock.now_secs();
    while clock.now_secs() < start + YEAR_SECS {
        for typed in MALFORMED {
            let c = challenge(&svc, "ann").await;
            assert_eq!(
                login(&svc, &c, typed).await,
                VerifyOutcome::Malformed { digits: 6 },
                "{typed:?}"
            );
            assert_eq!(
                reauth(&svc, "ann", typed).await,
                VerifyOutcome::Malformed { digits: 6 }
            );
            // An unknown user gets the same answer.
            assert_eq!(
                reauth(&svc, "nobody", typed).await,
                VerifyOutcome::Malformed { digits: 6 }
            );
            sent += 3;
        }
        clock.advance(3600);
    }
    println!("{sent} malformed codes in a year");
    assert_eq!(cipher.count(), before, "nothing was evaluated");
    assert_eq!(limiter(&store, "ann").await, state, "no limiter write");
    assert_eq!(events.count("second_factor_failed"), 0);
    assert_eq!(events.count("verification_failed"), 0);
    assert_eq!(svc.status("ann").await.unwrap().failures_since_login, 0);
    // And the owner gets in at once.
    let c = challenge(&svc, "ann").await;
    assert!(
        login(&svc, &c, &code_at(&secret, clock.now_secs()))
            .await
            .is_success()
    );
}

/// A form that names the factor (a separate "backup code" field): each kind is checked only as
/// itself; the other kind's shape is malformed there, so it costs nothing and is never tried as
/// the other.
#[tokio::test]
async fn a_named_factor_is_checked_only_as_that_kind() {
    let cipher = Instrumented::new();
    let store = MemoryStore::new();
    let (svc, clock, events) = service_with(store.clone(), cipher.clone(), config());
    let (secret, codes) = enrol(&svc, &clock, "ivy").await;
    clock.advance(30);
    let totp = code_at(&secret, clock.now_secs());
    let before = cipher.count();
    let state = limiter(&store, "ivy").await;
    events.clear();
    let crossed = [codes[0].as_str(), totp.as_str()];
    for (typed, factor) in MALFORMED
        .iter()
        .flat_map(|t| [SecondFactor::Totp(t), SecondFactor::BackupCode(t)].map(|f| (*t, f)))
        .chain([
            (crossed[0], SecondFactor::Totp(crossed[0])),
            (crossed[1], SecondFactor::BackupCode(crossed[1])),
        ])
    {
        let c = challenge(&svc, "ivy").await;
        assert_eq!(
            svc.complete_login(CompleteLogin::new(&c, factor))
                .await
                .unwrap(),
            VerifyOutcome::Malformed { digits: 6 },
            "{typed:?} as {factor:?}"
        );
        assert_eq!(
            svc.verify(Verify::new("ivy", factor)).await.unwrap(),
            VerifyOutcome::Malformed { digits: 6 },
            "{typed:?} as {factor:?}"
        );
    }
    assert_eq!(cipher.count(), before, "nothing was evaluated");
    assert_eq!(limiter(&store, "ivy").await, state, "no limiter write");
    assert_eq!(events.count("second_factor_failed"), 0);
    assert_eq!(events.count("verification_failed"), 0);
    // Each in its own field logs in.
    let c = challenge(&svc, "ivy").await;
    assert!(matches!(
        svc.complete_login(CompleteLogin::new(&c, SecondFactor::Totp(&totp)))
            .await
            .unwrap(),
        VerifyOutcome::Success {
            method: Method::Totp { .. },
            ..
        }
    ));
    let c = challenge(&svc, "ivy").await;
    assert!(matches!(
        svc.complete_login(CompleteLogin::new(
            &c,
            SecondFactor::BackupCode(codes[0].as_str())
        ))
        .await
        .unwrap(),
        VerifyOutcome::Success {
            method: Method::BackupCode { remaining: 7 },
            ..
        }
    ));
}

/// The requests carry codes and tokens; their `Debug` shows neither.
#[test]
fn requests_never_print_codes_or_tokens() {
    let printed = [
        format!(
            "{:?}",
            CompleteLogin::new("the-challenge", SecondFactor::Typed("123456"))
                .device(Some("the-device"))
                .remember(Remember::Trusted("Firefox"))
        ),
        format!(
            "{:?}",
            Verify::new("ivy", SecondFactor::BackupCode("ABCD-EFGH-JKMN"))
                .device(Some("the-device"))
        ),
        format!("{:?}", StartLogin::new("ivy").device(Some("the-device"))),
        format!("{:?}", SecondFactor::Totp("654321")),
    ];
    for p in &printed {
        for secret in ["the-challenge", "123456", "the-device", "ABCD", "654321"] {
            assert!(!p.contains(secret), "{p}");
        }
    }
    assert!(printed[0].contains("Firefox"), "{}", printed[0]);
}

#[tokio::test]
async fn twenty_typos_then_the_right_code() {
    let (svc, _store, clock, _) = service();
    let (secret, _) = enrol(&svc, &clock, "bob").await;
    clock.advance(30);
    let c = challenge(&svc, "bob").await;
    for i in 0..20 {
        let typed = MALFORMED[i % MALFORMED.len()];
        assert!(matches!(
            login(&svc, &c, typed).await,
            VerifyOutcome::Malformed { .. }
        ));
    }
    // Separators people type are not typos.
    let code = code_at(&secret, clock.now_secs());
    let dashed = format!("{}-{}", &code[..3], &code[3..]);
    assert!(login(&svc, &c, &dashed).await.is_success());
}

#[tokio::test]
async fn a_well_formed_wrong_code_still_counts() {
    let (svc, store, clock, events) = service();
    let (secret, _) = enrol(&svc, &clock, "cy").await;
    assert_eq!(
        reauth(&svc, "cy", &wrong_code(&secret, clock.now_secs(), 1)).await,
        VerifyOutcome::Rejected
    );
    assert_eq!(
        reauth(&svc, "cy", "AAAAA-BBBBB").await,
        VerifyOutcome::Rejected,
        "a well-formed backup code is looked up"
    );
    assert_eq!(limiter(&store, "cy").await.failures, 2);
    assert_eq!(events.count("second_factor_failed"), 2);
}

#[tokio::test]
async fn every_operation_that_takes_a_code_answers_malformed() {
    let (svc, store, clock, _) = service();
    let (secret, _) = enrol(&svc, &clock, "dee").await;
    let mut state = limiter(&store, "dee").await;
    assert!(matches!(
        svc.disable("dee", "12345").await.unwrap(),
        DisableOutcome::Malformed { digits: 6 }
    ));
    assert!(matches!(
        svc.regenerate_backup_codes("dee", "x").await.unwrap(),
        RegenerateOutcome::Malformed { digits: 6 }
    ));
    assert!(matches!(
        svc.add_authenticator("dee", "Tablet", "dee", "1234567")
            .await
            .unwrap(),
        AddAuthenticatorOutcome::Malformed { digits: 6 }
    ));
    assert_eq!(limiter(&store, "dee").await, state);
    let id = svc.authenticators("dee").await.unwrap()[0].id.clone();
    clock.advance(30);
    let AddAuthenticatorOutcome::Started(tablet) = svc
        .add_authenticator("dee", "Tablet", "dee", &code_at(&secret, clock.now_secs()))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(matches!(
        svc.confirm_enrolment("dee", &code_at(tablet.secret(), clock.now_secs()))
            .await
            .unwrap(),
        ConfirmOutcome::Added { .. }
    ));
    // (Those two codes were right: their successes wrote the limiter.)
    state = limiter(&store, "dee").await;
    assert!(matches!(
        svc.remove_authenticator("dee", &id, "").await.unwrap(),
        RemoveAuthenticatorOutcome::Malformed { digits: 6 }
    ));
    // A pending app is confirmed only by one of its codes: a backup code's shape is none.
    let EnrolmentStart::Started(_) = svc.start_enrolment("eve", "eve").await.unwrap() else {
        panic!()
    };
    assert!(matches!(
        svc.confirm_enrolment("eve", "AAAAA-BBBBB").await.unwrap(),
        ConfirmOutcome::Malformed { digits: 6 }
    ));
    assert_eq!(limiter(&store, "dee").await, state);
    assert_eq!(limiter(&store, "eve").await, LimiterState::default());
}

#[tokio::test]
async fn the_digits_are_the_users() {
    let mut config = Config::new("Example");
    config.digits = 8;
    let (svc, clock, _) = service_with(
        MemoryStore::new(),
        twofactor::Keyring::single(1, KEY1),
        config,
    );
    let EnrolmentStart::Started(e) = svc.start_enrolment("fay", "fay").await.unwrap() else {
        panic!()
    };
    // (Six digits are looked at during a confirmation: an app may have ignored the 8.)
    assert!(matches!(
        svc.confirm_enrolment("fay", "1234567").await.unwrap(),
        ConfirmOutcome::Malformed { digits: 8 }
    ));
    let totp = twofactor::Totp::builder(e.secret())
        .digits(8)
        .build()
        .unwrap();
    let code = totp.generate_at(clock.now_secs()).unwrap();
    assert!(matches!(
        svc.confirm_enrolment("fay", code.as_str()).await.unwrap(),
        ConfirmOutcome::Confirmed { .. }
    ));
    assert_eq!(
        reauth(&svc, "fay", "123456").await,
        VerifyOutcome::Malformed { digits: 8 }
    );
}

/// An app that ignores the QR code's parameters (8 digits, SHA-256, 60 s here) shows SHA-1 /
/// 6-digit / 30-second codes: the confirmation says so instead of "wrong code", and nothing is
/// turned on; such a code never logs in.
#[tokio::test]
async fn an_app_that_ignored_the_parameters_is_told_apart() {
    let mut config = Config::new("Example");
    config.digits = 8;
    config.algorithm = twofactor::Algorithm::Sha256;
    config.period = 60;
    let (svc, clock, _) = service_with(
        MemoryStore::new(),
        twofactor::Keyring::single(1, KEY1),
        config,
    );
    let EnrolmentStart::Started(e) = svc.start_enrolment("gus", "gus").await.unwrap() else {
        panic!()
    };
    // What the careless app shows: the defaults.
    let careless = code_at(e.secret(), clock.now_secs());
    assert!(matches!(
        svc.confirm_enrolment("gus", &careless).await.unwrap(),
        ConfirmOutcome::AppIgnoredSettings
    ));
    assert!(!svc.status("gus").await.unwrap().enabled);
    // A wrong 6-digit code is just wrong.
    assert!(matches!(
        svc.confirm_enrolment("gus", &wrong_code(e.secret(), clock.now_secs(), 5))
            .await
            .unwrap(),
        ConfirmOutcome::Rejected
    ));
    // The right app's code confirms; the careless app's code never logs in.
    let right = twofactor::Totp::builder(e.secret())
        .digits(8)
        .algorithm(twofactor::Algorithm::Sha256)
        .period(60)
        .build()
        .unwrap()
        .generate_at(clock.now_secs())
        .unwrap();
    assert!(matches!(
        svc.confirm_enrolment("gus", right.as_str()).await.unwrap(),
        ConfirmOutcome::Confirmed { .. }
    ));
    assert_eq!(
        reauth(&svc, "gus", &careless).await,
        VerifyOutcome::Malformed { digits: 8 }
    );
}

/// With the default parameters there is nothing to ignore: a wrong code is `Rejected`.
#[tokio::test]
async fn default_parameters_never_say_ignored() {
    let (svc, _store, clock, _) = service();
    let EnrolmentStart::Started(e) = svc.start_enrolment("hal", "hal").await.unwrap() else {
        panic!()
    };
    assert!(matches!(
        svc.confirm_enrolment("hal", &wrong_code(e.secret(), clock.now_secs(), 1))
            .await
            .unwrap(),
        ConfirmOutcome::Rejected
    ));
}
