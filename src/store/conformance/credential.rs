//! [`CredentialStore`] contracts one call at a time: enrolment, TOTP steps, key rotation,
//! deletion and backup codes.

use super::{
    BIGINT_MAX, enabled_user, pending_record, random, random_codes, recovery_record, unique,
};
use super::{ID, MAX, NOW, single};
use crate::Algorithm;
use crate::store::{
    ChangeKind, CredentialRecord, CredentialStore, DeviceRecord, RecoveryRecord,
    ScheduledChangeRecord,
};

/// Runs every check of this file, in order.
pub(super) async fn checks<S: CredentialStore>(store: &S, base: u64) {
    pending_and_activate(store, base).await;
    algorithms(store, base).await;
    advance_step(store, base).await;
    advance_step_checks_the_secret(store, base).await;
    rewrite_secret(store, base).await;
    delete_credential(store, base).await;
    backup_codes(store, base).await;
    replace_backup_codes(store, base).await;
    unusual_user_ids(store, base).await;
}

/// Every method of an unreachable store returns an error.
pub(super) async fn unreachable<S: CredentialStore>(s: &S) {
    macro_rules! fails {
        ($e:expr) => {
            assert!(
                $e.await.is_err(),
                "`{}` on a store whose backend is unreachable must return an error",
                stringify!($e)
            )
        };
    }
    let u = "tf-conformance-unreachable";
    let h = [1; 32];
    let recovery = RecoveryRecord {
        requested_at: 0,
        not_before: 0,
        approved: true,
        needs_approval: false,
        failures_at_request: 0,
        cancel_hash: h,
    };
    let device = DeviceRecord {
        user_id: u.to_owned(),
        created_at: 0,
        expires_at: 10,
        trusted_until: None,
        label: String::new(),
        last_used_at: 0,
    };
    fails!(s.get_credentials(u));
    fails!(s.put_pending(u, &pending_record(b"x", 0), true));
    fails!(s.activate(u, b"x", 1, 0, Some(&[h]), MAX));
    fails!(s.advance_step(u, ID, b"x", 1, 0, NOW));
    fails!(s.rewrite_secret(u, ID, b"x", b"y"));
    fails!(s.rename_credential(u, ID, "x"));
    fails!(s.remove_credential(u, ID));
    fails!(s.delete_credentials(u));
    fails!(s.consume_backup_code(u, &h));
    fails!(s.replace_backup_codes(u, &[h]));
    fails!(s.backup_codes_remaining(u));
    fails!(s.put_recovery(u, &recovery));
    fails!(s.get_recovery(u));
    fails!(s.approve_recovery(u));
    fails!(s.cancel_recovery(u, false));
    fails!(s.cancel_recovery(u, true));
    fails!(s.cancel_recovery_with_token(u, &h));
    fails!(s.complete_recovery(u, 1, false));
    let change = ScheduledChangeRecord {
        id: "disable".to_owned(),
        kind: ChangeKind::Disable,
        requested_at: 0,
        not_before: 0,
    };
    fails!(s.put_change(u, &change));
    fails!(s.list_changes(u));
    fails!(s.take_change(u, "disable", u64::MAX));
    fails!(s.delete_changes(u));
    fails!(s.put_notice(&h, u, 10));
    fails!(s.take_notice(u, &h, 1));
    fails!(s.put_device(&h, &device));
    fails!(s.use_device(&h, 1));
    fails!(s.list_devices(u, 1));
    fails!(s.delete_device(&h));
    fails!(s.delete_devices(u));
    fails!(s.delete_user(u));
}

/// Every algorithm name round-trips.
async fn algorithms<S: CredentialStore>(store: &S, base: u64) {
    for algorithm in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
        let user = unique("algorithm");
        let record = CredentialRecord {
            algorithm,
            ..pending_record(&random::<20>(), base)
        };
        assert!(call!(store.put_pending(&user, &record, true)));
        assert_eq!(
            single(store, &user).await,
            Some(record),
            "get_credentials must return the algorithm as put"
        );
        assert!(call!(store.delete_credentials(&user)));
    }
}

async fn pending_and_activate<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("enrol");
    assert_eq!(single(store, &user).await, None, "unknown user");
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        0,
        "unknown user"
    );

    let first = pending_record(&random::<40>(), base);
    assert!(call!(store.put_pending(&user, &first, true)), "put_pending");
    assert_eq!(
        single(store, &user).await,
        Some(first.clone()),
        "get_credentials must return the pending record as put"
    );

    // Every field round-trips, including binary secrets with zero bytes and a negative drift.
    let mut secret = random::<64>().to_vec();
    secret[0] = 0;
    secret[1] = 0xFF;
    let second = CredentialRecord {
        id: ID.to_owned(),
        name: "Work phone \u{1F4F1} 'quoted'".to_owned(),
        encrypted_secret: secret.clone(),
        algorithm: Algorithm::Sha512,
        digits: 8,
        period: 60,
        enabled: false,
        last_step: Some(base / 60 - 10),
        drift: -3,
        created_at: base + 1,
        last_used_at: Some(base - 5),
        replaces: Some("tf-conformance-old".to_owned()),
    };
    assert!(
        call!(store.put_pending(&user, &second, true)),
        "put_pending must replace a pending credential"
    );
    assert_eq!(
        single(store, &user).await,
        Some(second.clone()),
        "put_pending must replace the whole pending record"
    );

    let step = base / 60;
    let codes = random_codes(3);
    assert!(
        !call!(store.activate(&user, &first.encrypted_secret, step, 1, Some(&codes), MAX)),
        "activate with a replaced (stale) pending secret must refuse"
    );
    assert_eq!(
        single(store, &user).await,
        Some(second.clone()),
        "a refused activate must change nothing"
    );
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        0,
        "a refused activate must not store backup codes"
    );

    assert!(
        call!(store.activate(&user, &secret, step, -1, Some(&codes), MAX)),
        "activate with the pending secret"
    );
    let active = CredentialRecord {
        enabled: true,
        last_step: Some(step),
        drift: -1,
        replaces: None,
        ..second.clone()
    };
    assert_eq!(
        single(store, &user).await,
        Some(active.clone()),
        "activate must enable the credential, set last_step and drift and clear replaces, nothing else"
    );
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        3,
        "activate must store the backup codes"
    );
    assert_eq!(
        call!(store.consume_backup_code(&user, &codes[1])),
        Some(2),
        "a backup code stored by activate must be usable"
    );

    assert!(
        !call!(store.activate(&user, &secret, step + 5, 0, Some(&random_codes(5)), MAX)),
        "activate of an already enabled credential must refuse"
    );
    assert_eq!(
        single(store, &user).await,
        Some(active.clone()),
        "a refused activate must not touch an enabled credential"
    );
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        2,
        "a refused activate must not replace backup codes"
    );

    let intruder = pending_record(&random::<32>(), base);
    assert!(
        !call!(store.put_pending(&user, &intruder, true)),
        "put_pending must refuse when the user has an enabled credential"
    );
    assert_eq!(
        single(store, &user).await,
        Some(active),
        "a refused put_pending must leave the enabled credential untouched"
    );

    let nobody = unique("enrol-nobody");
    assert!(
        !call!(store.activate(&nobody, &secret, step, 0, Some(&codes), MAX)),
        "activate for a user without a pending credential must refuse"
    );
    assert_eq!(
        single(store, &nobody).await,
        None,
        "a refused activate must not create a credential"
    );
    assert_eq!(
        call!(store.backup_codes_remaining(&nobody)),
        0,
        "a refused activate must not create backup codes"
    );
}

async fn advance_step<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("advance");
    let step = base / 30;
    let secret = random::<32>();
    assert!(
        !call!(store.advance_step(&user, ID, &secret, step, 0, NOW)),
        "advance_step for an unknown user must refuse"
    );
    assert!(call!(store.put_pending(
        &user,
        &pending_record(&secret, base),
        true
    )));
    assert!(
        !call!(store.advance_step(&user, ID, &secret, step, 0, NOW)),
        "advance_step must refuse while the credential is pending"
    );
    assert_eq!(
        single(store, &user).await.and_then(|c| c.last_step),
        None,
        "a refused advance_step must not set last_step"
    );
    assert!(call!(store.activate(
        &user,
        &secret,
        step,
        0,
        Some(&[]),
        MAX
    )));

    let expect = |last: u64, drift: i64| (Some(last), drift);
    let state = || async {
        let c = single(store, &user).await;
        c.map_or((None, i64::MIN), |c| (c.last_step, c.drift))
    };
    assert!(
        !call!(store.advance_step(&user, ID, &secret, step, 4, NOW)),
        "advance_step to the step accepted at activation must refuse (replay)"
    );
    assert!(
        !call!(store.advance_step(&user, ID, &secret, step - 1, 4, NOW)),
        "advance_step to an earlier step must refuse"
    );
    assert_eq!(state().await, expect(step, 0), "refusals change nothing");
    assert!(
        call!(store.advance_step(&user, ID, &secret, step + 1, 1, NOW)),
        "advance_step to a later step"
    );
    assert_eq!(
        state().await,
        expect(step + 1, 1),
        "advance_step must set last_step and drift"
    );
    assert!(
        !call!(store.advance_step(&user, ID, &secret, step + 1, 5, NOW)),
        "advance_step to the same step twice must refuse the second"
    );
    assert_eq!(
        state().await,
        expect(step + 1, 1),
        "a refused advance_step must not change the drift"
    );
    assert!(
        call!(store.advance_step(&user, ID, &secret, step + 5, -2, NOW)),
        "advance_step may skip steps"
    );
    assert!(
        !call!(store.advance_step(&user, ID, &secret, step + 3, 0, NOW)),
        "advance_step to a step between accepted ones must refuse"
    );
    assert_eq!(state().await, expect(step + 5, -2), "final state");

    // The ends of the range: step i64::MAX (the largest a SQL BIGINT holds) is accepted; beyond
    // it a store may refuse with an error, but must never wrap.
    assert!(
        call!(store.advance_step(&user, ID, &secret, BIGINT_MAX, 3, NOW)),
        "advance_step to step i64::MAX must be accepted"
    );
    assert_eq!(state().await, expect(BIGINT_MAX, 3), "step i64::MAX stored");
    match store
        .advance_step(&user, ID, &secret, u64::MAX, 0, NOW)
        .await
    {
        Ok(true) => assert_eq!(
            state().await,
            expect(u64::MAX, 0),
            "advance_step to u64::MAX must be stored exactly or refused, never wrapped"
        ),
        Ok(false) | Err(_) => assert_eq!(
            state().await,
            expect(BIGINT_MAX, 3),
            "a refused advance_step to u64::MAX must change nothing"
        ),
    }
}

/// `advance_step` names the credential the code was checked against: a credential enrolled
/// since (after a delete, or under another secret) must not be advanced by a code checked
/// against the old one.
async fn advance_step_checks_the_secret<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("advance-secret");
    let step = base / 30;
    let a = enabled_user(store, &user, base, step, &[]).await;
    let mut longer = a.clone();
    longer.push(0);
    for (other, what) in [
        (random::<32>().to_vec(), "another secret"),
        (a[..a.len() - 1].to_vec(), "a prefix of the stored secret"),
        (longer, "the stored secret and one more byte"),
        (Vec::new(), "an empty secret"),
    ] {
        assert!(
            !call!(store.advance_step(&user, ID, &other, step + 1, 0, NOW)),
            "advance_step with {what} than the stored one must refuse (expected_secret)"
        );
    }
    assert_eq!(
        single(store, &user).await.and_then(|c| c.last_step),
        Some(step),
        "a refused advance_step must not set last_step (expected_secret)"
    );

    // The re-enrolment race, one call at a time: a code was checked against credential A; then
    // A was deleted and B enrolled and confirmed; then the code's step is advanced with A.
    let checked = single(store, &user).await.map(|c| c.encrypted_secret);
    assert_eq!(checked.as_deref(), Some(&a[..]));
    assert!(call!(store.delete_credentials(&user)));
    let b = random::<32>();
    assert!(call!(store.put_pending(
        &user,
        &pending_record(&b, base),
        true
    )));
    assert!(
        !call!(store.advance_step(&user, ID, &a, step + 1, 0, NOW)),
        "advance_step with the secret of a deleted credential must refuse while the new one is \
         pending (expected_secret)"
    );
    assert!(call!(store.activate(
        &user,
        &b,
        step + 2,
        0,
        Some(&[]),
        MAX
    )));
    assert!(
        !call!(store.advance_step(&user, ID, &a, step + 3, 0, NOW)),
        "advance_step with the secret of a credential deleted and re-enrolled since must refuse \
         (expected_secret): the code was checked against the old credential"
    );
    assert_eq!(
        single(store, &user).await.map(|c| (c.last_step, c.drift)),
        Some((Some(step + 2), 0)),
        "a refused advance_step must not touch the re-enrolled credential (expected_secret)"
    );
    assert!(
        call!(store.advance_step(&user, ID, &b, step + 3, 1, NOW)),
        "advance_step with the re-enrolled credential's secret"
    );

    // Lazy key rotation: once the secret is rewritten, the old ciphertext no longer names it.
    let rotated = random::<48>();
    assert!(call!(store.rewrite_secret(&user, ID, &b, &rotated)));
    assert!(
        !call!(store.advance_step(&user, ID, &b, step + 4, 0, NOW)),
        "advance_step with the secret from before rewrite_secret must refuse (expected_secret)"
    );
    assert!(call!(store.advance_step(
        &user,
        ID,
        &rotated,
        step + 4,
        0,
        NOW
    )));
}

async fn rewrite_secret<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("rewrite");
    let new = random::<48>();
    assert!(
        !call!(store.rewrite_secret(&user, ID, &new, &new)),
        "rewrite_secret for an unknown user must refuse"
    );
    let old = enabled_user(store, &user, base, base / 30, &[]).await;
    let before = single(store, &user).await;
    assert!(
        !call!(store.rewrite_secret(&user, ID, &random::<32>(), &new)),
        "rewrite_secret with a wrong old secret must refuse"
    );
    assert_eq!(
        single(store, &user).await,
        before,
        "a refused rewrite_secret must change nothing"
    );
    assert!(
        call!(store.rewrite_secret(&user, ID, &old, &new)),
        "rewrite_secret with the current secret"
    );
    let after = before.map(|c| CredentialRecord {
        encrypted_secret: new.to_vec(),
        ..c
    });
    assert_eq!(
        single(store, &user).await,
        after,
        "rewrite_secret must replace the secret and nothing else"
    );
    assert!(
        !call!(store.rewrite_secret(&user, ID, &old, &random::<32>())),
        "rewrite_secret from a secret already rewritten must refuse (lost race)"
    );
    assert_eq!(single(store, &user).await, after, "unchanged");
}

async fn delete_credential<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("delete");
    assert!(
        !call!(store.delete_credentials(&user)),
        "delete_credentials of an unknown user must return false"
    );
    let codes = random_codes(4);
    enabled_user(store, &user, base, base / 30, &codes).await;
    call!(store.put_recovery(&user, &recovery_record(base, base + 3600, false)));
    assert!(
        call!(store.delete_credentials(&user)),
        "delete_credentials must return true when a credential existed"
    );
    assert_eq!(single(store, &user).await, None, "credential gone");
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        0,
        "delete_credentials must remove the backup codes"
    );
    assert_eq!(
        call!(store.consume_backup_code(&user, &codes[0])),
        None,
        "a backup code must not survive delete_credentials"
    );
    assert_eq!(
        call!(store.get_recovery(&user)),
        None,
        "delete_credentials must remove the recovery request"
    );
    assert!(
        !call!(store.delete_credentials(&user)),
        "a second delete_credentials must return false"
    );

    // Enrolling again starts clean: the old codes do not come back.
    let fresh = random_codes(2);
    enabled_user(store, &user, base, base / 30, &fresh).await;
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        2,
        "re-enrolment after delete must have only the new codes"
    );
    assert_eq!(call!(store.consume_backup_code(&user, &codes[1])), None);

    let pending = unique("delete-pending");
    assert!(call!(store.put_pending(
        &pending,
        &pending_record(&random::<32>(), base),
        true
    )));
    assert!(
        call!(store.delete_credentials(&pending)),
        "delete_credentials must remove a pending credential too"
    );
    assert_eq!(single(store, &pending).await, None);
}

async fn backup_codes<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("backup");
    let codes = random_codes(5);
    assert_eq!(
        call!(store.consume_backup_code(&user, &codes[0])),
        None,
        "consume_backup_code for an unknown user"
    );
    enabled_user(store, &user, base, base / 30, &codes).await;
    assert_eq!(
        call!(store.consume_backup_code(&user, &codes[2])),
        Some(4),
        "consume_backup_code must return how many remain"
    );
    assert_eq!(
        call!(store.consume_backup_code(&user, &codes[2])),
        None,
        "a backup code must be single use"
    );
    assert_eq!(
        call!(store.consume_backup_code(&user, &random::<32>())),
        None,
        "an unknown backup code"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 4);
    for (expected, code) in [3, 2, 1, 0].into_iter().zip([0, 1, 3, 4]) {
        assert_eq!(
            call!(store.consume_backup_code(&user, &codes[code])),
            Some(expected),
            "consume_backup_code must count down to zero"
        );
    }
    assert_eq!(call!(store.backup_codes_remaining(&user)), 0);
    assert_eq!(call!(store.consume_backup_code(&user, &codes[0])), None);

    // Codes belong to one user: the same hash under another user is a different code.
    let other = unique("backup-other");
    let shared = random_codes(2);
    enabled_user(store, &other, base, base / 30, &shared).await;
    assert!(call!(store.replace_backup_codes(&user, &shared)));
    assert_eq!(call!(store.consume_backup_code(&user, &shared[0])), Some(1));
    assert_eq!(
        call!(store.consume_backup_code(&other, &shared[0])),
        Some(1),
        "consuming a code of one user must not consume another user's code"
    );
    assert_eq!(
        call!(store.consume_backup_code(&other, &codes[0])),
        None,
        "another user's (used) code"
    );
}

async fn replace_backup_codes<S: CredentialStore>(store: &S, base: u64) {
    let nobody = unique("replace-nobody");
    assert!(
        !call!(store.replace_backup_codes(&nobody, &random_codes(3))),
        "replace_backup_codes for an unknown user must refuse"
    );
    assert_eq!(call!(store.backup_codes_remaining(&nobody)), 0);

    let pending = unique("replace-pending");
    assert!(call!(store.put_pending(
        &pending,
        &pending_record(&random::<32>(), base),
        true
    )));
    let codes = random_codes(3);
    assert!(
        !call!(store.replace_backup_codes(&pending, &codes)),
        "replace_backup_codes must refuse while the credential is pending"
    );
    assert_eq!(call!(store.backup_codes_remaining(&pending)), 0);
    assert_eq!(call!(store.consume_backup_code(&pending, &codes[0])), None);

    let user = unique("replace");
    let old = random_codes(2);
    enabled_user(store, &user, base, base / 30, &old).await;
    let new = random_codes(3);
    assert!(
        call!(store.replace_backup_codes(&user, &new)),
        "replace_backup_codes for an enabled credential"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 3);
    assert_eq!(
        call!(store.consume_backup_code(&user, &old[0])),
        None,
        "replace_backup_codes must void the old codes"
    );
    assert_eq!(
        call!(store.consume_backup_code(&user, &new[1])),
        Some(2),
        "the new codes must be usable"
    );
    assert!(
        call!(store.replace_backup_codes(&user, &[])),
        "replace_backup_codes with an empty set"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 0);
    assert_eq!(call!(store.consume_backup_code(&user, &new[0])), None);
}

/// User ids are opaque strings: quotes, non-ASCII and separators must not be interpreted.
async fn unusual_user_ids<S: CredentialStore>(store: &S, base: u64) {
    let plain = unique("odd");
    let odd = format!("{plain}'; DROP TABLE x;--\"ü:*?\\%_");
    let codes = random_codes(2);
    enabled_user(store, &odd, base, base / 30, &codes).await;
    assert_eq!(
        single(store, &plain).await,
        None,
        "user ids must be matched exactly"
    );
    assert_eq!(call!(store.consume_backup_code(&plain, &codes[0])), None);
    assert_eq!(call!(store.consume_backup_code(&odd, &codes[0])), Some(1));
    assert!(call!(store.delete_credentials(&odd)));
}
