//! The `serde` feature: every non-secret public type round-trips through JSON in a stable,
//! readable shape, and what carries a secret never reaches the output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "service_support/mod.rs"]
mod support;

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use support::*;
use twofactor::audit::{AuditEvent, CancelledBy, Factor, FailureReason};
use twofactor::rate_limit::{Decision, LimiterState};
use twofactor::service::{
    CompleteLogin, Config, LoginStart, Method, RecoveryStatus, Remember, SecondFactor, StartLogin,
    Status,
};
use twofactor::{
    Algorithm, Diagnosis, Digits, DisableOutcome, HotpOutcome, OtpAuthUri, OtpKind,
    RateLimitPolicy, RecoveryCompletion, Secret, TotpMatch, TotpOutcome, VerifyOutcome, Window,
};

/// Serialises to `expected`, and reads back to an equal value.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    value: &T,
    expected: serde_json::Value,
) {
    let json = serde_json::to_value(value).unwrap();
    assert_eq!(json, expected, "{value:?}");
    let back: T = serde_json::from_value(json).unwrap();
    assert_eq!(&back, value);
}

fn shape<T: Serialize + Debug>(value: &T, expected: serde_json::Value) {
    assert_eq!(serde_json::to_value(value).unwrap(), expected, "{value:?}");
}

#[test]
fn otp_types() {
    round_trip(&Algorithm::Sha1, json!("SHA1"));
    round_trip(&Algorithm::Sha256, json!("SHA256"));
    round_trip(&Algorithm::Sha512, json!("SHA512"));
    assert!(serde_json::from_value::<Algorithm>(json!("MD5")).is_err());
    round_trip(&Digits::new(8).unwrap(), json!(8));
    assert!(serde_json::from_value::<Digits>(json!(5)).is_err());
    assert!(serde_json::from_value::<Digits>(json!(11)).is_err());
    round_trip(&Window::new(2, 1).unwrap(), json!({"past": 2, "future": 1}));
    // A configuration file cannot widen the window past the cap: that takes `danger`.
    assert!(serde_json::from_value::<Window>(json!({"past": 11, "future": 0})).is_err());
    let m = TotpMatch {
        step: 56_666_666,
        drift: -1,
    };
    round_trip(&m, json!({"step": 56_666_666, "drift": -1}));
    round_trip(
        &TotpOutcome::Valid(m),
        json!({"outcome": "valid", "step": 56_666_666, "drift": -1}),
    );
    round_trip(&TotpOutcome::Invalid, json!({"outcome": "invalid"}));
    round_trip(
        &HotpOutcome::Valid { counter: 7 },
        json!({"outcome": "valid", "counter": 7}),
    );
    round_trip(&HotpOutcome::Invalid, json!({"outcome": "invalid"}));
    let d = Diagnosis {
        offset_steps: -2,
        offset_seconds: -60,
    };
    round_trip(&d, json!({"offset_steps": -2, "offset_seconds": -60}));
}

#[test]
fn uri_parts_without_the_secret() {
    let secret = Secret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
    let uri = OtpAuthUri::totp_builder(secret, "alice@example.com")
        .issuer("Example")
        .digits(8)
        .build()
        .unwrap();
    let parts = uri.parts();
    round_trip(
        &parts,
        json!({
            "kind": {"type": "totp", "period": 30},
            "issuer": "Example",
            "account": "alice@example.com",
            "algorithm": "SHA1",
            "digits": 8,
        }),
    );
    assert!(!serde_json::to_string(&parts).unwrap().contains("GEZDGNBV"));
    round_trip(
        &OtpKind::Hotp { counter: 3 },
        json!({"type": "hotp", "counter": 3}),
    );
}

#[test]
fn rate_limit_types() {
    let policy = RateLimitPolicy::totp_default();
    let json = serde_json::to_value(policy).unwrap();
    assert_eq!(json["max_failures"], json!(policy.max_failures));
    assert_eq!(
        serde_json::from_value::<RateLimitPolicy>(json).unwrap(),
        policy
    );
    let state = LimiterState::from_parts(100, 2, 3, 400, 50, 4, 90);
    round_trip(
        &state,
        json!({
            "window_start": 100, "attempts": 2, "failures": 3, "locked_until": 400,
            "forgiven_at": 50, "since_success": 4, "last_success_at": 90,
        }),
    );
    shape(&Decision::Allowed, json!({"decision": "allowed"}));
}

#[test]
fn config_reads_a_partial_file_and_round_trips() {
    let full = Config::new("Example");
    let json = serde_json::to_value(&full).unwrap();
    assert_eq!(json["algorithm"], json!("SHA1"));
    assert_eq!(json["window"], json!({"past": 1, "future": 1}));
    assert_eq!(serde_json::from_value::<Config>(json).unwrap(), full);

    let partial: Config =
        serde_json::from_value(json!({"issuer": "Example", "digits": 8, "follow_drift": true}))
            .unwrap();
    let mut expected = Config::new("Example");
    expected.digits = 8;
    expected.follow_drift = true;
    assert_eq!(partial, expected);
    // The issuer is required: there is no sensible default for a product's name.
    assert!(serde_json::from_value::<Config>(json!({"digits": 6})).is_err());
}

#[test]
fn service_types() {
    round_trip(
        &Method::Totp { drift: -1 },
        json!({"type": "totp", "drift": -1}),
    );
    round_trip(
        &Method::BackupCode { remaining: 7 },
        json!({"type": "backup_code", "remaining": 7}),
    );
    shape(&VerifyOutcome::Rejected, json!({"outcome": "rejected"}));
    shape(
        &VerifyOutcome::RateLimited {
            retry_after_secs: 60,
        },
        json!({"outcome": "rate_limited", "retry_after_secs": 60}),
    );
    shape(&DisableOutcome::Disabled, json!({"outcome": "disabled"}));
    shape(
        &twofactor::service::RemoveAuthenticatorOutcome::LastAuthenticator,
        json!({"outcome": "last_authenticator"}),
    );
    shape(
        &RecoveryCompletion::Waiting {
            retry_after_secs: 5,
        },
        json!({"outcome": "waiting", "retry_after_secs": 5}),
    );
    shape(
        &RecoveryCompletion::AwaitingApproval,
        json!({"outcome": "awaiting_approval"}),
    );
    for event in [
        AuditEvent::BackupCodeUsed {
            user_id: "u1".into(),
            remaining: 7,
            notice: None,
        },
        AuditEvent::VerificationFailed {
            user_id: None,
            factor: Factor::Totp,
            reason: FailureReason::Replayed,
        },
        AuditEvent::RecoveryCancelled {
            user_id: "u1".into(),
            by: CancelledBy::Token,
        },
    ] {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], json!(event.kind()));
        assert_eq!(serde_json::from_value::<AuditEvent>(json).unwrap(), event);
    }
    shape(
        &AuditEvent::VerificationFailed {
            user_id: Some("u".into()),
            factor: Factor::BackupCode,
            reason: FailureReason::WrongCode,
        },
        json!({"event": "verification_failed", "user_id": "u", "factor": "backup_code", "reason": "wrong_code"}),
    );
}

/// A real status and a real successful login with a new device token: the status round-trips,
/// and the outcome's JSON holds the user and method but not the token.
#[tokio::test]
async fn real_outcomes_never_carry_the_device_token() {
    let (svc, _store, clock, _events) = service();
    let (secret, _codes) = enrol(&svc, &clock, "serde-user").await;
    clock.advance(30);
    let LoginStart::Required { challenge, .. } = svc
        .start_login(StartLogin::new("serde-user"))
        .await
        .unwrap()
    else {
        panic!()
    };
    let code = code_at(&secret, clock.now_secs());
    let outcome = svc
        .complete_login(
            CompleteLogin::new(challenge.as_str(), SecondFactor::Typed(&code))
                .remember(Remember::Device),
        )
        .await
        .unwrap();
    let VerifyOutcome::Success {
        device_token: Some(token),
        ..
    } = &outcome
    else {
        panic!("{outcome:?}")
    };
    let json = serde_json::to_string(&outcome).unwrap();
    assert!(!json.contains(token.as_str()), "device token serialised");
    assert!(!json.contains(challenge.as_str()));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        json!({"outcome": "success", "user_id": "serde-user", "method": {"type": "totp", "drift": 0}})
    );

    let status = svc.status("serde-user").await.unwrap();
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["enabled"], json!(true));
    assert_eq!(json["authenticators"], json!(1));
    assert_eq!(json["backup_codes_remaining"], json!(8));
    assert_eq!(serde_json::from_value::<Status>(json).unwrap(), status);
    let recovery: RecoveryStatus = serde_json::from_value(json!({
        "requested_at": 1, "not_before": 2, "approved": false, "needs_approval": true
    }))
    .unwrap();
    round_trip(
        &recovery,
        json!({"requested_at": 1, "not_before": 2, "approved": false, "needs_approval": true}),
    );
}

/// The security page's lists: names and times only, and they round-trip.
#[tokio::test]
async fn authenticator_and_trusted_device_listings() {
    let (svc, _store, clock, _events) = service();
    let (secret, _codes) = enrol(&svc, &clock, "lister").await;
    clock.advance(30);
    let LoginStart::Required { challenge, .. } =
        svc.start_login(StartLogin::new("lister")).await.unwrap()
    else {
        panic!()
    };
    let code = code_at(&secret, clock.now_secs());
    let VerifyOutcome::Success {
        device_token: Some(token),
        ..
    } = svc
        .complete_login(
            CompleteLogin::new(challenge.as_str(), SecondFactor::Typed(&code))
                .remember(Remember::Trusted("Firefox")),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    let list = svc.authenticators("lister").await.unwrap();
    let json = serde_json::to_value(&list).unwrap();
    assert_eq!(json[0]["name"], json!("Authenticator app"));
    assert_eq!(json[0]["last_used_at"], json!(clock.now_secs()));
    assert_eq!(json[0]["kind"], json!("totp"));
    assert_eq!(
        serde_json::from_value::<Vec<twofactor::service::AuthenticatorInfo>>(json.clone()).unwrap(),
        list
    );
    // A listing stored before authenticators had a kind reads as TOTP.
    let mut old = json;
    old[0].as_object_mut().unwrap().remove("kind");
    assert_eq!(
        serde_json::from_value::<Vec<twofactor::service::AuthenticatorInfo>>(old).unwrap()[0].kind,
        twofactor::service::AuthenticatorKind::Totp
    );
    let devices = svc.trusted_devices("lister").await.unwrap();
    let text = serde_json::to_string(&devices).unwrap();
    assert!(text.contains("\"label\":\"Firefox\""), "{text}");
    assert!(!text.contains(token.as_str()), "a device token serialised");
    assert!(!text.contains(&*secret.to_base32()));
    assert_eq!(
        serde_json::from_str::<Vec<twofactor::service::TrustedDevice>>(&text).unwrap(),
        devices
    );
}

/// The notices carry a token for the owner; the JSON of the event never does, and the new
/// outcomes have stable shapes.
#[tokio::test]
async fn notices_serialise_without_their_token() {
    let (svc, _store, clock, events) = service();
    let (_, codes) = enrol(&svc, &clock, "nia").await;
    let twofactor::RecoveryRequest::Requested { cancel_token, .. } =
        svc.request_recovery("nia", None).await.unwrap()
    else {
        panic!()
    };
    let event = events
        .all()
        .into_iter()
        .find(|e| e.kind() == "recovery_requested")
        .unwrap();
    assert_eq!(event.notice().unwrap(), &cancel_token);
    let text = serde_json::to_string(&event).unwrap();
    assert!(!text.contains(cancel_token.as_str()), "{text}");
    assert!(!format!("{event:?}").contains(cancel_token.as_str()));
    assert!(!event.to_string().contains(cancel_token.as_str()));
    let back: AuditEvent = serde_json::from_str(&text).unwrap();
    assert_eq!(back.kind(), "recovery_requested");
    assert_eq!(
        back.notice().unwrap().as_str(),
        "",
        "read back without a token"
    );

    clock.advance(30);
    let outcome = svc.disable("nia", codes[0].as_str()).await.unwrap();
    let DisableOutcome::Scheduled { not_before, .. } = outcome else {
        panic!("{outcome:?}")
    };
    shape(
        &outcome,
        json!({"outcome": "scheduled", "change": "disable", "not_before": not_before}),
    );
    let scheduled = events
        .all()
        .into_iter()
        .find(|e| e.kind() == "change_scheduled")
        .unwrap();
    let notice = scheduled.notice().unwrap().as_str().to_owned();
    shape(
        &scheduled,
        json!({"event": "change_scheduled", "user_id": "nia", "change": "disable",
               "kind": "disable", "not_before": not_before}),
    );
    let list = svc.scheduled_changes("nia").await.unwrap();
    shape(
        &list,
        json!([{"id": "disable", "kind": {"type": "disable"}, "requested_at": T0 + 30,
                "not_before": not_before}]),
    );
    let locked = svc.lock_down("nia", &notice).await.unwrap();
    shape(
        &locked,
        // (The backup code of the disable already cancelled the recovery request.)
        json!({"outcome": "locked_down", "devices": 0, "changes": 1, "recovery": false,
               "authenticators_removed": []}),
    );
    shape(
        &twofactor::service::RemoveAuthenticatorOutcome::Scheduled { not_before: 7 },
        json!({"outcome": "scheduled", "not_before": 7}),
    );
}
