//! Several authenticators per user, replacing a phone, and trusted browsers, over `MemoryStore`
//! with a `ManualClock`; each rule is also tried the way an attacker who has the password would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "service_support/mod.rs"]
mod support;

use support::*;
use twofactor::service::{
    AddAuthenticatorOutcome, CompleteLogin, LoginStart, Method, Remember,
    RemoveAuthenticatorOutcome, SecondFactor, StartLogin,
};
use twofactor::{ConfirmOutcome, DisableOutcome, ManualClock, Secret, ServiceError, VerifyOutcome};

/// Adds an authenticator named `name` with a code from `proof` and confirms it; returns its
/// secret and id.
async fn add(
    svc: &Svc,
    clock: &ManualClock,
    user: &str,
    name: &str,
    proof: &str,
) -> (Secret, String) {
    let enrolment = match svc
        .add_authenticator(user, name, &format!("{user}@example.com"), proof)
        .await
        .unwrap()
    {
        AddAuthenticatorOutcome::Started(enrolment) => enrolment,
        other => panic!("add_authenticator refused: {other:?}"),
    };
    let secret = enrolment.secret().clone();
    match svc
        .confirm_enrolment(user, &code_at(&secret, clock.now_secs()))
        .await
        .unwrap()
    {
        ConfirmOutcome::Added {
            authenticator,
            replaced: None,
        } => (secret, authenticator),
        other => panic!("confirmation of an added authenticator: {other:?}"),
    }
}

/// Moves to the next 30-second step (codes are single use per authenticator).
fn tick(clock: &ManualClock) {
    clock.set(clock.now_secs() + 30);
}

async fn logs_in(svc: &Svc, user: &str, code: &str) -> bool {
    let c = challenge(svc, user).await;
    login(svc, &c, code).await.is_success()
}

#[tokio::test]
async fn a_second_authenticator_needs_a_code_and_then_each_logs_in() {
    let (svc, _store, clock, events) = service();
    let (phone, codes) = enrol(&svc, &clock, "ann").await;
    let first_id = svc.authenticators("ann").await.unwrap()[0].id.clone();

    // The password alone (no code, a wrong code) adds nothing.
    assert!(matches!(
        svc.add_authenticator("ann", "Attacker", "ann@example.com", "")
            .await
            .unwrap(),
        AddAuthenticatorOutcome::Malformed { digits: 6 }
    ));
    for proof in [
        wrong_code(&phone, clock.now_secs(), 3),
        wrong_code(&phone, clock.now_secs(), 4),
    ] {
        assert!(matches!(
            svc.add_authenticator("ann", "Attacker", "ann@example.com", &proof)
                .await
                .unwrap(),
            AddAuthenticatorOutcome::Rejected
        ));
    }
    tick(&clock);
    let (tablet, tablet_id) = add(
        &svc,
        &clock,
        "ann",
        "  Tablet  ",
        &code_at(&phone, clock.now_secs()),
    )
    .await;
    assert_eq!(events.count("authenticator_added"), 1);

    let list = svc.authenticators("ann").await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[0].id.as_str(), list[0].name.as_str()),
        (first_id.as_str(), "Authenticator app")
    );
    assert_eq!(
        (list[1].id.as_str(), list[1].name.as_str()),
        (tablet_id.as_str(), "Tablet")
    );
    assert_eq!(list[1].created_at, clock.now_secs());
    let debug = format!("{list:?}");
    assert!(!debug.contains(&*phone.to_base32()) && !debug.contains(&*tablet.to_base32()));

    let status = svc.status("ann").await.unwrap();
    assert_eq!(status.authenticators, 2);
    assert_eq!(
        status.backup_codes_remaining,
        codes.len() as u32,
        "adding an authenticator keeps the backup codes"
    );

    tick(&clock);
    assert!(logs_in(&svc, "ann", &code_at(&phone, clock.now_secs())).await);
    let used_at = clock.now_secs();
    tick(&clock);
    assert!(logs_in(&svc, "ann", &code_at(&tablet, clock.now_secs())).await);
    let list = svc.authenticators("ann").await.unwrap();
    assert_eq!(list[0].last_used_at, Some(used_at));
    assert_eq!(list[1].last_used_at, Some(clock.now_secs()));

    // Single use per authenticator: the tablet's code again is a replay; the phone's code for
    // the same step is still fresh. (Each guess weighs two units now: the window has room.)
    clock.advance(600);
    let step = clock.now_secs();
    assert!(logs_in(&svc, "ann", &code_at(&tablet, step)).await);
    assert!(!logs_in(&svc, "ann", &code_at(&tablet, step)).await);
    assert!(logs_in(&svc, "ann", &code_at(&phone, step)).await);
    assert!(!logs_in(&svc, "ann", &code_at(&phone, step)).await);
    assert_eq!(
        events.count("replay_rejected"),
        2,
        "the replays were evaluated, not refused by the limiter"
    );
    // Six counted units reached the first lockout; it ends with the window.
    clock.advance(600);

    // A backup code proves the user too.
    tick(&clock);
    let (_, third) = add(&svc, &clock, "ann", "Old phone", codes[0].as_str()).await;
    assert!(
        svc.rename_authenticator("ann", &third, "Drawer phone")
            .await
            .unwrap()
    );
    assert_eq!(
        svc.authenticators("ann").await.unwrap()[2].name,
        "Drawer phone"
    );
    assert!(!svc.rename_authenticator("ann", "nope", "x").await.unwrap());
    assert!(
        !svc.rename_authenticator("bob", &third, "x").await.unwrap(),
        "another user's id"
    );
}

#[tokio::test]
async fn names_and_labels_are_checked_before_any_code() {
    let (svc, _store, clock, _) = service();
    let (phone, _) = enrol(&svc, &clock, "ann").await;
    tick(&clock);
    let code = code_at(&phone, clock.now_secs());
    for bad in ["", "   ", "a\nb", "tab\there", "\u{7}", &"x".repeat(65)] {
        assert!(matches!(
            svc.add_authenticator("ann", bad, "ann@example.com", &code)
                .await,
            Err(ServiceError::InvalidName)
        ));
        assert!(matches!(
            svc.rename_authenticator("ann", "x", bad).await,
            Err(ServiceError::InvalidName)
        ));
        let c = challenge(&svc, "ann").await;
        let e = svc
            .complete_login(
                CompleteLogin::new(&c, SecondFactor::Typed(&code)).remember(Remember::Trusted(bad)),
            )
            .await;
        assert!(matches!(e, Err(ServiceError::InvalidName)), "{e:?}");
        assert_eq!(ServiceError::InvalidName.kind().http_status(), 400);
    }
    // 64 characters of any script are fine, and no attempt was spent above: the code still works.
    let name = "é".repeat(64);
    let (_, id) = add(&svc, &clock, "ann", &name, &code).await;
    assert_eq!(svc.authenticators("ann").await.unwrap()[1].name, name);
    assert_eq!(svc.status("ann").await.unwrap().failures_since_login, 0);
    assert!(!id.is_empty());
}

#[tokio::test]
async fn the_limit_holds_and_a_user_without_2fa_cannot_add() {
    let (svc, _store, clock, _) = service();
    assert!(matches!(
        svc.add_authenticator("nobody", "x", "n@example.com", "123456")
            .await
            .unwrap(),
        AddAuthenticatorOutcome::NotEnabled
    ));
    let (phone, _) = enrol(&svc, &clock, "ann").await;
    for i in 1..5 {
        tick(&clock);
        add(
            &svc,
            &clock,
            "ann",
            &format!("Phone {i}"),
            &code_at(&phone, clock.now_secs()),
        )
        .await;
    }
    assert_eq!(svc.status("ann").await.unwrap().authenticators, 5);
    tick(&clock);
    assert!(matches!(
        svc.add_authenticator(
            "ann",
            "Sixth",
            "ann@example.com",
            &code_at(&phone, clock.now_secs())
        )
        .await
        .unwrap(),
        AddAuthenticatorOutcome::LimitReached
    ));
    // The limit is also held at confirmation: two adds started at four, both confirmed.
    let (svc, _store, clock, _) = service();
    let (phone, _) = enrol(&svc, &clock, "bea").await;
    for i in 1..4 {
        tick(&clock);
        add(
            &svc,
            &clock,
            "bea",
            &format!("Phone {i}"),
            &code_at(&phone, clock.now_secs()),
        )
        .await;
    }
    tick(&clock);
    let AddAuthenticatorOutcome::Started(e1) = svc
        .add_authenticator(
            "bea",
            "A",
            "bea@example.com",
            &code_at(&phone, clock.now_secs()),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    tick(&clock);
    let AddAuthenticatorOutcome::Started(e2) = svc
        .add_authenticator(
            "bea",
            "B",
            "bea@example.com",
            &code_at(&phone, clock.now_secs()),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    // The second start replaced the first pending one: only one can be confirmed.
    assert!(matches!(
        svc.confirm_enrolment("bea", &code_at(e1.secret(), clock.now_secs()))
            .await
            .unwrap(),
        ConfirmOutcome::Rejected
    ));
    assert!(matches!(
        svc.confirm_enrolment("bea", &code_at(e2.secret(), clock.now_secs()))
            .await
            .unwrap(),
        ConfirmOutcome::Added { .. }
    ));
    assert_eq!(svc.status("bea").await.unwrap().authenticators, 5);
}

#[tokio::test]
async fn removing_needs_a_factor_that_stays_and_never_the_last() {
    let (svc, _store, clock, events) = service();
    let (phone, codes) = enrol(&svc, &clock, "ann").await;
    let phone_id = svc.authenticators("ann").await.unwrap()[0].id.clone();
    tick(&clock);
    let (tablet, tablet_id) = add(
        &svc,
        &clock,
        "ann",
        "Tablet",
        &code_at(&phone, clock.now_secs()),
    )
    .await;

    tick(&clock);
    assert_eq!(
        svc.remove_authenticator("ann", &phone_id, &code_at(&phone, clock.now_secs()))
            .await
            .unwrap(),
        RemoveAuthenticatorOutcome::Rejected,
        "a code of the authenticator being removed does not prove a factor that stays"
    );
    assert_eq!(
        svc.remove_authenticator("ann", "no-such-id", &code_at(&tablet, clock.now_secs()))
            .await
            .unwrap(),
        RemoveAuthenticatorOutcome::NotFound
    );
    // The tablet is new: its code only schedules the removal of the phone.
    assert!(matches!(
        svc.remove_authenticator("ann", &phone_id, &code_at(&tablet, clock.now_secs()))
            .await
            .unwrap(),
        RemoveAuthenticatorOutcome::Scheduled { .. }
    ));
    assert_eq!(events.count("authenticator_removed"), 0);
    clock.advance(72 * 3600);
    assert_eq!(
        svc.complete_scheduled_changes("ann").await.unwrap().len(),
        1
    );
    assert_eq!(events.count("authenticator_removed"), 1);
    tick(&clock);
    assert!(
        !logs_in(&svc, "ann", &code_at(&phone, clock.now_secs())).await,
        "a removed authenticator's codes no longer log in"
    );
    assert_eq!(
        svc.remove_authenticator("ann", &tablet_id, codes[0].as_str())
            .await
            .unwrap(),
        RemoveAuthenticatorOutcome::LastAuthenticator,
        "the last authenticator goes only through disable"
    );
    // Nothing was spent on that refusal: the backup code still works (and, being a single code,
    // only schedules turning 2FA off); the tablet, now the only one, does it at once.
    assert!(matches!(
        svc.disable("ann", codes[0].as_str()).await.unwrap(),
        DisableOutcome::Scheduled { .. }
    ));
    tick(&clock);
    assert_eq!(
        svc.disable("ann", &code_at(&tablet, clock.now_secs()))
            .await
            .unwrap(),
        DisableOutcome::Disabled
    );
    assert!(svc.authenticators("ann").await.unwrap().is_empty());
}

#[tokio::test]
async fn replacing_a_phone_keeps_a_factor_at_every_moment() {
    let (svc, store, clock, _) = service();
    let (old, codes) = enrol(&svc, &clock, "ann").await;
    let old_id = svc.authenticators("ann").await.unwrap()[0].id.clone();
    tick(&clock);
    // With a backup code the new phone is added, but the old one's removal only scheduled.
    let AddAuthenticatorOutcome::Started(enrolment) = svc
        .replace_authenticator(
            "ann",
            &old_id,
            "Spare phone",
            "ann@example.com",
            codes[1].as_str(),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    let removal = enrolment.scheduled_removal().expect("scheduled").clone();
    assert_eq!(removal.not_before, clock.now_secs() + 72 * 3600);
    let spare = enrolment.secret().clone();
    match svc
        .confirm_enrolment("ann", &code_at(&spare, clock.now_secs()))
        .await
        .unwrap()
    {
        ConfirmOutcome::Added { replaced: None, .. } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(svc.authenticators("ann").await.unwrap().len(), 2);
    // The old phone's own code (the first authenticator) cancels that removal, and replaces at
    // once.
    tick(&clock);
    let AddAuthenticatorOutcome::Started(enrolment) = svc
        .replace_authenticator(
            "ann",
            &old_id,
            "New phone",
            "ann@example.com",
            &code_at(&old, clock.now_secs()),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(enrolment.scheduled_removal().is_none());
    assert!(svc.scheduled_changes("ann").await.unwrap().is_empty());
    let spare_id = svc.authenticators("ann").await.unwrap()[1].id.clone();
    tick(&clock);
    assert!(matches!(
        svc.remove_authenticator("ann", &spare_id, &code_at(&old, clock.now_secs()))
            .await
            .unwrap(),
        RemoveAuthenticatorOutcome::Removed
    ));
    let new = enrolment.secret().clone();
    // Until the new one is confirmed, the old phone still works and the new one does not.
    tick(&clock);
    assert!(logs_in(&svc, "ann", &code_at(&old, clock.now_secs())).await);
    assert!(!logs_in(&svc, "ann", &code_at(&new, clock.now_secs())).await);
    assert_eq!(svc.status("ann").await.unwrap().authenticators, 1);
    // A wrong confirmation changes nothing.
    assert!(matches!(
        svc.confirm_enrolment("ann", &wrong_code(&new, clock.now_secs(), 9))
            .await
            .unwrap(),
        ConfirmOutcome::Rejected
    ));
    assert_eq!(svc.authenticators("ann").await.unwrap()[0].id, old_id);
    match svc
        .confirm_enrolment("ann", &code_at(&new, clock.now_secs()))
        .await
        .unwrap()
    {
        ConfirmOutcome::Added {
            authenticator,
            replaced,
        } => {
            assert_eq!(replaced.as_deref(), Some(old_id.as_str()));
            let list = svc.authenticators("ann").await.unwrap();
            assert_eq!(list.len(), 1);
            assert_eq!(
                (list[0].id.as_str(), list[0].name.as_str()),
                (authenticator.as_str(), "New phone")
            );
        }
        other => panic!("{other:?}"),
    }
    tick(&clock);
    assert!(!logs_in(&svc, "ann", &code_at(&old, clock.now_secs())).await);
    assert!(logs_in(&svc, "ann", &code_at(&new, clock.now_secs())).await);
    assert_eq!(
        svc.status("ann").await.unwrap().backup_codes_remaining,
        codes.len() as u32 - 1
    );
    // Replacing an id that is not the user's is refused before any code is spent.
    assert!(matches!(
        svc.replace_authenticator("ann", &old_id, "x", "ann@example.com", codes[2].as_str())
            .await
            .unwrap(),
        AddAuthenticatorOutcome::NotFound
    ));
    let remaining = twofactor::store::CredentialStore::backup_codes_remaining(&store, "ann")
        .await
        .unwrap();
    assert_eq!(remaining, codes.len() as u32 - 1);
}

#[tokio::test]
async fn one_budget_for_all_authenticators() {
    let (svc, _store, clock, _) = service();
    let (phone, _) = enrol(&svc, &clock, "ann").await;
    for i in 1..5 {
        tick(&clock);
        add(
            &svc,
            &clock,
            "ann",
            &format!("Phone {i}"),
            &code_at(&phone, clock.now_secs()),
        )
        .await;
    }
    // The attacker guesses; five authenticators do not give five budgets: each guess is compared
    // with five secrets and weighs five units of the window's five.
    let c = challenge(&svc, "ann").await;
    let mut evaluated = 0;
    for i in 0..50 {
        match svc
            .complete_login(CompleteLogin::new(
                &c,
                SecondFactor::Typed(&wrong_code(&phone, clock.now_secs(), i * 7919)),
            ))
            .await
            .unwrap()
        {
            VerifyOutcome::Rejected => evaluated += 1,
            VerifyOutcome::RateLimited { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        evaluated, 1,
        "the user's budget (5 candidates per window) covers every authenticator"
    );
    let _ = Method::Totp { drift: 0 };
}

#[tokio::test]
async fn a_trusted_browser_skips_the_code_until_revoked_or_expired() {
    let (svc, _store, clock, events) = service();
    let (phone, _) = enrol(&svc, &clock, "ann").await;
    tick(&clock);
    let c = challenge(&svc, "ann").await;
    let VerifyOutcome::Success {
        device_token: Some(token),
        ..
    } = svc
        .complete_login(
            CompleteLogin::new(&c, SecondFactor::Typed(&code_at(&phone, clock.now_secs())))
                .remember(Remember::Trusted("Firefox on Linux")),
        )
        .await
        .unwrap()
    else {
        panic!("no token");
    };
    assert_eq!(events.count("device_trusted"), 1);
    let token = token.as_str().to_owned();
    assert!(matches!(
        svc.start_login(StartLogin::new("ann").device(Some(&token)))
            .await
            .unwrap(),
        LoginStart::TrustedDevice
    ));
    // Bound to the user: presented for someone else, it is ignored.
    enrol(&svc, &clock, "bob").await;
    assert!(matches!(
        svc.start_login(StartLogin::new("bob").device(Some(&token)))
            .await
            .unwrap(),
        LoginStart::Required { .. }
    ));
    // Garbage, over-long and absent tokens are ignored, not errors.
    for t in [None, Some(""), Some("x"), Some(&*"A".repeat(10_000))] {
        assert!(matches!(
            svc.start_login(StartLogin::new("ann").device(t))
                .await
                .unwrap(),
            LoginStart::Required { .. }
        ));
    }
    let list = svc.trusted_devices("ann").await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].label, "Firefox on Linux");
    assert_eq!(list[0].trusted_until, clock.now_secs() + 30 * 24 * 3600);
    assert!(!format!("{list:?}").contains(&token));
    assert!(list[0].is_token(&token), "the page can mark this browser");
    assert!(!list[0].is_token("some-other-token"));
    assert!(svc.trusted_devices("bob").await.unwrap().is_empty());

    // Revoked by its owner: the next login asks for a code.
    assert!(
        !svc.revoke_trusted_device("bob", &list[0].id).await.unwrap(),
        "not bob's"
    );
    assert!(svc.revoke_trusted_device("ann", &list[0].id).await.unwrap());
    assert!(matches!(
        svc.start_login(StartLogin::new("ann").device(Some(&token)))
            .await
            .unwrap(),
        LoginStart::Required { .. }
    ));
    assert!(svc.trusted_devices("ann").await.unwrap().is_empty());

    // Expiry: 30 days, then the browser keeps its own budget but asks for a code.
    tick(&clock);
    let c = challenge(&svc, "ann").await;
    let VerifyOutcome::Success {
        device_token: Some(token),
        ..
    } = svc
        .complete_login(
            CompleteLogin::new(&c, SecondFactor::Typed(&code_at(&phone, clock.now_secs())))
                .remember(Remember::Trusted("Chrome")),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    clock.set(clock.now_secs() + 30 * 24 * 3600 - 1);
    assert!(matches!(
        svc.start_login(StartLogin::new("ann").device(Some(token.as_str())))
            .await
            .unwrap(),
        LoginStart::TrustedDevice
    ));
    clock.set(clock.now_secs() + 1);
    assert!(matches!(
        svc.start_login(StartLogin::new("ann").device(Some(token.as_str())))
            .await
            .unwrap(),
        LoginStart::Required { .. }
    ));
    assert!(svc.trusted_devices("ann").await.unwrap().is_empty());
}

/// Trusts a browser for `user` with a fresh code; returns the token text.
async fn trust(svc: &Svc, clock: &ManualClock, user: &str, secret: &Secret) -> String {
    tick(clock);
    let c = challenge(svc, user).await;
    match svc
        .complete_login(
            CompleteLogin::new(&c, SecondFactor::Typed(&code_at(secret, clock.now_secs())))
                .remember(Remember::Trusted("Browser")),
        )
        .await
        .unwrap()
    {
        VerifyOutcome::Success {
            device_token: Some(t),
            ..
        } => t.as_str().to_owned(),
        other => panic!("{other:?}"),
    }
}

async fn trusted(svc: &Svc, user: &str, token: &str) -> bool {
    matches!(
        svc.start_login(StartLogin::new(user).device(Some(token)))
            .await
            .unwrap(),
        LoginStart::TrustedDevice
    )
}

#[tokio::test]
async fn every_trusted_browser_is_revoked_by_password_change_disable_recovery_and_reset() {
    let (svc, _store, clock, _) = service();
    let (phone, codes) = enrol(&svc, &clock, "ann").await;

    let t = trust(&svc, &clock, "ann", &phone).await;
    svc.password_changed("ann", None).await.unwrap();
    assert!(!trusted(&svc, "ann", &t).await, "password_changed");

    let t = trust(&svc, &clock, "ann", &phone).await;
    assert_eq!(svc.forget_devices("ann").await.unwrap(), 1);
    assert!(!trusted(&svc, "ann", &t).await, "forget_devices");

    let t = trust(&svc, &clock, "ann", &phone).await;
    assert!(svc.admin_reset("ann").await.unwrap());
    let (phone, _) = enrol(&svc, &clock, "ann").await;
    assert!(!trusted(&svc, "ann", &t).await, "admin_reset");

    let t = trust(&svc, &clock, "ann", &phone).await;
    let _ = svc.request_recovery("ann", None).await.unwrap();
    svc.approve_recovery("ann").await.unwrap();
    assert!(matches!(
        svc.complete_recovery("ann").await.unwrap(),
        twofactor::RecoveryCompletion::Completed
    ));
    let (phone, codes2) = enrol(&svc, &clock, "ann").await;
    assert!(!trusted(&svc, "ann", &t).await, "complete_recovery");

    let t = trust(&svc, &clock, "ann", &phone).await;
    // A backup code only schedules it; the first authenticator's code turns 2FA off at once.
    assert!(matches!(
        svc.disable("ann", codes2[0].as_str()).await.unwrap(),
        DisableOutcome::Scheduled { .. }
    ));
    clock.advance(30);
    assert_eq!(
        svc.disable("ann", &code_at(&phone, twofactor::Clock::now(&clock)))
            .await
            .unwrap(),
        DisableOutcome::Disabled
    );
    let (_phone, _) = enrol(&svc, &clock, "ann").await;
    assert!(
        !trusted(&svc, "ann", &t).await,
        "a browser trusted before 2FA was turned off must not skip a factor enrolled later"
    );
    drop(codes);
}

#[tokio::test]
async fn the_password_alone_cannot_make_a_browser_trusted() {
    let (svc, _store, clock, _) = service();
    let (phone, _) = enrol(&svc, &clock, "ann").await;
    // An attacker with the password: a challenge, wrong codes, no token.
    let c = challenge(&svc, "ann").await;
    for i in 0..5 {
        let out = svc
            .complete_login(
                CompleteLogin::new(
                    &c,
                    SecondFactor::Typed(&wrong_code(&phone, clock.now_secs(), i)),
                )
                .remember(Remember::Trusted("Evil")),
            )
            .await
            .unwrap();
        assert!(matches!(out, VerifyOutcome::Rejected), "{out:?}");
    }
    assert!(svc.trusted_devices("ann").await.unwrap().is_empty());
    // A known (untrusted) device token from an ordinary login does not skip the code either.
    tick(&clock);
    let c = challenge(&svc, "ann").await;
    clock.set(clock.now_secs() + 3600);
    let c2 = challenge(&svc, "ann").await;
    drop(c);
    let VerifyOutcome::Success {
        device_token: Some(known),
        ..
    } = svc
        .complete_login(
            CompleteLogin::new(&c2, SecondFactor::Typed(&code_at(&phone, clock.now_secs())))
                .remember(Remember::Device),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(!trusted(&svc, "ann", known.as_str()).await);
}

#[tokio::test]
async fn renewing_a_trusted_token_keeps_its_trust_and_revokes_the_old_one() {
    let mut config = config();
    config.device_ttl_secs = 40 * 24 * 3600;
    config.trusted_device_ttl_secs = 30 * 24 * 3600;
    let store = twofactor::MemoryStore::new();
    let (svc, clock, _) = service_with(store, twofactor::Keyring::single(1, KEY1), config);
    let (phone, _) = enrol(&svc, &clock, "ann").await;
    let old = trust(&svc, &clock, "ann", &phone).await;
    let until = svc.trusted_devices("ann").await.unwrap()[0].trusted_until;
    // Past half the token's life (20 days), a login with a code renews the token.
    clock.set(clock.now_secs() + 21 * 24 * 3600);
    let c = challenge(&svc, "ann").await;
    let VerifyOutcome::Success {
        device_token: Some(new),
        ..
    } = svc
        .complete_login(
            CompleteLogin::new(&c, SecondFactor::Typed(&code_at(&phone, clock.now_secs())))
                .device(Some(&old))
                .remember(Remember::Device),
        )
        .await
        .unwrap()
    else {
        panic!("no renewal")
    };
    assert!(
        trusted(&svc, "ann", new.as_str()).await,
        "the renewed token keeps the trust"
    );
    assert!(
        !trusted(&svc, "ann", &old).await,
        "the old token is revoked"
    );
    let list = svc.trusted_devices("ann").await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].trusted_until, until,
        "renewal does not extend the trust"
    );
}
