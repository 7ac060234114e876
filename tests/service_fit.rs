//! The service fits an existing application: errors it can map to HTTP statuses without reading
//! the source, account names with `:`, deleting a user, importing an existing credential.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "service_support/mod.rs"]
mod support;

use support::*;
use twofactor::error::{ErrorKind, ServiceError};
use twofactor::service::{CompleteLogin, LoginStart, Remember, SecondFactor, StartLogin};
use twofactor::{EnrolmentStart, OtpAuthUri, VerifyOutcome};

#[tokio::test]
async fn bad_input_is_a_400_not_a_503() {
    let (svc, _store, _clock, _events) = service();
    let too_long = "u".repeat(257);
    for user in ["", too_long.as_str()] {
        let e = svc
            .start_enrolment(user, "a@example.com")
            .await
            .unwrap_err();
        assert!(matches!(e, ServiceError::InvalidUserId), "{e:?}");
        assert_eq!(e.kind(), ErrorKind::Input);
        assert_eq!(e.kind().http_status(), 400);
        assert!(e.is_input() && !e.kind().is_retryable());
        let e = svc.status(user).await.unwrap_err();
        assert_eq!(e.kind().http_status(), 400);
    }
    for account in ["", " leading-space", &"a".repeat(4096)] {
        let e = svc.start_enrolment("alice", account).await.unwrap_err();
        assert!(matches!(e, ServiceError::InvalidAccountName(_)), "{e:?}");
        assert_eq!(e.kind().http_status(), 400);
    }
}

#[test]
fn infrastructure_is_a_503_and_broken_deployment_a_500() {
    let boxed = || -> twofactor::error::BoxError { "down".into() };
    for e in [
        ServiceError::CredentialStore(boxed()),
        ServiceError::EphemeralStore(boxed()),
        ServiceError::Cipher(boxed()),
    ] {
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.kind().http_status(), 503);
        assert!(e.kind().is_retryable() && !e.is_input());
    }
    for e in [
        ServiceError::CorruptCredential(boxed()),
        ServiceError::InvalidConfig(boxed()),
    ] {
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert_eq!(e.kind().http_status(), 500);
    }
    assert_eq!(
        ServiceError::InvalidCredential(boxed())
            .kind()
            .http_status(),
        400
    );
}

/// The docs say an account name may contain `:`; it is percent-encoded, the URI parses back
/// to the same account and issuer, and the user logs in with the code.
#[tokio::test]
async fn account_name_with_a_colon_is_encoded_and_works() {
    let (svc, _store, clock, _events) = service();
    let EnrolmentStart::Started(enrolment) = svc
        .start_enrolment("colon", "team:alice@example.com")
        .await
        .unwrap()
    else {
        panic!()
    };
    let uri = enrolment.otpauth_uri();
    assert!(
        uri.starts_with("otpauth://totp/Example:team%3Aalice@example.com?"),
        "the account's colon must be encoded, the separator literal"
    );
    let parsed = OtpAuthUri::parse(&uri).unwrap();
    assert_eq!(parsed.issuer(), Some("Example"));
    assert_eq!(parsed.account(), "team:alice@example.com");
    let secret = enrolment.secret().clone();
    let code = code_at(&secret, clock.now_secs());
    assert!(matches!(
        svc.confirm_enrolment("colon", &code).await.unwrap(),
        twofactor::ConfirmOutcome::Confirmed { .. }
    ));
    clock.advance(30);
    let LoginStart::Required { challenge, .. } =
        svc.start_login(StartLogin::new("colon")).await.unwrap()
    else {
        panic!()
    };
    let code = code_at(&secret, clock.now_secs());
    assert!(matches!(
        login(&svc, challenge.as_str(), &code).await,
        VerifyOutcome::Success { .. }
    ));
}

/// `delete_user` leaves nothing of the user in either store (credential, backup codes, recovery,
/// device tokens and their budgets, the user's budget, open challenges), nothing of anyone else
/// is touched, and it is audited.
#[tokio::test]
async fn delete_user_removes_everything_of_that_user_only() {
    use twofactor::audit::AuditEvent;
    use twofactor::store::{CredentialStore, EphemeralStore};

    let (svc, store, clock, events) = service();
    let (secret, _codes) = enrol(&svc, &clock, "gone").await;
    let (other_secret, _) = enrol(&svc, &clock, "gone2").await;
    // A device token (with its own budget), a failed attempt on the user's budget, a recovery
    // request and an open challenge.
    clock.advance(30);
    let LoginStart::Required { challenge, .. } =
        svc.start_login(StartLogin::new("gone")).await.unwrap()
    else {
        panic!()
    };
    let code = code_at(&secret, clock.now_secs());
    let VerifyOutcome::Success {
        device_token: Some(device),
        ..
    } = svc
        .complete_login(
            CompleteLogin::new(challenge.as_str(), SecondFactor::Typed(&code))
                .remember(Remember::Device),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    clock.advance(30);
    let LoginStart::Required {
        challenge: open, ..
    } = svc.start_login(StartLogin::new("gone")).await.unwrap()
    else {
        panic!()
    };
    let wrong = wrong_code(&secret, clock.now_secs(), 1);
    assert_eq!(
        svc.complete_login(
            CompleteLogin::new(open.as_str(), SecondFactor::Typed(&wrong))
                .device(Some(device.as_str()))
                .remember(Remember::Device)
        )
        .await
        .unwrap(),
        VerifyOutcome::Rejected
    );
    assert_eq!(
        login(&svc, open.as_str(), &wrong).await,
        VerifyOutcome::Rejected
    );
    let _ = svc.request_recovery("gone", None).await.unwrap();
    let LoginStart::Required {
        challenge: theirs, ..
    } = svc.start_login(StartLogin::new("gone2")).await.unwrap()
    else {
        panic!()
    };
    let their_budget_before = store.get_limiter("2fa:user:gone2").await.unwrap();
    assert_ne!(
        store.get_limiter("2fa:user:gone").await.unwrap(),
        Default::default()
    );

    assert!(svc.delete_user("gone").await.unwrap());

    assert!(store.get_credentials("gone").await.unwrap().is_empty());
    assert_eq!(store.backup_codes_remaining("gone").await.unwrap(), 0);
    assert_eq!(store.get_recovery("gone").await.unwrap(), None);
    assert_eq!(
        store.get_limiter("2fa:user:gone").await.unwrap(),
        Default::default(),
        "the user's budget survived"
    );
    let device_hash: [u8; 32] =
        <sha2::Sha256 as sha2::Digest>::digest(device.as_str().as_bytes()).into();
    assert_eq!(
        store
            .use_device(&device_hash, clock.now_secs())
            .await
            .unwrap(),
        None
    );
    let device_key = format!(
        "2fa:device:{}",
        data_encoding::HEXLOWER.encode(&device_hash)
    );
    assert_eq!(
        store.get_limiter(&device_key).await.unwrap(),
        Default::default(),
        "the device's budget survived"
    );
    let open_hash: [u8; 32] =
        <sha2::Sha256 as sha2::Digest>::digest(open.as_str().as_bytes()).into();
    assert_eq!(
        store
            .get_challenge(&open_hash, clock.now_secs())
            .await
            .unwrap(),
        None
    );
    let status = svc.status("gone").await.unwrap();
    assert!(!status.enabled && !status.pending && status.recovery.is_none());
    assert_eq!(status.failures_since_login, 0);

    // The other user is untouched and still logs in.
    assert_eq!(
        store.get_limiter("2fa:user:gone2").await.unwrap(),
        their_budget_before
    );
    let code = code_at(&other_secret, clock.now_secs());
    assert!(matches!(
        login(&svc, theirs.as_str(), &code).await,
        VerifyOutcome::Success { .. }
    ));

    assert!(events.all().contains(&AuditEvent::UserDeleted {
        user_id: "gone".into(),
        existed: true,
        devices: 1,
    }));
    // Idempotent; the user may enrol again from scratch.
    assert!(!svc.delete_user("gone").await.unwrap());
    assert!(matches!(
        svc.start_enrolment("gone", "gone@example.com")
            .await
            .unwrap(),
        EnrolmentStart::Started(_)
    ));
    assert_eq!(
        svc.delete_user("").await.unwrap_err().kind(),
        ErrorKind::Input
    );
}

/// An 80-bit SHA-256, 8-digit, 60-second credential from another system: imported, the user
/// logs in with the code their existing app shows, the last step the old system accepted cannot
/// be replayed, and there are no backup codes until the user makes some.
#[tokio::test]
async fn imported_credential_logs_in_with_the_same_app() {
    use twofactor::{Algorithm, ImportOutcome, ImportedCredential, Totp};

    let (svc, store, clock, events) = service();
    let secret = twofactor::danger::short_secret_from_base32("JBSWY3DPEHPK3PXP").unwrap();
    let app = Totp::builder(&secret)
        .algorithm(Algorithm::Sha256)
        .digits(8)
        .period(60)
        .build()
        .unwrap();
    let now = clock.now_secs();
    let last = app.step_at(now).unwrap();
    let mut credential = ImportedCredential::new(secret.clone());
    credential.algorithm = Algorithm::Sha256;
    credential.digits = 8;
    credential.period = 60;
    credential.last_step = Some(last);
    assert_eq!(
        svc.import_credential("legacy", credential.clone())
            .await
            .unwrap(),
        ImportOutcome::Imported { replaced: false }
    );
    let stored = twofactor::store::CredentialStore::get_credentials(&store, "legacy")
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(stored.enabled);
    assert!(
        !stored
            .encrypted_secret
            .windows(10)
            .any(|w| w == secret.expose_secret()),
        "the secret must be stored encrypted"
    );
    let status = svc.status("legacy").await.unwrap();
    assert!(status.enabled && status.backup_codes_remaining == 0);

    // The code the old system last accepted is refused: a replay across the migration.
    let LoginStart::Required { challenge, .. } =
        svc.start_login(StartLogin::new("legacy")).await.unwrap()
    else {
        panic!("an imported credential must require the second factor")
    };
    let old_code = app.generate_at(now).unwrap();
    assert_eq!(
        login(&svc, challenge.as_str(), old_code.as_str()).await,
        VerifyOutcome::Rejected
    );
    clock.advance(60);
    let code = app.generate_at(clock.now_secs()).unwrap();
    assert!(matches!(
        login(&svc, challenge.as_str(), code.as_str()).await,
        VerifyOutcome::Success { .. }
    ));
    assert_eq!(events.count("credential_imported"), 1);

    // An enabled credential is left alone unless the import asks to replace it.
    assert_eq!(
        svc.import_credential("legacy", credential.clone())
            .await
            .unwrap(),
        ImportOutcome::AlreadyEnabled
    );
    credential.replace_enabled = true;
    credential.last_step = None;
    assert_eq!(
        svc.import_credential("legacy", credential).await.unwrap(),
        ImportOutcome::Imported { replaced: true }
    );
}

#[tokio::test]
async fn import_refuses_unusable_parameters_as_input_errors() {
    use twofactor::{ImportedCredential, Secret};

    let (svc, _store, clock, _events) = service();
    let secret = Secret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
    let base = ImportedCredential::new(secret.clone());
    let mut cases = Vec::new();
    for digits in [0, 5, 11] {
        let mut c = base.clone();
        c.digits = digits;
        cases.push(c);
    }
    for period in [0, 86_401] {
        let mut c = base.clone();
        c.period = period;
        cases.push(c);
    }
    let mut future = base.clone();
    future.last_step = Some(clock.now_secs() / 30 + 2);
    cases.push(future);
    for c in cases {
        let e = svc.import_credential("bad", c).await.unwrap_err();
        assert!(matches!(e, ServiceError::InvalidCredential(_)), "{e:?}");
        assert_eq!(e.kind().http_status(), 400);
        assert!(!format!("{e} {e:?}").contains("GEZDGNBV"));
    }
    assert!(!svc.status("bad").await.unwrap().enabled);

    // From an otpauth URI: parameters taken, HOTP refused.
    let uri = OtpAuthUri::parse(
        "otpauth://totp/Old:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=8&period=45",
    )
    .unwrap();
    let c = ImportedCredential::from_uri(&uri).unwrap();
    assert_eq!((c.digits, c.period), (8, 45));
    let hotp = OtpAuthUri::parse(
        "otpauth://hotp/Old:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=3",
    )
    .unwrap();
    assert!(ImportedCredential::from_uri(&hotp).unwrap_err().is_input());
}
