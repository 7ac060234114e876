//! [`CredentialStore`] contracts of scheduled changes and notice tokens, and of the recovery
//! cancel that spares an approved request: one call at a time, then their races (one change
//! taken by many, one notice token used by many, a cancel racing an operator's approval).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::races::{count_true, race};
use super::{
    BIGINT_MAX, RACE_ROUNDS, RACE_TASKS, enabled_user, random, random_codes, recovery_record,
    single, unique,
};
use crate::store::{ChangeKind, CredentialStore, ScheduledChangeRecord, TokenHash};

/// Runs every single-call check of this file, in order.
pub(super) async fn checks<S: CredentialStore>(store: &S, base: u64) {
    put_list_take(store, base).await;
    take_change_due_by(store, base).await;
    notices(store, base).await;
    cancel_recovery_spares_approved(store, base).await;
    deletions_remove_changes(store, base).await;
}

fn change(id: &str, kind: ChangeKind, requested_at: u64, not_before: u64) -> ScheduledChangeRecord {
    ScheduledChangeRecord {
        id: id.to_owned(),
        kind,
        requested_at,
        not_before,
    }
}

fn remove(authenticator: &str) -> ChangeKind {
    ChangeKind::RemoveAuthenticator {
        authenticator: authenticator.to_owned(),
    }
}

fn regenerate(n: usize) -> ChangeKind {
    let mut hashes = random_codes(n);
    if let Some(first) = hashes.first_mut() {
        first[0] = 0;
        first[31] = 0xFF;
    }
    ChangeKind::RegenerateBackupCodes { hashes }
}

/// Every kind round-trips, the list is ordered by `requested_at` then `id`, a second put with
/// an id already used is refused and changes nothing, and users do not see each other's.
async fn put_list_take<S: CredentialStore>(store: &S, base: u64) {
    let nobody = unique("changes-nobody");
    assert_eq!(call!(store.list_changes(&nobody)), [], "list_changes: none");
    assert_eq!(
        call!(store.take_change(&nobody, "disable", u64::MAX)),
        None,
        "take_change without a change must return None"
    );
    assert_eq!(
        call!(store.delete_changes(&nobody)),
        0,
        "delete_changes: none"
    );

    let user = unique("changes");
    // A neighbour whose id extends the user's, with a change of the same id.
    let other = format!("{user}x");
    let disable = change("b", ChangeKind::Disable, base, base + 600);
    let removal = change(
        "a",
        remove("Work phone \u{1F4F1} 'quoted'"),
        base,
        base + 700,
    );
    let ten = change("c", regenerate(10), base - 5, base + 800);
    let none = change("d", regenerate(0), base + 1, BIGINT_MAX);
    for record in [&disable, &removal, &ten, &none] {
        assert!(
            call!(store.put_change(&user, record)),
            "put_change of a new id must store it"
        );
    }
    let theirs = change("a", ChangeKind::Disable, base - 100, base);
    assert!(
        call!(store.put_change(&other, &theirs)),
        "put_change: ids are per user, another user may use the same one"
    );
    let mine = vec![ten.clone(), removal.clone(), disable.clone(), none.clone()];
    assert_eq!(
        call!(store.list_changes(&user)),
        mine,
        "list_changes must return every field as put (all three kinds, 0 and 10 hashes, times \
         up to i64::MAX), ordered by requested_at and then id"
    );

    let again = change("b", regenerate(3), base - 50, base);
    assert!(
        !call!(store.put_change(&user, &again)),
        "put_change with an id the user already has must refuse"
    );
    assert_eq!(
        call!(store.list_changes(&user)),
        mine,
        "a refused put_change must leave the earlier change as it was (its own delay)"
    );
    assert_eq!(
        call!(store.list_changes(&other)),
        std::slice::from_ref(&theirs)
    );

    assert_eq!(
        call!(store.take_change(&user, "a", u64::MAX)),
        Some(removal.clone()),
        "take_change must return the change it deletes"
    );
    assert_eq!(
        call!(store.take_change(&user, "a", u64::MAX)),
        None,
        "a change must be taken at most once"
    );
    assert_eq!(
        call!(store.list_changes(&other)),
        std::slice::from_ref(&theirs),
        "take_change must not touch another user's change with the same id"
    );
    assert_eq!(
        call!(store.take_change(&user, "d", u64::MAX)),
        Some(none),
        "take_change with due_by = u64::MAX must take a change whose not_before is i64::MAX"
    );
    assert_eq!(
        call!(store.delete_changes(&user)),
        2,
        "delete_changes must report how many went"
    );
    assert_eq!(call!(store.list_changes(&user)), [], "delete_changes");
    assert_eq!(
        call!(store.list_changes(&other)),
        [theirs],
        "delete_changes must not touch another user's changes (ids sharing a prefix)"
    );
    assert_eq!(call!(store.delete_changes(&other)), 1);
}

/// `take_change` takes a change only once `not_before <= due_by`; an early call keeps it.
async fn take_change_due_by<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("changes-due");
    let record = change("remove:phone", remove("phone"), base, base + 3600);
    assert!(call!(store.put_change(&user, &record)));
    for due_by in [0, base, base + 3599] {
        assert_eq!(
            call!(store.take_change(&user, "remove:phone", due_by)),
            None,
            "take_change must refuse a change whose not_before is after due_by"
        );
    }
    assert_eq!(
        call!(store.list_changes(&user)),
        std::slice::from_ref(&record),
        "a refused take_change must keep the change"
    );
    assert_eq!(
        call!(store.take_change(&user, "remove:phon", u64::MAX)),
        None,
        "take_change must match the whole id"
    );
    assert_eq!(
        call!(store.take_change(&user, "remove:phone", base + 3600)),
        Some(record),
        "take_change at not_before"
    );
    assert_eq!(call!(store.list_changes(&user)), []);
}

/// A notice token is accepted once, only for its user, only before it expires.
async fn notices<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("notice");
    let other = format!("{user}x");
    let token: TokenHash = random::<32>();
    call!(store.put_notice(&token, &user, base + 60));
    let mut near = token;
    near[31] ^= 1;
    for (who, hash, now, what) in [
        (&other, token, base, "another user's id"),
        (&user, near, base, "a hash differing in the last bit"),
        (&user, [0; 32], base, "an all-zero hash"),
        (&user, token, base + 60, "now == expires_at"),
        (&user, token, base + 61, "now after expires_at"),
        (&user, token, u64::MAX, "now = u64::MAX"),
    ] {
        assert!(
            !call!(store.take_notice(who, &hash, now)),
            "take_notice with {what} must refuse"
        );
    }
    assert!(
        call!(store.take_notice(&user, &token, base + 59)),
        "take_notice of a live token by its user (a refused take_notice must keep it)"
    );
    assert!(
        !call!(store.take_notice(&user, &token, base)),
        "a notice token must be accepted at most once"
    );

    let theirs: TokenHash = random::<32>();
    call!(store.put_notice(&theirs, &other, BIGINT_MAX));
    assert!(
        !call!(store.take_notice(&user, &theirs, base)),
        "take_notice must refuse another user's token"
    );
    assert!(
        call!(store.take_notice(&other, &theirs, base)),
        "a refused take_notice must not delete another user's token"
    );
}

/// `cancel_recovery(user, false)` deletes an unapproved request and leaves an approved one;
/// `cancel_recovery(user, true)` deletes either.
async fn cancel_recovery_spares_approved<S: CredentialStore>(store: &S, base: u64) {
    let nobody = unique("cancel-approved-nobody");
    assert!(
        !call!(store.cancel_recovery(&nobody, false)),
        "cancel_recovery without a request must refuse"
    );
    for approved in [false, true] {
        for include_approved in [false, true] {
            let user = unique("cancel-approved");
            let request = recovery_record(base, base + 3600, approved);
            call!(store.put_recovery(&user, &request));
            let cancels = include_approved || !approved;
            assert_eq!(
                call!(store.cancel_recovery(&user, include_approved)),
                cancels,
                "cancel_recovery(include_approved = {include_approved}) of a request with \
                 approved = {approved}"
            );
            let left = call!(store.get_recovery(&user));
            if cancels {
                assert_eq!(left, None, "cancel_recovery must delete the request");
            } else {
                assert_eq!(
                    left,
                    Some(request),
                    "cancel_recovery(include_approved = false) must leave an approved request \
                     as it was"
                );
                assert!(call!(store.cancel_recovery(&user, true)));
            }
        }
    }
}

/// `delete_credentials` and `complete_recovery` remove the user's scheduled changes and leave
/// the notice tokens; `delete_user` removes both. Another user's stay.
async fn deletions_remove_changes<S: CredentialStore>(store: &S, base: u64) {
    let populate = |user: String| async move {
        enabled_user(store, &user, base, base / 30, &random_codes(2)).await;
        for id in ["disable", "regenerate"] {
            assert!(call!(store.put_change(
                &user,
                &change(id, ChangeKind::Disable, base, base + 3600)
            )));
        }
        let token: TokenHash = random::<32>();
        call!(store.put_notice(&token, &user, base + 3600));
        (user, token)
    };
    let (neighbour, neighbour_token) = populate(unique("changes-neighbour")).await;

    let (user, token) = populate(unique("changes-delete-credentials")).await;
    assert!(call!(store.delete_credentials(&user)));
    assert_eq!(
        call!(store.list_changes(&user)),
        [],
        "delete_credentials must remove the scheduled changes"
    );
    assert!(
        call!(store.take_notice(&user, &token, base)),
        "delete_credentials must leave the notice tokens to the caller"
    );

    let (user, token) = populate(unique("changes-complete-recovery")).await;
    call!(store.put_recovery(&user, &recovery_record(base, base + 3600, false)));
    assert!(!call!(store.complete_recovery(&user, base, false)));
    assert_eq!(
        call!(store.list_changes(&user)).len(),
        2,
        "a refused complete_recovery must keep the scheduled changes"
    );
    assert!(call!(store.approve_recovery(&user)));
    assert!(call!(store.complete_recovery(&user, base, true)));
    assert_eq!(
        call!(store.list_changes(&user)),
        [],
        "complete_recovery must remove the scheduled changes"
    );
    assert!(
        call!(store.take_notice(&user, &token, base)),
        "complete_recovery must leave the notice tokens to the caller"
    );

    let (user, token) = populate(unique("changes-delete-user")).await;
    call!(store.delete_user(&user));
    assert_eq!(
        call!(store.list_changes(&user)),
        [],
        "delete_user must remove the scheduled changes"
    );
    assert!(
        !call!(store.take_notice(&user, &token, base)),
        "delete_user must remove the notice tokens"
    );

    assert_eq!(
        call!(store.list_changes(&neighbour)).len(),
        2,
        "deleting one user's changes must not touch another's"
    );
    assert!(
        single(store, &neighbour).await.is_some(),
        "another user's authenticator"
    );
    assert!(
        call!(store.take_notice(&neighbour, &neighbour_token, base)),
        "delete_user must not touch another user's notice tokens"
    );
    call!(store.delete_user(&neighbour));
}

pub(super) async fn races<S>(a: &S, b: &S, base: u64)
where
    S: CredentialStore + Clone + 'static,
{
    let stores = [a, b];

    // One due change taken by every task: it takes effect once.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-take-change");
        let record = change("regenerate", regenerate(3), base - 10, base);
        assert!(call!(a.put_change(&user, &record)));
        let results = race(stores, |s| {
            let user = user.clone();
            async move { call!(s.take_change(&user, "regenerate", base)) }
        })
        .await;
        let wins: Vec<_> = results.into_iter().flatten().collect();
        assert_eq!(
            wins,
            [record],
            "take_change race (round {round}): exactly one of {RACE_TASKS} concurrent calls \
             may get the change"
        );
        assert_eq!(call!(b.list_changes(&user)), []);
    }

    // One id put by every task with a different record: one stays, and it is the winner's.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-put-change");
        let next = AtomicUsize::new(0);
        let results = race(stores, |s| {
            let user = user.clone();
            let i = next.fetch_add(1, Ordering::Relaxed) as u64;
            let record = change("disable", ChangeKind::Disable, base + i, base + 3600 + i);
            async move { (call!(s.put_change(&user, &record)), record) }
        })
        .await;
        let won: Vec<_> = results.into_iter().filter(|(won, _)| *won).collect();
        assert_eq!(
            won.len(),
            1,
            "put_change race (round {round}): exactly one of {RACE_TASKS} concurrent puts of one \
             id may store"
        );
        assert_eq!(
            call!(b.list_changes(&user)),
            [won[0].1.clone()],
            "put_change race (round {round}): the stored change must be the one whose put \
             reported success"
        );
        call!(a.delete_changes(&user));
    }

    // One notice token used by every task: accepted once.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-notice");
        let token: TokenHash = random::<32>();
        call!(a.put_notice(&token, &user, base + 3600));
        let results = race(stores, |s| {
            let user = user.clone();
            async move { call!(s.take_notice(&user, &token, base)) }
        })
        .await;
        assert_eq!(
            count_true(&results),
            1,
            "take_notice race (round {round}): exactly one of {RACE_TASKS} concurrent calls may \
             accept the token"
        );
    }

    // A login's cancel (sparing approved requests) racing the operator's approvals of the same
    // request. Whatever the order, a cancel that deletes ran before any approval (or the
    // approval would have spared the request), and an approval after it finds nothing: so
    // either one cancel won and no approval did, or no cancel won, every approval did, and
    // the request is there, approved.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-cancel-approve");
        enabled_user(a, &user, base, base / 30, &[]).await;
        let request = recovery_record(base, base + 3600, false);
        call!(b.put_recovery(&user, &request));
        let next = AtomicUsize::new(0);
        let results = race(stores, |s| {
            let user = user.clone();
            let approve = next.fetch_add(1, Ordering::Relaxed).is_multiple_of(2);
            async move {
                if approve {
                    (true, call!(s.approve_recovery(&user)))
                } else {
                    (false, call!(s.cancel_recovery(&user, false)))
                }
            }
        })
        .await;
        let approvals = results
            .iter()
            .filter(|&&(approve, won)| approve && won)
            .count();
        let cancels = results
            .iter()
            .filter(|&&(approve, won)| !approve && won)
            .count();
        let left = call!(a.get_recovery(&user));
        let case = format!("{approvals} approvals and {cancels} cancels succeeded");
        assert!(
            cancels <= 1,
            "cancel_recovery(include_approved = false) racing approve_recovery (round {round}): \
             a request is cancelled at most once ({case})"
        );
        if cancels == 1 {
            assert_eq!(
                (approvals, left),
                (0, None),
                "cancel_recovery(include_approved = false) racing approve_recovery (round \
                 {round}): a cancel deleted a request that an approval reported approved \
                 ({case})"
            );
        } else {
            assert_eq!(
                (approvals, left),
                (
                    RACE_TASKS / 2,
                    Some(crate::store::RecoveryRecord {
                        approved: true,
                        ..request
                    })
                ),
                "cancel_recovery(include_approved = false) racing approve_recovery (round \
                 {round}): with no cancel, every approval succeeds and the approved request \
                 stays ({case})"
            );
        }
        call!(a.delete_user(&user));
    }
}
