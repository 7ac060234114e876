//! Audit events and `tracing` output of a full flow never contain a secret, a code, a backup
//! code, a challenge token or an otpauth URI. Its own test binary: the `tracing` subscriber is
//! installed per thread, and no other test may race it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "service_support/mod.rs"]
mod support;

use std::io;
use std::sync::{Arc, Mutex};
use twofactor::service::{CompleteLogin, Remember, SecondFactor, Verify};

use support::*;
use twofactor::{ConfirmOutcome, EnrolmentStart};

// ------------------------------------------------------------------------------------------
// Audit: no secret anywhere
// ------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `needle` appears in `hay` as a whole number (not inside a longer run of digits).
fn contains_number(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test]
async fn audit_events_and_logs_never_contain_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (svc, _store, clock, events) = service();
    let mut secrets: Vec<String> = Vec::new();
    let mut numbers: Vec<String> = Vec::new();

    let EnrolmentStart::Started(e) = svc.start_enrolment("alice", "alice").await.unwrap() else {
        panic!()
    };
    secrets.push(e.secret_base32().to_string());
    secrets.push(e.otpauth_uri().to_string());
    let secret = e.secret().clone();
    let code = code_at(&secret, T0);
    numbers.push(code.clone());
    let ConfirmOutcome::Confirmed { backup_codes } =
        svc.confirm_enrolment("alice", &code).await.unwrap()
    else {
        panic!()
    };
    for c in &backup_codes {
        secrets.push(c.as_str().to_owned());
        secrets.push(c.as_str().replace('-', ""));
    }
    // A replay, a wrong code, a login, a backup code, a lockout, regenerate, disable, recovery.
    let _ = svc
        .verify(Verify::new("alice", SecondFactor::Typed(&code)))
        .await
        .unwrap();
    clock.advance(30);
    let wrong = wrong_code(&secret, T0 + 30, 123_456);
    numbers.push(wrong.clone());
    let _ = svc
        .verify(Verify::new("alice", SecondFactor::Typed(&wrong)))
        .await
        .unwrap();
    let c = challenge(&svc, "alice").await;
    secrets.push(c.clone());
    let code = code_at(&secret, T0 + 30);
    numbers.push(code.clone());
    let twofactor::VerifyOutcome::Success {
        device_token: Some(device),
        ..
    } = svc
        .complete_login(
            CompleteLogin::new(&c, SecondFactor::Typed(&code)).remember(Remember::Device),
        )
        .await
        .unwrap()
    else {
        panic!("no device token")
    };
    secrets.push(device.as_str().to_owned());
    let c = challenge(&svc, "alice").await;
    secrets.push(c.clone());
    let _ = svc
        .complete_login(CompleteLogin::new(&c, SecondFactor::Typed("BADBAD-CODE")))
        .await
        .unwrap();
    assert!(login(&svc, &c, backup_codes[0].as_str()).await.is_success());
    for i in 0..6 {
        let w = wrong_code(&secret, T0 + 30, 1000 + i);
        numbers.push(w.clone());
        let _ = svc
            .verify(Verify::new("alice", SecondFactor::Typed(&w)))
            .await
            .unwrap();
    }
    let twofactor::RecoveryRequest::Requested { cancel_token, .. } =
        svc.request_recovery("alice", None).await.unwrap()
    else {
        panic!()
    };
    secrets.push(cancel_token.as_str().to_owned());
    assert!(
        svc.cancel_recovery_with_token("alice", cancel_token.as_str())
            .await
            .unwrap()
    );
    svc.password_changed("alice", None).await.unwrap();
    let _ = svc.request_recovery("alice", None).await.unwrap();
    // The lockout ends by itself (a password change without a fresh factor ends nothing).
    clock.advance(3600);
    // A backup code only schedules (with a notice); the first app's code acts at once.
    let r = svc
        .regenerate_backup_codes("alice", backup_codes[1].as_str())
        .await
        .unwrap();
    let twofactor::RegenerateOutcome::Scheduled {
        backup_codes: scheduled,
        ..
    } = r
    else {
        panic!("{r:?}")
    };
    for c in &scheduled {
        secrets.push(c.as_str().to_owned());
    }
    let code = code_at(&secret, T0 + 30 + 3600);
    numbers.push(code.clone());
    let r = svc.regenerate_backup_codes("alice", &code).await.unwrap();
    let twofactor::RegenerateOutcome::Regenerated { backup_codes: new } = r else {
        panic!("{r:?}")
    };
    for c in &new {
        secrets.push(c.as_str().to_owned());
    }
    assert!(matches!(
        svc.disable("alice", new[0].as_str()).await.unwrap(),
        twofactor::DisableOutcome::Scheduled { .. }
    ));
    let code = code_at(&secret, T0 + 60 + 3600);
    numbers.push(code.clone());
    clock.advance(30);
    assert!(matches!(
        svc.disable("alice", &code).await.unwrap(),
        twofactor::DisableOutcome::Disabled
    ));
    let _ = svc.admin_reset("alice").await.unwrap();
    // Every notice token is a secret too.
    for e in events.all() {
        if let Some(n) = e.notice() {
            secrets.push(n.as_str().to_owned());
        }
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let audit: String = events
        .all()
        .iter()
        .map(|e| format!("{e:?} {e}\n"))
        .collect();
    for kind in [
        "enrolment_started",
        "enrolment_confirmed",
        "replay_rejected",
        "verification_failed",
        "verification_succeeded",
        "backup_code_used",
        "locked_out",
        "rate_limited",
        "recovery_requested",
        "recovery_cancelled",
        "second_factor_failed",
        "device_remembered",
        "password_changed",
        "backup_codes_regenerated",
        "change_scheduled",
        "disabled",
        "admin_reset",
    ] {
        assert!(events.count(kind) >= 1, "no {kind} event");
        assert!(logs.contains(kind), "no {kind} in the logs");
    }
    for text in [&logs, &audit] {
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "a secret leaked into the audit trail"
            );
        }
        for n in &numbers {
            assert!(
                !contains_number(text, n),
                "a code leaked into the audit trail"
            );
        }
    }
}
