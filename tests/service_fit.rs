//! The service fits an existing application: errors it can map to HTTP statuses without reading
//! the source, account names with `:`, deleting a user, importing an existing credential.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "service_support/mod.rs"]
mod support;

use support::*;
use twofactor::error::{ErrorKind, ServiceError};
use twofactor::service::LoginStart;
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
    let LoginStart::Required { challenge, .. } = svc.start_login("colon").await.unwrap() else {
        panic!()
    };
    let code = code_at(&secret, clock.now_secs());
    assert!(matches!(
        svc.complete_login(challenge.as_str(), &code).await.unwrap(),
        VerifyOutcome::Success { .. }
    ));
}
