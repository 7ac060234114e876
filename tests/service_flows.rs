//! Service flows over `MemoryStore` with a `ManualClock`: enrolment, login, backup codes,
//! disable, regenerate, status, recovery, admin reset, drift, lazy key rotation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "service_support/mod.rs"]
mod support;

use support::*;
use twofactor::audit::{AuditEvent, CancelledBy};
use twofactor::service::{
    CompleteLogin, LoginStart, Method, Remember, SecondFactor, StartLogin, Verify,
};
use twofactor::store::CredentialStore;
use twofactor::{
    ConfirmOutcome, DisableOutcome, EnrolmentStart, Keyring, RecoveryCompletion, RecoveryRequest,
    RegenerateOutcome, VerifyOutcome,
};

/// The application's word that it verified the user's e-mail just now.
fn email(clock: &twofactor::ManualClock) -> Option<twofactor::service::VerifiedChannel> {
    email_at(twofactor::Clock::now(clock))
}

/// What a success shows the caller, without its proof (which carries the time of the check).
fn success(user: &str, method: Method) -> Option<(String, Method, bool)> {
    Some((user.to_owned(), method, false))
}

fn seen(outcome: VerifyOutcome) -> Option<(String, Method, bool)> {
    match outcome {
        VerifyOutcome::Success {
            user_id,
            method,
            device_token,
            proof,
        } => {
            assert_eq!(proof.user_id(), user_id, "the proof is the user's");
            Some((user_id, method, device_token.is_some()))
        }
        _ => None,
    }
}

#[tokio::test]
async fn enrol_then_log_in_with_totp() {
    let (svc, _store, clock, events) = service();
    assert!(matches!(
        svc.start_login(StartLogin::new("alice")).await.unwrap(),
        LoginStart::NotRequired
    ));
    let EnrolmentStart::Started(enrolment) = svc
        .start_enrolment("alice", "alice@example.com")
        .await
        .unwrap()
    else {
        panic!()
    };
    let uri = enrolment.otpauth_uri();
    assert!(
        uri.starts_with("otpauth://totp/Example:alice@example.com?"),
        "unexpected URI shape"
    );
    assert!(uri.contains(&*enrolment.secret_base32()));
    assert!(enrolment.qr().unwrap().to_svg().starts_with("<svg"));
    assert_eq!(format!("{enrolment:?}"), "Enrolment([REDACTED])");
    let secret = enrolment.secret().clone();

    let code = code_at(&secret, T0);
    let ConfirmOutcome::Confirmed { backup_codes } =
        svc.confirm_enrolment("alice", &code).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(backup_codes.len(), 8);
    let status = svc.status("alice").await.unwrap();
    assert!(status.enabled && !status.pending);
    assert_eq!(status.backup_codes_remaining, 8);
    assert_eq!(status.last_drift, Some(0));

    clock.advance(30);
    let LoginStart::Required {
        challenge,
        expires_at,
    } = svc.start_login(StartLogin::new("alice")).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(expires_at, T0 + 30 + 300);
    assert!(challenge.as_str().len() >= 22, "at least 128 bits");
    assert_eq!(format!("{challenge:?}"), "ChallengeToken([REDACTED])");
    // Spaces as people type them are ignored.
    let typed = code_at(&secret, T0 + 30);
    let spaced = format!(" {} {} ", &typed[..3], &typed[3..]);
    assert_eq!(
        seen(login(&svc, challenge.as_str(), &spaced).await),
        success("alice", Method::Totp { drift: 0 })
    );
    assert_eq!(
        events.kinds(),
        [
            "enrolment_started",
            "enrolment_confirmed",
            "verification_succeeded"
        ]
    );
}

#[tokio::test]
async fn pending_never_enables_2fa_and_restarting_replaces_it() {
    let (svc, _store, clock, _events) = service();
    let EnrolmentStart::Started(first) = svc.start_enrolment("bob", "bob").await.unwrap() else {
        panic!()
    };
    // Pending: no second factor required, codes do not log in, status says pending.
    assert!(matches!(
        svc.start_login(StartLogin::new("bob")).await.unwrap(),
        LoginStart::NotRequired
    ));
    let code = code_at(first.secret(), T0);
    assert_eq!(reauth(&svc, "bob", &code).await, VerifyOutcome::Rejected);
    let status = svc.status("bob").await.unwrap();
    assert!(!status.enabled && status.pending);
    assert_eq!(status.last_drift, None);

    let EnrolmentStart::Started(second) = svc.start_enrolment("bob", "bob").await.unwrap() else {
        panic!()
    };
    assert_ne!(first.secret(), second.secret());
    // The replaced secret no longer confirms; the new one does.
    assert!(matches!(
        svc.confirm_enrolment("bob", &code_at(first.secret(), T0))
            .await
            .unwrap(),
        ConfirmOutcome::Rejected
    ));
    assert!(matches!(
        svc.confirm_enrolment("bob", &code_at(second.secret(), T0))
            .await
            .unwrap(),
        ConfirmOutcome::Confirmed { .. }
    ));
    // Enabled: a new enrolment cannot overwrite it; confirming again is rejected.
    assert!(matches!(
        svc.start_enrolment("bob", "bob").await.unwrap(),
        EnrolmentStart::AlreadyEnabled
    ));
    clock.advance(30);
    assert!(matches!(
        svc.confirm_enrolment("bob", &code_at(second.secret(), T0 + 30))
            .await
            .unwrap(),
        ConfirmOutcome::Rejected
    ));
}

#[tokio::test]
async fn a_step_is_accepted_once_including_the_confirmation_step() {
    let (svc, _store, clock, events) = service();
    let (secret, _) = enrol(&svc, &clock, "carol").await;
    // The confirming code is used: it does not log in, even on a fresh challenge.
    let c = challenge(&svc, "carol").await;
    assert_eq!(
        login(&svc, &c, &code_at(&secret, T0)).await,
        VerifyOutcome::Rejected
    );
    assert_eq!(events.count("replay_rejected"), 1);
    clock.advance(30);
    let now = T0 + 30;
    assert!(
        reauth(&svc, "carol", &code_at(&secret, now))
            .await
            .is_success()
    );
    // The same code again, and the older step's code (still inside the window): refused.
    assert_eq!(
        reauth(&svc, "carol", &code_at(&secret, now)).await,
        VerifyOutcome::Rejected
    );
    assert_eq!(
        reauth(&svc, "carol", &code_at(&secret, now - 30)).await,
        VerifyOutcome::Rejected
    );
    // The next step's code (app clock ahead) is accepted with drift +1, then the current one
    // is refused because it is not later.
    assert_eq!(
        seen(reauth(&svc, "carol", &code_at(&secret, now + 30)).await),
        success("carol", Method::Totp { drift: 1 })
    );
    assert_eq!(svc.status("carol").await.unwrap().last_drift, Some(1));
    clock.advance(30);
    assert_eq!(
        reauth(&svc, "carol", &code_at(&secret, now + 30)).await,
        VerifyOutcome::Rejected
    );
}

#[tokio::test]
async fn backup_codes_log_in_once_each() {
    let (svc, _store, clock, events) = service();
    let (_secret, codes) = enrol(&svc, &clock, "dave").await;
    let c = challenge(&svc, "dave").await;
    assert_eq!(
        seen(login(&svc, &c, codes[0].as_str()).await),
        success("dave", Method::BackupCode { remaining: 7 })
    );
    // Used up, on a new challenge too.
    let c = challenge(&svc, "dave").await;
    assert_eq!(
        login(&svc, &c, codes[0].as_str()).await,
        VerifyOutcome::Rejected
    );
    // Typed sloppily: lower case, no hyphen, spaces.
    let sloppy = codes[1].as_str().replace('-', " ").to_lowercase();
    assert_eq!(
        seen(login(&svc, &c, &sloppy).await),
        success("dave", Method::BackupCode { remaining: 6 })
    );
    assert_eq!(svc.status("dave").await.unwrap().backup_codes_remaining, 6);
    assert_eq!(events.count("backup_code_used"), 2);
    // Another user's code is not ours.
    let (_s, erin_codes) = enrol(&svc, &clock, "erin").await;
    assert_eq!(
        reauth(&svc, "dave", erin_codes[0].as_str()).await,
        VerifyOutcome::Rejected
    );
}

#[tokio::test]
async fn challenges_are_single_use_expire_and_survive_a_typo() {
    let (svc, _store, clock, _events) = service();
    let (secret, codes) = enrol(&svc, &clock, "frank").await;
    clock.advance(30);
    let c = challenge(&svc, "frank").await;
    // A failed attempt does not consume the challenge.
    assert_eq!(
        login(&svc, &c, &wrong_code(&secret, T0 + 30, 1)).await,
        VerifyOutcome::Rejected
    );
    assert!(
        login(&svc, &c, &code_at(&secret, T0 + 30))
            .await
            .is_success()
    );
    // A success does: the challenge is gone even with a valid backup code.
    assert_eq!(
        login(&svc, &c, codes[0].as_str()).await,
        VerifyOutcome::Rejected
    );
    assert_eq!(svc.status("frank").await.unwrap().backup_codes_remaining, 8);
    // Expiry: 300 s.
    let c = challenge(&svc, "frank").await;
    clock.advance(300);
    assert_eq!(
        login(&svc, &c, codes[0].as_str()).await,
        VerifyOutcome::Rejected
    );
    let c = challenge(&svc, "frank").await;
    clock.advance(299);
    assert!(login(&svc, &c, codes[0].as_str()).await.is_success());
    // Garbage challenges.
    for bogus in ["", "x", &"A".repeat(10_000)] {
        assert_eq!(
            login(&svc, bogus, codes[1].as_str()).await,
            VerifyOutcome::Rejected
        );
    }
}

#[tokio::test]
async fn unknown_user_no_2fa_and_wrong_code_look_the_same() {
    let (svc, _store, clock, _events) = service();
    let (secret, _) = enrol(&svc, &clock, "gina").await;
    let _ = svc.start_enrolment("pending-user", "p").await.unwrap();
    let wrong = wrong_code(&secret, T0, 42);
    for user in ["gina", "nobody", "pending-user"] {
        assert_eq!(
            reauth(&svc, user, &wrong).await,
            VerifyOutcome::Rejected,
            "{user}"
        );
        // Three malformed inputs: the same `Malformed` for all three, and nothing spent.
        for garbage in ["", "12345", "💥"] {
            assert_eq!(
                reauth(&svc, user, garbage).await,
                VerifyOutcome::Malformed { digits: 6 },
                "{user} {garbage:?}"
            );
        }
        // Well-formed wrong codes (TOTP and backup-shaped): five attempts with the first.
        for guess in [wrong_code(&secret, T0, 43), wrong_code(&secret, T0, 44)]
            .iter()
            .map(String::as_str)
            .chain(["ZZZZZ-ZZZZZ", "ZZZZZ-ZZZZY"])
        {
            assert_eq!(
                reauth(&svc, user, guess).await,
                VerifyOutcome::Rejected,
                "{user} {guess:?}"
            );
        }
        // The sixth attempt is refused the same way for all three.
        assert_eq!(
            reauth(&svc, user, &wrong).await,
            VerifyOutcome::RateLimited {
                retry_after_secs: 600
            },
            "{user}"
        );
    }
    // Bad user ids are input errors, not outcomes.
    assert!(
        svc.verify(Verify::new("", SecondFactor::Typed("123456")))
            .await
            .is_err()
    );
    assert!(
        svc.verify(Verify::new(&"u".repeat(300), SecondFactor::Typed("123456")))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn disable_and_regenerate_need_a_valid_code() {
    let (svc, _store, clock, events) = service();
    let (secret, codes) = enrol(&svc, &clock, "hank").await;
    clock.advance(30);
    let now = T0 + 30;
    assert_eq!(
        svc.disable("hank", &wrong_code(&secret, now, 7))
            .await
            .unwrap(),
        DisableOutcome::Rejected
    );
    assert!(matches!(
        svc.regenerate_backup_codes("hank", &wrong_code(&secret, now, 8))
            .await
            .unwrap(),
        RegenerateOutcome::Rejected
    ));
    assert!(svc.status("hank").await.unwrap().enabled);

    // Regenerate with a TOTP code: old codes are void, new ones work.
    let RegenerateOutcome::Regenerated { backup_codes: new } = svc
        .regenerate_backup_codes("hank", &code_at(&secret, now))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(new.len(), 8);
    assert_eq!(
        reauth(&svc, "hank", codes[0].as_str()).await,
        VerifyOutcome::Rejected
    );
    // Disable with a backup code: only scheduled (a single code takes nothing away at once).
    assert!(matches!(
        svc.disable("hank", new[0].as_str()).await.unwrap(),
        DisableOutcome::Scheduled { .. }
    ));
    assert!(svc.status("hank").await.unwrap().enabled);
    // With the app's code (its first authenticator): at once.
    clock.advance(30);
    assert_eq!(
        svc.disable("hank", &code_at(&secret, now + 30))
            .await
            .unwrap(),
        DisableOutcome::Disabled
    );
    let status = svc.status("hank").await.unwrap();
    assert!(!status.enabled && !status.pending);
    assert_eq!(status.backup_codes_remaining, 0);
    assert!(matches!(
        svc.start_login(StartLogin::new("hank")).await.unwrap(),
        LoginStart::NotRequired
    ));
    assert_eq!(events.count("backup_codes_regenerated"), 1);
    assert_eq!(events.count("disabled"), 1);
    // Without 2FA, disable is rejected.
    assert_eq!(
        svc.disable("hank", new[1].as_str()).await.unwrap(),
        DisableOutcome::Rejected
    );
}

#[tokio::test]
async fn recovery_waits_72_hours_unless_approved() {
    let (svc, _store, clock, events) = service();
    assert!(matches!(
        svc.request_recovery("ivan", email(&clock)).await.unwrap(),
        RecoveryRequest::NotEnrolled
    ));
    enrol(&svc, &clock, "ivan").await;
    assert_eq!(
        svc.complete_recovery("ivan").await.unwrap(),
        RecoveryCompletion::NoRequest
    );
    let RecoveryRequest::Requested {
        not_before,
        needs_approval,
        ..
    } = svc.request_recovery("ivan", email(&clock)).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(not_before, T0 + 72 * 3600);
    assert!(!needs_approval, "a quiet account waits, no operator needed");
    assert!(svc.status("ivan").await.unwrap().recovery.is_some());
    assert_eq!(
        svc.complete_recovery("ivan").await.unwrap(),
        RecoveryCompletion::Waiting {
            retry_after_secs: 72 * 3600
        }
    );
    clock.advance(72 * 3600 - 1);
    assert_eq!(
        svc.complete_recovery("ivan").await.unwrap(),
        RecoveryCompletion::Waiting {
            retry_after_secs: 1
        }
    );
    assert!(svc.status("ivan").await.unwrap().enabled);
    clock.advance(1);
    assert_eq!(
        svc.complete_recovery("ivan").await.unwrap(),
        RecoveryCompletion::Completed
    );
    let status = svc.status("ivan").await.unwrap();
    assert!(!status.enabled && status.recovery.is_none());
    assert_eq!(
        svc.complete_recovery("ivan").await.unwrap(),
        RecoveryCompletion::NoRequest
    );
    assert_eq!(events.count("recovery_requested"), 1);
    assert_eq!(events.count("recovery_completed"), 1);

    // Approval: completes at once.
    enrol(&svc, &clock, "judy").await;
    assert!(!svc.approve_recovery("judy").await.unwrap());
    let _ = svc.request_recovery("judy", None).await.unwrap();
    assert!(svc.approve_recovery("judy").await.unwrap());
    assert_eq!(
        svc.complete_recovery("judy").await.unwrap(),
        RecoveryCompletion::Completed
    );
    assert_eq!(events.count("recovery_approved"), 1);
}

#[tokio::test]
async fn a_second_factor_login_cancels_recovery() {
    let (svc, _store, clock, events) = service();
    let (secret, codes) = enrol(&svc, &clock, "kim").await;
    let _ = svc.request_recovery("kim", None).await.unwrap();
    clock.advance(3600);
    let c = challenge(&svc, "kim").await;
    assert!(
        login(&svc, &c, &code_at(&secret, T0 + 3600))
            .await
            .is_success()
    );
    assert!(events.all().contains(&AuditEvent::RecoveryCancelled {
        user_id: "kim".into(),
        by: CancelledBy::SecondFactorLogin
    }));
    clock.advance(72 * 3600);
    assert_eq!(
        svc.complete_recovery("kim").await.unwrap(),
        RecoveryCompletion::NoRequest
    );
    assert!(svc.status("kim").await.unwrap().enabled);
    // A backup-code login cancels too; an explicit cancel works.
    let _ = svc.request_recovery("kim", None).await.unwrap();
    assert!(reauth(&svc, "kim", codes[0].as_str()).await.is_success());
    assert_eq!(svc.status("kim").await.unwrap().recovery, None);
    let _ = svc.request_recovery("kim", None).await.unwrap();
    assert!(svc.cancel_recovery("kim").await.unwrap());
    assert!(!svc.cancel_recovery("kim").await.unwrap());
    assert_eq!(events.count("recovery_cancelled"), 3);
}

#[tokio::test]
async fn admin_reset_removes_the_factor_and_the_lockout() {
    let (svc, _store, clock, events) = service();
    let (secret, _) = enrol(&svc, &clock, "leo").await;
    for i in 0..5 {
        assert_eq!(
            reauth(&svc, "leo", &wrong_code(&secret, T0, i)).await,
            VerifyOutcome::Rejected
        );
    }
    assert!(matches!(
        reauth(&svc, "leo", "000000").await,
        VerifyOutcome::RateLimited { .. }
    ));
    assert!(svc.admin_reset("leo").await.unwrap());
    assert!(!svc.status("leo").await.unwrap().enabled);
    assert!(events.all().contains(&AuditEvent::AdminReset {
        user_id: "leo".into(),
        existed: true
    }));
    // Re-enrol at once: the limiter was reset with the factor.
    let (secret, _) = enrol(&svc, &clock, "leo").await;
    clock.advance(30);
    assert!(
        reauth(&svc, "leo", &code_at(&secret, T0 + 30))
            .await
            .is_success()
    );
    assert!(!svc.admin_reset("nobody").await.unwrap());
}

#[tokio::test]
async fn drift_is_recorded_and_followed_only_when_configured() {
    // Default: the window stays centred on the server's time.
    let (svc, _store, clock, _events) = service();
    let (secret, _) = enrol(&svc, &clock, "mia").await;
    clock.advance(60);
    let now = T0 + 60;
    assert_eq!(
        seen(reauth(&svc, "mia", &code_at(&secret, now - 30)).await),
        success("mia", Method::Totp { drift: -1 })
    );
    assert_eq!(svc.status("mia").await.unwrap().last_drift, Some(-1));
    clock.advance(60);
    assert_eq!(
        reauth(&svc, "mia", &code_at(&secret, now + 60 - 60)).await,
        VerifyOutcome::Rejected,
        "two steps behind is outside ±1"
    );

    // follow_drift: the window is centred on the last drift.
    let mut cfg = config();
    cfg.follow_drift = true;
    let store = twofactor::MemoryStore::new();
    let (svc, clock, _events) = service_with(store, Keyring::single(1, KEY1), cfg);
    let (secret, _) = enrol(&svc, &clock, "mia").await;
    clock.advance(60);
    assert!(
        reauth(&svc, "mia", &code_at(&secret, T0 + 30))
            .await
            .is_success()
    );
    clock.advance(60);
    assert_eq!(
        seen(reauth(&svc, "mia", &code_at(&secret, T0 + 60)).await),
        success("mia", Method::Totp { drift: -2 })
    );
}

#[tokio::test]
async fn stale_keys_are_rotated_lazily() {
    let store = twofactor::MemoryStore::new();
    let (old, clock, _) = service_with(store.clone(), Keyring::single(1, KEY1), config());
    let (secret, _) = enrol(&old, &clock, "nina").await;
    let before = store.get_credentials("nina").await.unwrap().pop().unwrap();

    let ring = Keyring::new([(1, KEY1), (2, KEY2)], 2).unwrap();
    let (svc, clock2, events) = service_with(store.clone(), ring, config());
    clock2.set(T0 + 30);
    // A failure does not rewrite.
    assert_eq!(
        reauth(&svc, "nina", &wrong_code(&secret, T0 + 30, 5)).await,
        VerifyOutcome::Rejected
    );
    assert_eq!(
        store.get_credentials("nina").await.unwrap().pop().unwrap(),
        before
    );
    assert!(
        reauth(&svc, "nina", &code_at(&secret, T0 + 30))
            .await
            .is_success()
    );
    let after = store.get_credentials("nina").await.unwrap().pop().unwrap();
    assert_ne!(after.encrypted_secret, before.encrypted_secret);
    assert_eq!(events.count("secret_reencrypted"), 1);
    // Only key 2 is needed now: a ring without key 1 still logs the user in.
    let (svc2, clock3, events2) = service_with(store.clone(), Keyring::single(2, KEY2), config());
    clock3.set(T0 + 60);
    assert!(
        reauth(&svc2, "nina", &code_at(&secret, T0 + 60))
            .await
            .is_success()
    );
    assert_eq!(events2.count("secret_reencrypted"), 0);
    // And the old ring alone can no longer decrypt it: fail closed, an error.
    clock.set(T0 + 90);
    assert!(
        old.verify(Verify::new(
            "nina",
            SecondFactor::Typed(&code_at(&secret, T0 + 90))
        ))
        .await
        .is_err()
    );
}

/// Codes repeat: with this secret, steps 57,093,232 and 57,093,233 share the code 991153
/// (found by exhaustive search). After the first is used, the owner's fresh code for the second
/// must be accepted, not taken for a replay of the first.
#[tokio::test]
async fn a_fresh_code_equal_to_a_used_one_is_not_a_replay() {
    let (svc, store, clock, _events) = service();
    let secret = b"twofactor-collide-test!!";
    let blob = Keyring::single(1, KEY1)
        .encrypt_sync(secret, &twofactor::crypto::secret_aad("zed"))
        .unwrap();
    let record = twofactor::store::CredentialRecord {
        id: "zed-phone".into(),
        name: "Phone".into(),
        encrypted_secret: blob.clone(),
        algorithm: twofactor::Algorithm::Sha1,
        digits: 6,
        period: 30,
        enabled: false,
        last_step: None,
        drift: 0,
        created_at: T0,
        last_used_at: None,
        replaces: None,
    };
    assert!(store.put_pending("zed", &record, true).await.unwrap());
    assert!(
        store
            .activate("zed", &blob, 57_093_232, 0, Some(&[]), 5)
            .await
            .unwrap()
    );
    clock.set(57_093_233 * 30 + 5);
    assert_eq!(
        seen(reauth(&svc, "zed", "991153").await),
        success("zed", Method::Totp { drift: 0 })
    );
    // Now both steps are used.
    assert_eq!(reauth(&svc, "zed", "991153").await, VerifyOutcome::Rejected);
}

#[tokio::test]
async fn one_store_for_both_with_the_default_type_parameters() {
    // `TwoFactor<S>` is `TwoFactor<S, S, Keyring, SystemClock>`.
    let svc: twofactor::TwoFactor<twofactor::MemoryStore> = twofactor::TwoFactor::from_store(
        twofactor::MemoryStore::new(),
        Keyring::single(1, KEY1),
        twofactor::BackupCodeKey::from_bytes([3u8; 32]),
        config(),
    )
    .unwrap();
    let EnrolmentStart::Started(e) = svc.start_enrolment("zoe", "zoe").await.unwrap() else {
        panic!()
    };
    let now = twofactor::Clock::now(&twofactor::SystemClock);
    let code = code_at(e.secret(), now);
    assert!(matches!(
        svc.confirm_enrolment("zoe", &code).await.unwrap(),
        ConfirmOutcome::Confirmed { .. }
    ));
}

/// A device token only counts for the user it was issued to: a forged, oversized, expired or
/// foreign token is ignored (the user's budget applies), never an error.
/// A device token presented without asking to remember the browser still draws on the device's
/// own budget, and the success leaves nothing new on the browser.
#[tokio::test]
async fn a_device_token_without_remember_keeps_its_budget_and_gets_nothing_new() {
    let (svc, _store, clock, _events) = service();
    let (secret, _) = enrol(&svc, &clock, "cal").await;
    clock.advance(30);
    let device = log_in_keeping_device(&svc, "cal", &code_at(&secret, T0 + 30)).await;
    for i in 0..5 {
        let g = wrong_code(&secret, T0 + 30, 13 * i);
        let _ = svc
            .verify(Verify::new("cal", SecondFactor::Typed(&g)))
            .await
            .unwrap();
    }
    clock.advance(30);
    let c = challenge(&svc, "cal").await;
    let code = code_at(&secret, T0 + 60);
    assert!(matches!(
        login(&svc, &c, &code).await,
        VerifyOutcome::RateLimited { .. }
    ));
    let outcome = svc
        .complete_login(
            CompleteLogin::new(&c, SecondFactor::Typed(&code)).device(Some(device.as_str())),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            VerifyOutcome::Success {
                device_token: None,
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn device_tokens_of_others_forged_or_expired_are_ignored() {
    let (svc, _store, clock, _events) = service();
    let (secret_a, _) = enrol(&svc, &clock, "amy").await;
    let (secret_b, _) = enrol(&svc, &clock, "ben").await;
    clock.advance(30);
    let amy_device = log_in_keeping_device(&svc, "amy", &code_at(&secret_a, T0 + 30)).await;
    // Ben locks his own budget, then presents Amy's token, a forged one and an oversized one:
    // each is ignored, so the attempt is refused by Ben's budget.
    for i in 0..5 {
        let g = wrong_code(&secret_b, T0 + 30, 17 * i);
        assert_eq!(reauth(&svc, "ben", &g).await, VerifyOutcome::Rejected);
    }
    let long = "A".repeat(10_000);
    for token in [amy_device.as_str(), "forged-token", long.as_str(), ""] {
        let c = challenge(&svc, "ben").await;
        assert!(
            matches!(
                svc.complete_login(
                    CompleteLogin::new(&c, SecondFactor::Typed(&code_at(&secret_b, T0 + 30)))
                        .device(Some(token))
                        .remember(Remember::Device)
                )
                .await
                .unwrap(),
                VerifyOutcome::RateLimited { .. }
            ),
            "{} bytes",
            token.len()
        );
        assert!(matches!(
            svc.verify(
                Verify::new("ben", SecondFactor::Typed(&code_at(&secret_b, T0 + 30)))
                    .device(Some(token))
            )
            .await
            .unwrap(),
            VerifyOutcome::RateLimited { .. }
        ));
    }
    // Amy's token expires after 90 days; then a login issues a new one.
    clock.advance(91 * 86_400);
    let now = clock.now_secs();
    let c = challenge(&svc, "amy").await;
    let outcome = svc
        .complete_login(
            CompleteLogin::new(&c, SecondFactor::Typed(&code_at(&secret_a, now)))
                .device(Some(amy_device.as_str()))
                .remember(Remember::Device),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            VerifyOutcome::Success {
                device_token: Some(_),
                ..
            }
        ),
        "{outcome:?}"
    );
    // Forgetting the devices revokes them.
    assert_eq!(svc.forget_devices("amy").await.unwrap(), 2);
    assert_eq!(svc.forget_devices("amy").await.unwrap(), 0);
}
