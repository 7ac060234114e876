//! The patient attacker: the user's password and nothing else (or the password and one stolen
//! backup code), against the service over `MemoryStore` with a manual clock, for a simulated
//! year. Each test counts what the attacker really got: recoveries completed, owner factors
//! removed, candidate secrets compared (decryptions, through a counting cipher).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "service_support/mod.rs"]
mod support;

use std::sync::Arc;

use support::*;
use twofactor::audit::AuditEvent;
use twofactor::rate_limit::{RateLimitPolicy, YEAR_SECS};
use twofactor::service::{
    AddAuthenticatorOutcome, CompleteLogin, Config, LockDownOutcome, LoginStart, Remember,
    RemoveAuthenticatorOutcome, ScheduledChangeKind, SecondFactor, StartLogin, Verify,
};
use twofactor::{
    BackupCode, ConfirmOutcome, DisableOutcome, ManualClock, MemoryStore, RecoveryCompletion,
    RecoveryRequest, RegenerateOutcome, Secret, VerifyOutcome,
};

const DAY: u64 = 86_400;
const OWNER: &str = "owner";

fn now(clock: &ManualClock) -> u64 {
    clock.now_secs()
}

/// The notice tokens the owner received (every notice event's), oldest first.
fn notices(events: &Events) -> Vec<String> {
    events
        .all()
        .iter()
        .filter_map(|e| e.notice().map(|n| n.as_str().to_owned()))
        .collect()
}

/// Adds an authenticator with `code` (any factor) and confirms it with the new app; returns
/// its id and secret.
async fn add(svc: &Svc, clock: &ManualClock, name: &str, code: &str) -> (String, Secret) {
    let AddAuthenticatorOutcome::Started(e) = svc
        .add_authenticator(OWNER, name, "owner@example.com", code)
        .await
        .unwrap()
    else {
        panic!("add refused")
    };
    let secret = e.secret().clone();
    let ConfirmOutcome::Added { authenticator, .. } = svc
        .confirm_enrolment(OWNER, &code_at(&secret, now(clock)))
        .await
        .unwrap()
    else {
        panic!("confirm refused")
    };
    (authenticator, secret)
}

/// A login with `code` that ticks "remember this browser"; returns the trusted device token.
async fn trusted_login(svc: &Svc, code: &str, label: &str) -> String {
    let LoginStart::Required { challenge, .. } =
        svc.start_login(StartLogin::new(OWNER)).await.unwrap()
    else {
        panic!("2FA is on")
    };
    let VerifyOutcome::Success {
        device_token: Some(token),
        ..
    } = svc
        .complete_login(
            CompleteLogin::new(challenge.as_str(), SecondFactor::Typed(code))
                .remember(Remember::Trusted(label)),
        )
        .await
        .unwrap()
    else {
        panic!("the login with a right code")
    };
    token.as_str().to_owned()
}

async fn owner_ids(svc: &Svc) -> Vec<String> {
    svc.authenticators(OWNER)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect()
}

/// A quiet account: the attacker never guesses, asks for recovery, waits, asks again, for a
/// year. Without a verified second channel nothing ever completes, and every request told the
/// owner.
#[tokio::test]
async fn recovery_on_a_quiet_account_never_completes_on_password_and_time() {
    let (svc, _store, clock, events) = service();
    let (secret, codes) = enrol(&svc, &clock, OWNER).await;
    let mut requests = 0;
    let mut completed = 0;
    while now(&clock) < T0 + YEAR_SECS {
        let RecoveryRequest::Requested { needs_approval, .. } =
            svc.request_recovery(OWNER, None).await.unwrap()
        else {
            panic!("2FA is on")
        };
        assert!(
            needs_approval,
            "no second channel: an operator must approve"
        );
        requests += 1;
        clock.advance(4 * DAY);
        if svc.complete_recovery(OWNER).await.unwrap() == RecoveryCompletion::Completed {
            completed += 1;
        }
    }
    println!("quiet account: {requests} requests, {completed} completed");
    assert_eq!(completed, 0);
    assert!(svc.status(OWNER).await.unwrap().enabled);
    assert_eq!(
        events.count("recovery_requested"),
        requests,
        "one notice per request"
    );
    assert!(notices(&events).len() >= requests);
    // The owner's factors still work.
    assert!(
        reauth(&svc, OWNER, &code_at(&secret, now(&clock)))
            .await
            .is_success()
    );
    assert!(reauth(&svc, OWNER, codes[0].as_str()).await.is_success());
}

/// The owner logs in only through a trusted browser (re-trusting it with a code every 30
/// days); the attacker asks for recovery, waits and asks again. Every trusted login cancels the
/// attacker's request; a later request never voids the owner's earlier notice token.
#[tokio::test]
async fn the_owner_on_a_trusted_browser_cancels_every_request() {
    let (svc, _store, clock, events) = service();
    let (secret, _) = enrol(&svc, &clock, OWNER).await;
    let mut device: Option<String> = None;
    let mut completed = 0;
    let mut cancelled_by_browser = 0;
    let mut day = 0;
    while now(&clock) < T0 + YEAR_SECS {
        // The attacker, every day.
        let _ = svc.request_recovery(OWNER, None).await.unwrap();
        clock.advance(3600);
        // The owner, every day: a trusted login, or every 30 days a code with "remember".
        let before = events.count("recovery_cancelled");
        match svc
            .start_login(StartLogin::new(OWNER).device(device.as_deref()))
            .await
            .unwrap()
        {
            LoginStart::TrustedDevice => {}
            LoginStart::Required { challenge, .. } => {
                clock.advance(30);
                let VerifyOutcome::Success { device_token, .. } = svc
                    .complete_login(
                        CompleteLogin::new(
                            challenge.as_str(),
                            SecondFactor::Typed(&code_at(&secret, now(&clock))),
                        )
                        .device(device.as_deref())
                        .remember(Remember::Trusted("Firefox on Linux")),
                    )
                    .await
                    .unwrap()
                else {
                    panic!("the owner's code")
                };
                device = device_token.map(|t| t.as_str().to_owned()).or(device);
            }
            other => panic!("{other:?}"),
        }
        cancelled_by_browser += events.count("recovery_cancelled") - before;
        clock.advance(DAY - 3600 - 30);
        if svc.complete_recovery(OWNER).await.unwrap() == RecoveryCompletion::Completed {
            completed += 1;
        }
        day += 1;
    }
    println!("{day} days: {cancelled_by_browser} requests cancelled by the owner's browser");
    assert_eq!(completed, 0);
    assert!(cancelled_by_browser >= day - 1);
    assert!(events.all().iter().any(|e| matches!(
        e,
        AuditEvent::RecoveryCancelled {
            by: twofactor::audit::CancelledBy::TrustedDevice,
            ..
        }
    )));

    // A later request never voids an earlier notice token.
    let RecoveryRequest::Requested {
        cancel_token: first,
        ..
    } = svc.request_recovery(OWNER, None).await.unwrap()
    else {
        panic!()
    };
    let _ = svc.request_recovery(OWNER, None).await.unwrap();
    let _ = svc.request_recovery(OWNER, None).await.unwrap();
    assert!(
        svc.cancel_recovery_with_token(OWNER, first.as_str())
            .await
            .unwrap()
    );
    assert!(svc.status(OWNER).await.unwrap().recovery.is_none());
}

/// An operator approved the owner's request (phone and codes lost). The attacker, with the
/// password and a stolen backup code, cannot cancel it: not by logging in, not by asking again,
/// not through a password change.
#[tokio::test]
async fn the_attacker_cannot_cancel_an_approved_request() {
    let (svc, _store, clock, _events) = service();
    let (_secret, codes) = enrol(&svc, &clock, OWNER).await;
    let _ = svc.request_recovery(OWNER, None).await.unwrap();
    assert!(svc.approve_recovery(OWNER).await.unwrap());
    // The attacker: a backup-code login, a new request, a password change without proof.
    let c = challenge(&svc, OWNER).await;
    assert!(login(&svc, &c, codes[7].as_str()).await.is_success());
    let _ = svc.request_recovery(OWNER, None).await.unwrap();
    svc.password_changed(OWNER, None).await.unwrap();
    assert!(svc.status(OWNER).await.unwrap().recovery.unwrap().approved);
    assert_eq!(
        svc.complete_recovery(OWNER).await.unwrap(),
        RecoveryCompletion::Completed
    );
}

/// With a second channel the application verified, a quiet account's request waits and
/// completes; the owner's proof (a device token) cancels it; a stale verification is none.
#[tokio::test]
async fn a_verified_channel_lets_the_owner_recover_after_the_delay() {
    let (svc, _store, clock, _events) = service();
    let _ = enrol(&svc, &clock, OWNER).await;
    let stale = email_at(now(&clock) - 16 * 60);
    let RecoveryRequest::Requested { needs_approval, .. } =
        svc.request_recovery(OWNER, stale).await.unwrap()
    else {
        panic!()
    };
    assert!(
        needs_approval,
        "a verification 16 minutes old does not count"
    );
    // The verified request turns the pending one into one that waits.
    let RecoveryRequest::Requested {
        needs_approval,
        not_before,
        ..
    } = svc
        .request_recovery(OWNER, email_at(now(&clock)))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(!needs_approval);
    clock.advance(not_before - now(&clock));
    assert_eq!(
        svc.complete_recovery(OWNER).await.unwrap(),
        RecoveryCompletion::Completed
    );
    assert!(!svc.status(OWNER).await.unwrap().enabled);
}

/// The owner logs in daily with codes while the attacker guesses at the fastest rate and asks
/// for recovery with each lockout: a year gives zero recoveries and at most the yearly bound of
/// codes compared.
#[tokio::test]
async fn the_owner_logging_in_daily_against_a_guessing_attacker() {
    let (svc, clock, events, cipher) = counted_service(Config::new("Example"));
    let (secret, _) = enrol(&svc, &clock, OWNER).await;
    clock.advance(30);
    let start = cipher.count();
    let mut next_owner = now(&clock);
    let mut n = 0;
    let mut owner_in = 0;
    let mut owner_tries = 0;
    let mut owner_cost = 0;
    // The owner's browser: its device token gives it a budget of its own.
    let mut device: Option<String> = None;
    while now(&clock) < T0 + YEAR_SECS {
        if now(&clock) >= next_owner {
            let before = cipher.count();
            owner_tries += 1;
            if let Ok(LoginStart::Required { challenge, .. }) =
                svc.start_login(StartLogin::new(OWNER)).await
                && let VerifyOutcome::Success { device_token, .. } = svc
                    .complete_login(
                        CompleteLogin::new(
                            challenge.as_str(),
                            SecondFactor::Typed(&code_at(&secret, now(&clock))),
                        )
                        .device(device.as_deref())
                        .remember(Remember::Device),
                    )
                    .await
                    .unwrap()
            {
                owner_in += 1;
                device = device_token.map(|t| t.as_str().to_owned()).or(device);
            }
            owner_cost += cipher.count() - before;
            next_owner += DAY;
        }
        n += 1;
        match svc
            .verify(Verify::new(
                OWNER,
                SecondFactor::Typed(&wrong_code(&secret, now(&clock), n * 7)),
            ))
            .await
            .unwrap()
        {
            VerifyOutcome::RateLimited { retry_after_secs } => {
                let _ = svc.request_recovery(OWNER, None).await.unwrap();
                clock.advance(retry_after_secs.min(next_owner - now(&clock)).max(1));
            }
            _ => clock.advance(1),
        }
    }
    let attacker = cipher.count() - start - owner_cost;
    println!(
        "owner daily: attacker compared {attacker} candidates, owner in {owner_in}/{owner_tries}"
    );
    assert!(attacker <= RateLimitPolicy::totp_default().max_guesses_per_year());
    assert_eq!(events.count("recovery_completed"), 0);
    assert_ne!(
        svc.complete_recovery(OWNER).await.unwrap(),
        RecoveryCompletion::Completed
    );
    assert!(
        owner_in * 10 >= owner_tries * 9,
        "the owner got in: {owner_in}/{owner_tries}"
    );
}

/// A service over `MemoryStore` whose cipher counts decryptions (candidates compared).
fn counted_service(config: Config) -> (Svc<Instrumented>, ManualClock, Events, Instrumented) {
    let cipher = Instrumented::new();
    let (svc, clock, events) = service_with(MemoryStore::new(), cipher.clone(), config);
    (svc, clock, events, cipher)
}

/// Five authenticators: each guess is compared with five secrets, and counts five against the
/// user's budget. A year at the fastest rate compares no more candidates than the one-
/// authenticator bound allows; the same attacker against one authenticator, for reference.
#[tokio::test]
async fn five_authenticators_do_not_multiply_the_odds() {
    let mut compared = Vec::new();
    for k in [1usize, 5] {
        let (svc, clock, _events, cipher) = counted_service(Config::new("Example"));
        let (secret, _) = enrol(&svc, &clock, OWNER).await;
        for i in 1..k {
            clock.advance(30);
            let AddAuthenticatorOutcome::Started(e) = svc
                .add_authenticator(
                    OWNER,
                    &format!("Phone {i}"),
                    "o@example.com",
                    &code_at(&secret, now(&clock)),
                )
                .await
                .unwrap()
            else {
                panic!()
            };
            let s = e.secret().clone();
            let ConfirmOutcome::Added { .. } = svc
                .confirm_enrolment(OWNER, &code_at(&s, now(&clock)))
                .await
                .unwrap()
            else {
                panic!()
            };
        }
        assert_eq!(svc.authenticators(OWNER).await.unwrap().len(), k);
        let start = cipher.count();
        let padding = cipher.padding();
        let begin = now(&clock);
        let mut n = 0;
        let mut evaluated_requests = 0u64;
        while now(&clock) < begin + YEAR_SECS {
            n += 1;
            match svc
                .verify(Verify::new(
                    OWNER,
                    SecondFactor::Typed(&wrong_code(&secret, now(&clock), n * 13)),
                ))
                .await
                .unwrap()
            {
                VerifyOutcome::RateLimited { retry_after_secs } => clock.advance(retry_after_secs),
                _ => {
                    evaluated_requests += 1;
                    clock.advance(1);
                }
            }
        }
        let candidates = cipher.count() - start;
        assert_eq!(candidates, evaluated_requests * k as u64);
        // And the work of each guess is that of five, whatever k: no timing tell.
        assert_eq!(
            candidates + cipher.padding() - padding,
            evaluated_requests * 5,
            "padded to the maximum"
        );
        println!("{k} authenticators: {evaluated_requests} guesses, {candidates} candidates");
        compared.push(candidates);
    }
    let bound = RateLimitPolicy::totp_default().max_guesses_per_year();
    // A ±1 window: 3 codes per candidate secret.
    let p = |c: u64| 1.0 - (1.0 - 3e-6f64).powf(c as f64);
    println!(
        "success chance a year: one authenticator {:.2e}, five {:.2e}, documented {:.2e}",
        p(compared[0]),
        p(compared[1]),
        p(bound)
    );
    assert!(compared[1] <= bound, "five: {} > {bound}", compared[1]);
    assert!(compared[0] <= bound);
}

/// An application that calls `password_changed` after every password-only change (in a loop):
/// without a fresh second factor it refills nothing.
#[tokio::test]
async fn password_changed_in_a_loop_refills_no_budget() {
    let (svc, clock, _events, cipher) = counted_service(Config::new("Example"));
    let (secret, _) = enrol(&svc, &clock, OWNER).await;
    let start = cipher.count();
    let mut n = 0;
    while now(&clock) < T0 + YEAR_SECS {
        n += 1;
        let _ = svc
            .verify(Verify::new(
                OWNER,
                SecondFactor::Typed(&wrong_code(&secret, now(&clock), n * 11)),
            ))
            .await
            .unwrap();
        svc.password_changed(OWNER, None).await.unwrap();
        clock.advance(if now(&clock) < T0 + 2 * DAY { 1 } else { 600 });
    }
    let compared = cipher.count() - start;
    println!("password_changed in a loop: {compared} candidates compared in a year");
    assert!(compared <= RateLimitPolicy::totp_default().max_guesses_per_year());
}

/// The attacker of the issue: the password and one stolen backup code. They add their own
/// authenticator at once (as the owner who lost a phone could), then try to remove the owner's,
/// replace it, regenerate the backup codes and disable 2FA. Each is only scheduled; the owner's
/// next login with their own app cancels them all, and nothing of the owner's went.
#[tokio::test]
async fn one_backup_code_adds_but_cannot_take_away() {
    let (svc, _store, clock, events) = service();
    let (owner_secret, codes) = enrol(&svc, &clock, OWNER).await;
    clock.advance(10 * DAY);
    let owner_app = owner_ids(&svc).await[0].clone();
    let (attacker_app, attacker_secret) = add(&svc, &clock, "Mine", codes[0].as_str()).await;
    let notice = notices(&events)
        .last()
        .cloned()
        .expect("a 'was this you?' notice");
    let list = svc.authenticators(OWNER).await.unwrap();
    assert!(list[0].new_until.is_none() && list[1].new_until.is_some());

    let mut scheduled = 0;
    let attacker = |clock: &ManualClock| {
        clock.advance(30);
        code_at(&attacker_secret, now(clock))
    };
    let r = svc
        .remove_authenticator(OWNER, &owner_app, &attacker(&clock))
        .await
        .unwrap();
    assert!(matches!(r, RemoveAuthenticatorOutcome::Scheduled { .. }));
    scheduled += 1;
    let AddAuthenticatorOutcome::Started(e) = svc
        .replace_authenticator(OWNER, &owner_app, "Mine 2", "o", &attacker(&clock))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(
        e.scheduled_removal().is_some(),
        "the old one's removal waits"
    );
    let RegenerateOutcome::Scheduled { .. } = svc
        .regenerate_backup_codes(OWNER, &attacker(&clock))
        .await
        .unwrap()
    else {
        panic!("a new factor only schedules a regeneration")
    };
    scheduled += 1;
    assert!(matches!(
        svc.disable(OWNER, &attacker(&clock)).await.unwrap(),
        DisableOutcome::Scheduled { .. }
    ));
    scheduled += 1;
    let changes = svc.scheduled_changes(OWNER).await.unwrap();
    assert_eq!(changes.len(), scheduled, "{changes:?}");
    assert!(
        changes
            .iter()
            .all(|c| c.not_before == c.requested_at + 72 * 3600)
    );
    assert!(matches!(
        changes[0].kind,
        ScheduledChangeKind::RemoveAuthenticator { .. }
    ));
    assert_eq!(svc.status(OWNER).await.unwrap().scheduled_changes, 3);
    // Nothing is due yet, and every change told the owner.
    clock.advance(3600);
    assert!(
        svc.complete_scheduled_changes(OWNER)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(events.count("change_scheduled"), 3);
    // The owner logs in with their own (established) app: every scheduled change is cancelled.
    let c = challenge(&svc, OWNER).await;
    assert!(
        login(&svc, &c, &code_at(&owner_secret, now(&clock)))
            .await
            .is_success()
    );
    assert!(svc.scheduled_changes(OWNER).await.unwrap().is_empty());
    clock.advance(4 * DAY);
    assert!(
        svc.complete_scheduled_changes(OWNER)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(owner_ids(&svc).await.contains(&owner_app));
    assert!(svc.status(OWNER).await.unwrap().backup_codes_remaining >= 6);
    // And the notice locks the attacker out: their app goes, the owner's stays.
    let LockDownOutcome::LockedDown {
        authenticators_removed,
        ..
    } = svc.lock_down(OWNER, &notice).await.unwrap()
    else {
        panic!("the owner's notice token")
    };
    // The attacker's app is 4 days old now: established, so lock-down keeps it. The owner removes
    // it with their own app at once.
    assert!(authenticators_removed.is_empty());
    clock.advance(30);
    assert_eq!(
        svc.remove_authenticator(OWNER, &attacker_app, &code_at(&owner_secret, now(&clock)))
            .await
            .unwrap(),
        RemoveAuthenticatorOutcome::Removed
    );
    assert_eq!(owner_ids(&svc).await, [owner_app]);
}

/// The same attacker while the owner is away but reads the notice within the delay: lock-down
/// leaves the owner with only their own factors.
#[tokio::test]
async fn lock_down_leaves_the_owner_only_their_own_factors() {
    let (svc, _store, clock, events) = service();
    let (owner_secret, codes) = enrol(&svc, &clock, OWNER).await;
    clock.advance(30 * DAY);
    let owner_app = owner_ids(&svc).await[0].clone();
    // The owner's trusted browser, from before.
    let owner_browser =
        trusted_login(&svc, &code_at(&owner_secret, now(&clock)), "Owner's laptop").await;
    clock.advance(DAY);
    // The attacker: a backup code, their own app, a trusted browser, scheduled removals, and a
    // recovery request.
    let (attacker_app, attacker_secret) = add(&svc, &clock, "Mine", codes[3].as_str()).await;
    clock.advance(30);
    let attacker_browser =
        trusted_login(&svc, &code_at(&attacker_secret, now(&clock)), "Attacker").await;
    clock.advance(30);
    assert!(matches!(
        svc.remove_authenticator(OWNER, &owner_app, &code_at(&attacker_secret, now(&clock)))
            .await
            .unwrap(),
        RemoveAuthenticatorOutcome::Scheduled { .. }
    ));
    // The attacker's trusted browser is new: it cancels nothing and skips only the code.
    assert!(matches!(
        svc.start_login(StartLogin::new(OWNER).device(Some(attacker_browser.as_str())))
            .await
            .unwrap(),
        LoginStart::TrustedDevice
    ));
    assert_eq!(svc.scheduled_changes(OWNER).await.unwrap().len(), 1);
    let _ = svc.request_recovery(OWNER, None).await.unwrap();

    // The owner reads a notice (the first one: "a new authenticator was added") and locks down.
    clock.advance(DAY);
    let tokens = notices(&events);
    assert!(
        tokens.len() >= 3,
        "added, scheduled, recovery: {}",
        tokens.len()
    );
    assert_eq!(
        svc.lock_down(OWNER, "not-a-token").await.unwrap(),
        LockDownOutcome::Rejected
    );
    assert_eq!(
        svc.lock_down("someone-else", &tokens[0]).await.unwrap(),
        LockDownOutcome::Rejected
    );
    let LockDownOutcome::LockedDown {
        devices,
        changes,
        recovery,
        authenticators_removed,
    } = svc.lock_down(OWNER, &tokens[0]).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(authenticators_removed, std::slice::from_ref(&attacker_app));
    assert_eq!((devices, changes, recovery), (2, 1, true));
    assert_eq!(
        svc.lock_down(OWNER, &tokens[0]).await.unwrap(),
        LockDownOutcome::Rejected,
        "single use"
    );
    // What the attacker holds now: nothing that works.
    assert!(!matches!(
        svc.start_login(StartLogin::new(OWNER).device(Some(attacker_browser.as_str())))
            .await
            .unwrap(),
        LoginStart::TrustedDevice
    ));
    clock.advance(30);
    assert!(
        !reauth(&svc, OWNER, &code_at(&attacker_secret, now(&clock)))
            .await
            .is_success()
    );
    assert!(!reauth(&svc, OWNER, codes[3].as_str()).await.is_success());
    clock.advance(4 * DAY);
    assert!(
        svc.complete_scheduled_changes(OWNER)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        svc.complete_recovery(OWNER).await.unwrap(),
        RecoveryCompletion::NoRequest
    );
    // What the owner holds: their app and their other seven codes.
    assert_eq!(owner_ids(&svc).await, [owner_app]);
    assert!(
        reauth(&svc, OWNER, &code_at(&owner_secret, now(&clock)))
            .await
            .is_success()
    );
    assert!(reauth(&svc, OWNER, codes[4].as_str()).await.is_success());
    drop(owner_browser);
}

/// The owner absent for a year, ignoring every notice: the attacker with one backup code gets
/// the owner's factors removed only after the delay, never sooner; count when each went.
#[tokio::test]
async fn ignored_notices_still_give_the_owner_the_full_delay() {
    let (svc, _store, clock, events) = service();
    let (_, codes) = enrol(&svc, &clock, OWNER).await;
    clock.advance(10 * DAY);
    let owner_app = owner_ids(&svc).await[0].clone();
    let (_, attacker_secret) = add(&svc, &clock, "Mine", codes[0].as_str()).await;
    let added_at = now(&clock);
    let mut removed_at = None;
    while now(&clock) < added_at + YEAR_SECS && removed_at.is_none() {
        clock.advance(3600);
        let code = code_at(&attacker_secret, now(&clock));
        match svc
            .remove_authenticator(OWNER, &owner_app, &code)
            .await
            .unwrap()
        {
            RemoveAuthenticatorOutcome::Removed => removed_at = Some(now(&clock)),
            RemoveAuthenticatorOutcome::Scheduled { .. } => {}
            other => panic!("{other:?}"),
        }
        if !svc
            .complete_scheduled_changes(OWNER)
            .await
            .unwrap()
            .is_empty()
        {
            removed_at = Some(now(&clock));
        }
    }
    let removed_at = removed_at.expect("a patient attacker gets there in the end");
    println!(
        "owner's app removed {} h after the attacker's was added",
        (removed_at - added_at) / 3600
    );
    assert!(removed_at - added_at >= 72 * 3600, "never before the delay");
    assert!(events.count("change_scheduled") >= 1, "the owner was told");
}

/// A scheduled change the owner wanted (phone lost, only backup codes): it takes effect after
/// the delay, once; the owner can cancel one with a notice token.
#[tokio::test]
async fn a_scheduled_change_takes_effect_after_the_delay_or_is_cancelled_by_token() {
    let (svc, _store, clock, events) = service();
    let (_, codes) = enrol(&svc, &clock, OWNER).await;
    clock.advance(10 * DAY);
    let RegenerateOutcome::Scheduled {
        backup_codes: new,
        change,
        not_before,
    } = svc
        .regenerate_backup_codes(OWNER, codes[0].as_str())
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(matches!(
        svc.regenerate_backup_codes(OWNER, codes[1].as_str())
            .await
            .unwrap(),
        RegenerateOutcome::AlreadyScheduled { .. }
    ));
    let _: &Vec<BackupCode> = &new;
    // Old codes work until then; the new ones do not yet.
    assert!(!reauth(&svc, OWNER, new[0].as_str()).await.is_success());
    clock.advance(not_before - now(&clock) - 1);
    assert!(
        svc.complete_scheduled_changes(OWNER)
            .await
            .unwrap()
            .is_empty()
    );
    clock.advance(1);
    let applied = svc.complete_scheduled_changes(OWNER).await.unwrap();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].id, change);
    assert!(
        svc.complete_scheduled_changes(OWNER)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(reauth(&svc, OWNER, new[1].as_str()).await.is_success());
    assert!(!reauth(&svc, OWNER, codes[2].as_str()).await.is_success());

    // A disable scheduled with a backup code, cancelled by the owner's notice token.
    clock.advance(DAY);
    assert!(matches!(
        svc.disable(OWNER, new[2].as_str()).await.unwrap(),
        DisableOutcome::Scheduled { .. }
    ));
    let token = notices(&events).last().cloned().unwrap();
    assert!(
        !svc.cancel_scheduled_change_with_token(OWNER, "disable", "wrong")
            .await
            .unwrap()
    );
    assert!(
        !svc.cancel_scheduled_change_with_token(OWNER, "nothing", &token)
            .await
            .unwrap(),
        "an unknown change spends no token"
    );
    assert!(
        svc.cancel_scheduled_change_with_token(OWNER, "disable", &token)
            .await
            .unwrap()
    );
    clock.advance(4 * DAY);
    assert!(
        svc.complete_scheduled_changes(OWNER)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(svc.status(OWNER).await.unwrap().enabled);
}

/// Bad input to the new entry points: a clear answer, never a panic.
#[tokio::test]
async fn garbage_gets_clear_answers() {
    let (svc, _store, clock, _) = service();
    let _ = enrol(&svc, &clock, OWNER).await;
    let long = "x".repeat(10_000);
    assert_eq!(
        svc.lock_down(OWNER, &long).await.unwrap(),
        LockDownOutcome::Rejected
    );
    assert_eq!(
        svc.lock_down(OWNER, "").await.unwrap(),
        LockDownOutcome::Rejected
    );
    assert!(svc.lock_down("", "x").await.is_err());
    assert!(
        !svc.cancel_scheduled_change_with_token(OWNER, &long, &long)
            .await
            .unwrap()
    );
    assert!(svc.scheduled_changes(&long).await.is_err());
    assert!(svc.complete_scheduled_changes(&long).await.is_err());
    assert!(!svc.cancel_recovery_with_token(OWNER, &long).await.unwrap());
    let _ = Arc::new(());
}

/// Racing the owner's own requests: concurrent applications of one due change apply it once,
/// and one notice token locks down once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_apply_once_and_lock_down_once() {
    let (svc, _store, clock, events) = service();
    let (_, codes) = enrol(&svc, &clock, OWNER).await;
    clock.advance(10 * DAY);
    let (second, _) = add(&svc, &clock, "Second", codes[0].as_str()).await;
    clock.advance(4 * DAY);
    assert!(matches!(
        svc.remove_authenticator(OWNER, &second, codes[1].as_str())
            .await
            .unwrap(),
        RemoveAuthenticatorOutcome::Scheduled { .. }
    ));
    clock.advance(72 * 3600);
    let svc = Arc::new(svc);
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (svc, barrier) = (svc.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                svc.complete_scheduled_changes(OWNER).await.unwrap().len()
            })
        })
        .collect();
    let mut applied = 0;
    for t in tasks {
        applied += t.await.unwrap();
    }
    assert_eq!(applied, 1);
    assert_eq!(events.count("change_applied"), 1);
    assert_eq!(owner_ids(&svc).await.len(), 1);

    let token = notices(&events).last().cloned().unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (svc, barrier, token) = (svc.clone(), barrier.clone(), token.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                svc.lock_down(OWNER, &token).await.unwrap()
            })
        })
        .collect();
    let mut locked = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), LockDownOutcome::LockedDown { .. }) {
            locked += 1;
        }
    }
    assert_eq!(locked, 1);
}

/// Two authenticators created in the same second: neither counts as the first, so neither acts
/// at once (which one was the owner's cannot be told).
#[tokio::test]
async fn a_tie_for_the_oldest_makes_neither_established() {
    let (svc, _store, clock, _) = service();
    let (secret, codes) = enrol(&svc, &clock, OWNER).await;
    // The same second as the enrolment.
    let (_, other) = add(&svc, &clock, "Same second", codes[0].as_str()).await;
    let list = svc.authenticators(OWNER).await.unwrap();
    assert!(list.iter().all(|a| a.new_until.is_some()), "{list:?}");
    clock.advance(30);
    let first = list
        .iter()
        .find(|a| a.name != "Same second")
        .unwrap()
        .id
        .clone();
    assert!(matches!(
        svc.remove_authenticator(OWNER, &first, &code_at(&other, now(&clock)))
            .await
            .unwrap(),
        RemoveAuthenticatorOutcome::Scheduled { .. }
    ));
    drop(secret);
}

/// A device cookie (a browser that completed a second factor, not trusted) presented at the
/// password step is the owner's proof: it cancels a request no operator approved.
#[tokio::test]
async fn a_device_cookie_cancels_a_recovery_request() {
    let (svc, _store, clock, events) = service();
    let (secret, _) = enrol(&svc, &clock, OWNER).await;
    clock.advance(30);
    let LoginStart::Required { challenge, .. } =
        svc.start_login(StartLogin::new(OWNER)).await.unwrap()
    else {
        panic!()
    };
    let VerifyOutcome::Success {
        device_token: Some(cookie),
        ..
    } = svc
        .complete_login(
            CompleteLogin::new(
                challenge.as_str(),
                SecondFactor::Typed(&code_at(&secret, now(&clock))),
            )
            .remember(Remember::Device),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    let _ = svc.request_recovery(OWNER, None).await.unwrap();
    // A garbage cookie, or none, cancels nothing.
    let _ = svc
        .start_login(StartLogin::new(OWNER).device(Some("garbage")))
        .await
        .unwrap();
    assert!(svc.status(OWNER).await.unwrap().recovery.is_some());
    assert!(matches!(
        svc.start_login(StartLogin::new(OWNER).device(Some(cookie.as_str())))
            .await
            .unwrap(),
        LoginStart::Required { .. }
    ));
    assert!(svc.status(OWNER).await.unwrap().recovery.is_none());
    assert!(events.all().iter().any(|e| matches!(
        e,
        AuditEvent::RecoveryCancelled {
            by: twofactor::audit::CancelledBy::KnownDevice,
            ..
        }
    )));
}

/// A backup-code login is a notice: with its token the owner revokes the browser the attacker
/// got trusted with the stolen code.
#[tokio::test]
async fn a_backup_code_login_is_a_notice_the_owner_can_answer() {
    let (svc, _store, clock, events) = service();
    let (_, codes) = enrol(&svc, &clock, OWNER).await;
    let browser = trusted_login(&svc, codes[2].as_str(), "Attacker").await;
    let notice = events
        .all()
        .iter()
        .find(|e| e.kind() == "backup_code_used")
        .and_then(|e| e.notice().map(|n| n.as_str().to_owned()))
        .expect("a notice with the backup-code login");
    assert!(matches!(
        svc.start_login(StartLogin::new(OWNER).device(Some(&browser)))
            .await
            .unwrap(),
        LoginStart::TrustedDevice
    ));
    assert!(matches!(
        svc.lock_down(OWNER, &notice).await.unwrap(),
        LockDownOutcome::LockedDown { devices: 1, .. }
    ));
    assert!(matches!(
        svc.start_login(StartLogin::new(OWNER).device(Some(&browser)))
            .await
            .unwrap(),
        LoginStart::Required { .. }
    ));
}
