//! Service benchmarks: a full TOTP verification against `MemoryStore`, including the limiter,
//! the AES-256-GCM decryption of the secret, the ±1 window, the atomic step advance and the
//! limiter reset; the failure path; and the unknown-user path (which must cost the same). The
//! same success and failure with five authenticators (every one is checked, so at most five
//! times the work), and a login from a trusted browser (one token hash and lookup, no code).
//!
//! Run: `cargo bench --bench service -- --measurement-time 3 --warm-up-time 1`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use twofactor::service::{
    AddAuthenticatorOutcome, CompleteLogin, Config, LoginStart, Remember, SecondFactor, StartLogin,
    Verify,
};
use twofactor::{
    BackupCodeKey, Clock, ConfirmOutcome, EnrolmentStart, Keyring, ManualClock, MemoryStore, Totp,
    TwoFactor, VerifyOutcome,
};

type Svc = TwoFactor<MemoryStore, MemoryStore, Keyring, ManualClock>;

/// `MemoryStore` and `Keyring` futures are ready at once: poll with a no-op waker, so the
/// numbers are the service's work, not an executor's.
fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn setup(config: Config) -> (Svc, ManualClock, Totp) {
    let clock = ManualClock::new(1_700_000_000);
    let store = MemoryStore::new();
    let svc = TwoFactor::new(
        store.clone(),
        store,
        Keyring::single(1, [7; 32]),
        BackupCodeKey::from_bytes([3; 32]),
        config,
    )
    .unwrap()
    .with_clock(clock.clone());
    let EnrolmentStart::Started(e) =
        run(svc.start_enrolment("alice", "alice@example.com")).unwrap()
    else {
        panic!()
    };
    let totp = Totp::builder(e.secret()).build().unwrap();
    let code = totp.generate_at(clock.now()).unwrap();
    assert!(matches!(
        run(svc.confirm_enrolment("alice", code.as_str())).unwrap(),
        ConfirmOutcome::Confirmed { .. }
    ));
    (svc, clock, totp)
}

/// Adds four more authenticators (five in all); returns the last one's generator.
fn add_four(svc: &Svc, clock: &ManualClock, first: &Totp) -> Totp {
    let mut last = None;
    for i in 1..5 {
        clock.advance(30);
        let proof = first.generate_at(clock.now()).unwrap();
        let AddAuthenticatorOutcome::Started(e) = run(svc.add_authenticator(
            "alice",
            &format!("Phone {i}"),
            "alice@example.com",
            proof.as_str(),
        ))
        .unwrap() else {
            panic!()
        };
        let totp = Totp::builder(e.secret()).build().unwrap();
        let code = totp.generate_at(clock.now()).unwrap();
        assert!(matches!(
            run(svc.confirm_enrolment("alice", code.as_str())).unwrap(),
            ConfirmOutcome::Added { .. }
        ));
        last = Some(totp);
    }
    last.unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("service");

    // Success: every iteration is a new step (a step is accepted once), so the clock moves 30 s
    // and the code is generated outside the timed section.
    let (svc, clock, totp) = setup(Config::new("Bench"));
    g.bench_function("verify_totp_success", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                clock.advance(30);
                let code = totp.generate_at(clock.now()).unwrap();
                let start = Instant::now();
                let out = run(svc.verify(Verify::new(
                    black_box("alice"),
                    SecondFactor::Typed(black_box(code.as_str())),
                )))
                .unwrap();
                total += start.elapsed();
                assert!(out.is_success(), "{out:?}");
            }
            total
        });
    });

    g.bench_function("complete_login_totp_success", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                clock.advance(30);
                let code = totp.generate_at(clock.now()).unwrap();
                let LoginStart::Required { challenge, .. } =
                    run(svc.start_login(StartLogin::new("alice"))).unwrap()
                else {
                    panic!()
                };
                let start = Instant::now();
                let out = run(svc.complete_login(CompleteLogin::new(
                    black_box(challenge.as_str()),
                    SecondFactor::Typed(black_box(code.as_str())),
                )))
                .unwrap();
                total += start.elapsed();
                assert!(out.is_success(), "{out:?}");
            }
            total
        });
    });

    // Failure: a wrong code, fully evaluated (a policy that never locks, to measure the check
    // itself), for an enrolled user and for an unknown one (dummy secret: the same work).
    let mut relaxed = Config::new("Bench");
    relaxed.rate_limit.max_failures = u32::MAX;
    relaxed.rate_limit.escalate = false;
    let (svc, clock, totp) = setup(relaxed);
    let now = clock.now();
    let valid: Vec<String> = (-1i64..=1)
        .map(|d| {
            let t = now.checked_add_signed(d * 30).unwrap();
            totp.generate_at(t).unwrap().as_str().to_owned()
        })
        .collect();
    let wrong = (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap();
    g.bench_function("verify_totp_wrong_code", |b| {
        b.iter(|| {
            let out = run(svc.verify(Verify::new(
                black_box("alice"),
                SecondFactor::Typed(black_box(&wrong)),
            )))
            .unwrap();
            assert_eq!(out, VerifyOutcome::Rejected);
        });
    });
    g.bench_function("verify_unknown_user", |b| {
        b.iter(|| {
            let out = run(svc.verify(Verify::new(
                black_box("nobody"),
                SecondFactor::Typed(black_box(&wrong)),
            )))
            .unwrap();
            assert_eq!(out, VerifyOutcome::Rejected);
        });
    });

    // Five authenticators: the code of the last one added, and a wrong code; every
    // authenticator is decrypted and checked either way.
    let (svc5, clock5, first) = setup(Config::new("Bench"));
    let last = add_four(&svc5, &clock5, &first);
    g.bench_function("verify_totp_success_5_authenticators", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                clock5.advance(30);
                let code = last.generate_at(clock5.now()).unwrap();
                let start = Instant::now();
                let out = run(svc5.verify(Verify::new(
                    black_box("alice"),
                    SecondFactor::Typed(black_box(code.as_str())),
                )))
                .unwrap();
                total += start.elapsed();
                assert!(out.is_success(), "{out:?}");
            }
            total
        });
    });
    let mut relaxed5 = Config::new("Bench");
    relaxed5.rate_limit.max_failures = u32::MAX;
    relaxed5.rate_limit.escalate = false;
    let (svc5, clock5, first) = setup(relaxed5);
    let _ = add_four(&svc5, &clock5, &first);
    g.bench_function("verify_totp_wrong_code_5_authenticators", |b| {
        b.iter(|| {
            // A code that is wrong for all five is, for all practical purposes, any code that
            // was not just generated; a rare hit would fail the assertion.
            let out = run(svc5.verify(Verify::new(
                black_box("alice"),
                SecondFactor::Typed(black_box(&wrong)),
            )))
            .unwrap();
            assert_eq!(out, VerifyOutcome::Rejected);
        });
    });

    // A trusted browser: the password step with a trusted device token skips the code.
    let (svc, clock, totp) = setup(Config::new("Bench"));
    clock.advance(30);
    let LoginStart::Required { challenge, .. } =
        run(svc.start_login(StartLogin::new("alice"))).unwrap()
    else {
        panic!()
    };
    let code = totp.generate_at(clock.now()).unwrap();
    let VerifyOutcome::Success {
        device_token: Some(token),
        ..
    } = run(svc.complete_login(
        CompleteLogin::new(challenge.as_str(), SecondFactor::Typed(code.as_str()))
            .remember(Remember::Trusted("Bench browser")),
    ))
    .unwrap()
    else {
        panic!()
    };
    g.bench_function("start_login_trusted_device", |b| {
        b.iter(|| {
            let out = run(svc.start_login(
                StartLogin::new(black_box("alice")).device(black_box(Some(token.as_str()))),
            ))
            .unwrap();
            assert!(matches!(out, LoginStart::TrustedDevice));
        });
    });
    g.bench_function("start_login_challenge", |b| {
        b.iter(|| {
            let out = run(svc.start_login(StartLogin::new(black_box("alice")))).unwrap();
            assert!(matches!(out, LoginStart::Required { .. }));
        });
    });

    // Refusal by the limiter (default policy after 5 failures): no code evaluated.
    let (svc, _clock, _totp) = setup(Config::new("Bench"));
    for _ in 0..5 {
        let _ = run(svc.verify(Verify::new("alice", SecondFactor::Typed(&wrong)))).unwrap();
    }
    g.bench_function("verify_rate_limited", |b| {
        b.iter(|| {
            let out = run(svc.verify(Verify::new(
                black_box("alice"),
                SecondFactor::Typed(black_box(&wrong)),
            )))
            .unwrap();
            assert!(matches!(out, VerifyOutcome::RateLimited { .. }));
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
