//! Deleting a user: [`CredentialStore::delete_user`] and [`EphemeralStore::delete_user_state`]
//! remove everything of that user, and nothing of another, including users whose ids share a
//! prefix with it.

use super::single;
use super::{
    challenge_record, device_record, enabled_user, random, random_codes, recovery_record, unique,
};
use crate::store::{
    ChallengeRecord, CredentialStore, DeletedCredentials, EphemeralStore, LimiterState, TokenHash,
};

/// Everything of `user` in the credential store: an enabled credential with backup codes, a
/// recovery request and two device tokens. Returns the device hashes.
async fn populate<S: CredentialStore>(store: &S, user: &str, base: u64) -> [TokenHash; 2] {
    enabled_user(store, user, base, 100, &random_codes(3)).await;
    call!(store.put_recovery(user, &recovery_record(base, base + 3600, false)));
    let devices = [random::<32>(), random::<32>()];
    for hash in &devices {
        call!(store.put_device(hash, &device_record(user, base + 3600)));
    }
    devices
}

pub(super) async fn credential<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("delete-user");
    // Neighbours whose ids extend or prefix the user's: a `LIKE` or prefix match would hit them.
    let longer = format!("{user}x");
    let shorter = user[..user.len() - 1].to_owned();
    let mine = populate(store, &user, base).await;
    let theirs = [
        populate(store, &longer, base).await,
        populate(store, &shorter, base).await,
    ];

    let deleted = call!(store.delete_user(&user));
    assert!(
        deleted.credential,
        "delete_user must report the credential it removed"
    );
    let mut got = deleted.devices.clone();
    got.sort_unstable();
    let mut want = mine.to_vec();
    want.sort_unstable();
    assert_eq!(
        got, want,
        "delete_user must return the hashes of exactly the user's devices"
    );
    assert_eq!(
        single(store, &user).await,
        None,
        "credential left after delete_user"
    );
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        0,
        "backup codes left after delete_user"
    );
    assert_eq!(
        call!(store.get_recovery(&user)),
        None,
        "recovery request left after delete_user"
    );
    for hash in &mine {
        assert_eq!(
            call!(store.use_device(hash, base)),
            None,
            "device token left after delete_user"
        );
    }
    for (other, devices) in [longer.as_str(), shorter.as_str()].into_iter().zip(&theirs) {
        assert!(
            single(store, other).await.is_some_and(|c| c.enabled),
            "delete_user must not touch another user's credential (ids sharing a prefix)"
        );
        assert_eq!(
            call!(store.backup_codes_remaining(other)),
            3,
            "another user's backup codes"
        );
        assert!(
            call!(store.get_recovery(other)).is_some(),
            "another user's recovery request"
        );
        for hash in devices {
            assert!(
                call!(store.use_device(hash, base)).is_some(),
                "another user's device token"
            );
        }
    }
    assert_eq!(
        call!(store.delete_user(&user)),
        DeletedCredentials::default(),
        "delete_user of a user with nothing stored must succeed and report nothing"
    );

    // A pending enrolment alone counts as a credential.
    let pending = unique("delete-user-pending");
    assert!(call!(store.put_pending(
        &pending,
        &super::pending_record(&random::<20>(), base),
        true
    )));
    assert!(
        call!(store.delete_user(&pending)).credential,
        "a pending credential is a credential"
    );
    assert_eq!(single(store, &pending).await, None);

    for other in [longer, shorter] {
        call!(store.delete_user(&other));
    }
}

pub(super) async fn ephemeral<S: EphemeralStore>(store: &S, base: u64) {
    let ChallengeRecord { user_id: user, .. } = challenge_record("delete-user-state", base + 300);
    let longer = format!("{user}x");
    let mine = [random::<32>(), random::<32>()];
    for hash in &mine {
        call!(store.put_challenge(
            hash,
            &ChallengeRecord {
                user_id: user.clone(),
                expires_at: base + 300
            }
        ));
    }
    let theirs = random::<32>();
    let their_record = ChallengeRecord {
        user_id: longer.clone(),
        expires_at: base + 300,
    };
    call!(store.put_challenge(&theirs, &their_record));
    let keys = [unique("delete-user-key"), unique("delete-user-key")];
    let other_key = unique("delete-user-other-key");
    for key in keys.iter().chain([&other_key]) {
        call!(store.update_limiter(key, base + 3600, super::increment));
    }

    let count = call!(store.delete_user_state(&user, &keys));
    assert_eq!(
        count, 4,
        "delete_user_state must count the 2 challenges and 2 limiter states it removed"
    );
    for hash in &mine {
        assert_eq!(
            call!(store.get_challenge(hash, base)),
            None,
            "challenge left after delete_user_state"
        );
    }
    for key in &keys {
        assert_eq!(
            call!(store.get_limiter(key)),
            LimiterState::default(),
            "limiter state left after delete_user_state"
        );
    }
    assert_eq!(
        call!(store.get_challenge(&theirs, base)),
        Some(their_record),
        "delete_user_state must not touch another user's challenge (ids sharing a prefix)"
    );
    assert_eq!(
        call!(store.get_limiter(&other_key)).attempts,
        1,
        "a limiter key not listed"
    );
    assert_eq!(
        call!(store.delete_user_state(&user, &keys)),
        0,
        "delete_user_state with nothing left must succeed and count 0"
    );
    call!(store.take_challenge(&theirs, base));
}
