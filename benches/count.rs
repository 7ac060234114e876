//! An instruction-count driver for callgrind, whose counts do not vary with the machine's load
//! (criterion's times do): `verify` on `MemoryStore` for a user with `K` authenticators, `N`
//! times, with the last authenticator's fresh code (`ok`) or a wrong one (`wrong`). Run it for
//! N and 2N and divide the difference by N: that is the cost of one call, set-up excluded.
//!
//! ```sh
//! cargo bench --bench count --no-run   # prints the binary's path: target/release/deps/count-*
//! for n in 200 400; do COUNT_N=$n COUNT_K=5 COUNT_CODE=ok \
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/deps/count-<hash>; done
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use twofactor::service::{AddAuthenticatorOutcome, Config, SecondFactor, Verify};
use twofactor::{
    BackupCodeKey, Clock, ConfirmOutcome, EnrolmentStart, Keyring, ManualClock, MemoryStore, Totp,
    TwoFactor,
};

fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn main() {
    let n: u64 = env("COUNT_N", "200").parse().expect("COUNT_N: a number");
    let k: usize = env("COUNT_K", "1").parse().expect("COUNT_K: 1 to 5");
    let ok = env("COUNT_CODE", "ok") == "ok";
    let clock = ManualClock::new(1_700_000_000);
    let store = MemoryStore::new();
    let mut config = Config::new("Count");
    // A policy that never locks, so every wrong code is evaluated.
    config.rate_limit.max_failures = u32::MAX;
    config.rate_limit.escalate = false;
    let svc = TwoFactor::new(
        store.clone(),
        store,
        Keyring::single(1, [7; 32]),
        BackupCodeKey::from_bytes([3; 32]),
        config,
    )
    .unwrap()
    .with_clock(clock.clone());
    let EnrolmentStart::Started(e) = run(svc.start_enrolment("alice", "a@example.com")).unwrap()
    else {
        panic!()
    };
    let first = Totp::builder(e.secret()).build().unwrap();
    let code = first.generate_at(clock.now()).unwrap();
    assert!(matches!(
        run(svc.confirm_enrolment("alice", code.as_str())).unwrap(),
        ConfirmOutcome::Confirmed { .. }
    ));
    let mut last = first.clone();
    for i in 1..k {
        clock.advance(30);
        let proof = first.generate_at(clock.now()).unwrap();
        let AddAuthenticatorOutcome::Started(e) = run(svc.add_authenticator(
            "alice",
            &format!("Phone {i}"),
            "a@example.com",
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
        last = totp;
    }
    for _ in 0..n {
        clock.advance(30);
        let code = if ok {
            last.generate_at(clock.now()).unwrap().as_str().to_owned()
        } else {
            "000000".to_owned()
        };
        let out = run(svc.verify(Verify::new(
            "alice",
            SecondFactor::Typed(std::hint::black_box(&code)),
        )))
        .unwrap();
        // "000000" is wrong but for a 1-in-10^5 chance per call over five authenticators: only
        // the success path is asserted.
        assert!(!ok || out.is_success(), "{out:?}");
        let _ = std::hint::black_box(out);
    }
}
