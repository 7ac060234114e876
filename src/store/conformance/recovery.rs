//! [`CredentialStore`] contracts of recovery requests one call at a time: the wait, operator
//! approval, cancellation (by the owner and with the cancel token), and when a request may
//! complete.

use super::single;
use super::{
    BIGINT_MAX, device_record, enabled_user, random, random_codes, recovery_record, unique,
};
use crate::store::{CredentialStore, RecoveryRecord};

/// Runs every check of this file, in order.
pub(super) async fn checks<S: CredentialStore>(store: &S, base: u64) {
    recovery(store, base).await;
    recovery_fields(store, base).await;
    cancel_recovery_with_token(store, base).await;
    complete_recovery_conditions(store, base).await;
}

async fn recovery<S: CredentialStore>(store: &S, base: u64) {
    let nobody = unique("recovery-nobody");
    assert_eq!(call!(store.get_recovery(&nobody)), None);
    assert!(!call!(store.approve_recovery(&nobody)), "approve: none");
    assert!(!call!(store.cancel_recovery(&nobody, true)), "cancel: none");
    assert!(
        !call!(store.complete_recovery(&nobody, base + 10_000_000, false)),
        "complete_recovery without a request must refuse"
    );

    let wait = 72 * 3600;
    // Waiting period.
    let user = unique("recovery-wait");
    enabled_user(store, &user, base, base / 30, &random_codes(3)).await;
    let first = recovery_record(base - 10, base + 10, false);
    call!(store.put_recovery(&user, &first));
    assert_eq!(call!(store.get_recovery(&user)), Some(first));
    let request = recovery_record(base, base + wait, false);
    call!(store.put_recovery(&user, &request));
    assert_eq!(
        call!(store.get_recovery(&user)),
        Some(request.clone()),
        "put_recovery must replace an earlier request"
    );
    for now in [base, base + 10, base + wait - 1] {
        assert!(
            !call!(store.complete_recovery(&user, now, false)),
            "complete_recovery must refuse before not_before unless approved"
        );
    }
    assert!(
        single(store, &user).await.is_some(),
        "a refused complete_recovery must keep the credential"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 3);
    assert_eq!(call!(store.get_recovery(&user)), Some(request));
    assert!(
        call!(store.complete_recovery(&user, base + wait, false)),
        "complete_recovery at not_before"
    );
    assert_eq!(
        single(store, &user).await,
        None,
        "complete_recovery must remove the credential"
    );
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        0,
        "complete_recovery must remove the backup codes"
    );
    assert_eq!(
        call!(store.get_recovery(&user)),
        None,
        "complete_recovery must remove the request"
    );
    assert!(
        !call!(store.complete_recovery(&user, base + wait, false)),
        "a completed request must not complete twice"
    );

    // Operator approval.
    let user = unique("recovery-approve");
    enabled_user(store, &user, base, base / 30, &random_codes(1)).await;
    call!(store.put_recovery(&user, &recovery_record(base, base + wait, false)));
    assert!(call!(store.approve_recovery(&user)), "approve_recovery");
    assert_eq!(
        call!(store.get_recovery(&user)).map(|r| (r.approved, r.not_before)),
        Some((true, base + wait)),
        "approve_recovery must set approved and nothing else"
    );
    assert!(
        call!(store.complete_recovery(&user, base, true)),
        "an approved request must complete at once, even when approval is required"
    );
    assert_eq!(single(store, &user).await, None);
    assert_eq!(call!(store.backup_codes_remaining(&user)), 0);
    assert_eq!(
        call!(store.get_recovery(&user)),
        None,
        "a completed approved request must be removed"
    );

    // Cancelled by the owner.
    let user = unique("recovery-cancel");
    enabled_user(store, &user, base, base / 30, &random_codes(2)).await;
    call!(store.put_recovery(&user, &recovery_record(base, base + wait, false)));
    assert!(call!(store.cancel_recovery(&user, true)), "cancel_recovery");
    assert_eq!(call!(store.get_recovery(&user)), None, "cancelled");
    assert!(
        !call!(store.complete_recovery(&user, base + 10 * wait, false)),
        "a cancelled request must never complete"
    );
    assert!(
        !call!(store.approve_recovery(&user)),
        "approve after cancel"
    );
    assert!(!call!(store.cancel_recovery(&user, true)), "cancel twice");
    assert!(
        single(store, &user).await.is_some_and(|c| c.enabled),
        "cancelling must keep the credential"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 2);
}

/// Every field of a recovery request round-trips, and `approve_recovery` changes only
/// `approved`.
async fn recovery_fields<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("recovery-fields");
    enabled_user(store, &user, base, base / 30, &[]).await;
    let mut cancel_hash = random::<32>();
    cancel_hash[0] = 0;
    cancel_hash[31] = 0xFF;
    let record = RecoveryRecord {
        requested_at: base - 7,
        not_before: BIGINT_MAX,
        approved: false,
        needs_approval: true,
        failures_at_request: u32::MAX,
        cancel_hash,
    };
    call!(store.put_recovery(&user, &record));
    assert_eq!(
        call!(store.get_recovery(&user)),
        Some(record.clone()),
        "get_recovery must return every field as put (needs_approval, failures_at_request, \
         cancel_hash, times up to i64::MAX)"
    );
    assert!(call!(store.approve_recovery(&user)));
    assert_eq!(
        call!(store.get_recovery(&user)),
        Some(RecoveryRecord {
            approved: true,
            ..record.clone()
        }),
        "approve_recovery must set approved and nothing else"
    );
    let replaced = RecoveryRecord {
        requested_at: base,
        not_before: base + 1,
        approved: false,
        needs_approval: false,
        failures_at_request: 3,
        cancel_hash: random::<32>(),
    };
    call!(store.put_recovery(&user, &replaced));
    assert_eq!(
        call!(store.get_recovery(&user)),
        Some(replaced),
        "put_recovery must replace every field of an earlier request"
    );
    assert!(call!(store.cancel_recovery(&user, true)));
}

/// `cancel_recovery_with_token` deletes the request only for its own token, once.
async fn cancel_recovery_with_token<S: CredentialStore>(store: &S, base: u64) {
    let nobody = unique("recovery-token-nobody");
    assert!(
        !call!(store.cancel_recovery_with_token(&nobody, &random::<32>())),
        "cancel_recovery_with_token without a request must refuse"
    );

    let user = unique("recovery-token");
    enabled_user(store, &user, base, base / 30, &random_codes(2)).await;
    let request = recovery_record(base, base + 3600, false);
    let token = request.cancel_hash;
    call!(store.put_recovery(&user, &request));
    let mut near = token;
    near[31] ^= 1;
    for (hash, what) in [
        (random::<32>(), "a wrong hash"),
        (near, "a hash differing in the last bit"),
        ([0; 32], "an all-zero hash"),
    ] {
        assert!(
            !call!(store.cancel_recovery_with_token(&user, &hash)),
            "cancel_recovery_with_token with {what} must refuse"
        );
    }
    let other = unique("recovery-token-other");
    enabled_user(store, &other, base, base / 30, &[]).await;
    call!(store.put_recovery(&other, &recovery_record(base, base + 3600, false)));
    assert!(
        !call!(store.cancel_recovery_with_token(&other, &token)),
        "a cancel token must not cancel another user's request"
    );
    assert_eq!(
        call!(store.get_recovery(&user)),
        Some(request),
        "a refused cancel_recovery_with_token must change nothing"
    );
    assert!(
        call!(store.cancel_recovery_with_token(&user, &token)),
        "cancel_recovery_with_token with the request's token"
    );
    assert_eq!(call!(store.get_recovery(&user)), None, "cancelled");
    assert!(
        !call!(store.cancel_recovery_with_token(&user, &token)),
        "a cancel token must cancel at most once"
    );
    assert!(
        !call!(store.complete_recovery(&user, BIGINT_MAX, false)),
        "a request cancelled with its token must never complete"
    );
    assert!(
        single(store, &user).await.is_some_and(|c| c.enabled),
        "cancelling with the token must keep the credential"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 2);
    assert!(
        call!(store.get_recovery(&other)).is_some(),
        "cancelling one user's request must not touch another's"
    );

    // A replaced request has a new token; the old one is void.
    let first = recovery_record(base, base + 3600, false);
    let second = recovery_record(base + 1, base + 3601, false);
    call!(store.put_recovery(&user, &first));
    call!(store.put_recovery(&user, &second));
    assert!(
        !call!(store.cancel_recovery_with_token(&user, &first.cancel_hash)),
        "the token of a replaced request must not cancel its replacement"
    );
    assert!(call!(
        store.cancel_recovery_with_token(&user, &second.cancel_hash)
    ));
    assert!(call!(store.cancel_recovery(&other, true)));
}

/// `complete_recovery` completes an approved request at once; otherwise only when approval is
/// not required, the request does not need it, and `not_before <= now`. Every combination.
async fn complete_recovery_conditions<S: CredentialStore>(store: &S, base: u64) {
    let not_before = base + 3600;
    for approved in [false, true] {
        for needs_approval in [false, true] {
            for approval_required in [false, true] {
                for now in [not_before - 1, not_before] {
                    let user = unique("recovery-conditions");
                    enabled_user(store, &user, base, base / 30, &random_codes(2)).await;
                    let device = random::<32>();
                    call!(store.put_device(&device, &device_record(&user, base + 7200)));
                    let request = RecoveryRecord {
                        needs_approval,
                        failures_at_request: 4,
                        ..recovery_record(base, not_before, approved)
                    };
                    call!(store.put_recovery(&user, &request));
                    let due =
                        approved || (!approval_required && !needs_approval && not_before <= now);
                    let case = format!(
                        "approved = {approved}, needs_approval = {needs_approval}, \
                         approval_required = {approval_required}, now {} not_before",
                        if now < not_before { "<" } else { "==" }
                    );
                    assert_eq!(
                        call!(store.complete_recovery(&user, now, approval_required)),
                        due,
                        "complete_recovery with {case}"
                    );
                    if due {
                        assert_eq!(
                            single(store, &user).await,
                            None,
                            "complete_recovery ({case}) must remove the credential"
                        );
                        assert_eq!(call!(store.backup_codes_remaining(&user)), 0);
                        assert_eq!(call!(store.get_recovery(&user)), None);
                    } else {
                        assert!(
                            single(store, &user).await.is_some_and(|c| c.enabled),
                            "a refused complete_recovery ({case}) must keep the credential"
                        );
                        assert_eq!(call!(store.backup_codes_remaining(&user)), 2);
                        assert_eq!(
                            call!(store.get_recovery(&user)),
                            Some(request),
                            "a refused complete_recovery ({case}) must keep the request"
                        );
                        assert!(call!(store.delete_credentials(&user)));
                    }
                    assert!(
                        call!(store.use_device(&device, base)).is_some(),
                        "complete_recovery and delete_credentials must leave device tokens to \
                         the caller ({case})"
                    );
                    assert_eq!(call!(store.delete_devices(&user)), 1);
                }
            }
        }
    }
}
