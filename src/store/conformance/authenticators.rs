//! Several authenticators per user: adding beside enabled ones, at most one pending, activation
//! with and without backup codes, the limit, replacement in one step, per-authenticator steps,
//! renaming, removal (never the last), and the races on them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::races::{count_true, race};
use super::{
    MAX, RACE_ROUNDS, RACE_TASKS, device_record, pending_record, random, random_codes, unique,
};
use crate::store::{CredentialRecord, CredentialStore, DeviceRecord, RemoveCredential};

/// A pending authenticator with its own id and a random secret.
fn authenticator(id: &str, created_at: u64) -> CredentialRecord {
    CredentialRecord {
        id: id.to_owned(),
        name: format!("Phone {id}"),
        ..pending_record(&random::<32>(), created_at)
    }
}

/// Puts `record` as pending (beside any enabled ones) and activates it as an added one.
async fn add<S: CredentialStore>(store: &S, user: &str, record: &CredentialRecord, step: u64) {
    assert!(call!(store.put_pending(user, record, false)));
    assert!(
        call!(store.activate(user, &record.encrypted_secret, step, 0, None, MAX)),
        "activate of an added authenticator (no backup codes) beside an enabled one"
    );
}

/// The ids of the user's enabled authenticators, in the store's order.
async fn enabled_ids<S: CredentialStore>(store: &S, user: &str) -> Vec<String> {
    call!(store.get_credentials(user))
        .into_iter()
        .filter(|c| c.enabled)
        .map(|c| c.id)
        .collect()
}

/// A user with authenticators `ids` enabled (the first with two backup codes), created in order.
async fn user_with<S: CredentialStore>(store: &S, check: &str, ids: &[&str], base: u64) -> String {
    let user = unique(check);
    let first = authenticator(ids[0], base);
    assert!(call!(store.put_pending(&user, &first, true)));
    let codes = random_codes(2);
    assert!(call!(store.activate(
        &user,
        &first.encrypted_secret,
        1,
        0,
        Some(&codes),
        MAX
    )));
    for (i, id) in ids.iter().enumerate().skip(1) {
        add(store, &user, &authenticator(id, base + i as u64), 1).await;
    }
    user
}

pub(super) async fn checks<S: CredentialStore>(store: &S, base: u64) {
    several(store, base).await;
    one_pending(store, base).await;
    activation_rules(store, base).await;
    replacement(store, base).await;
    steps_are_per_authenticator(store, base).await;
    rename_and_remove(store, base).await;
}

async fn several<S: CredentialStore>(store: &S, base: u64) {
    let user = user_with(store, "several", &["a", "b", "c"], base).await;
    let list = call!(store.get_credentials(&user));
    assert_eq!(
        list.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"],
        "get_credentials must return every authenticator, oldest first"
    );
    assert!(
        list.iter()
            .all(|c| c.enabled && c.name == format!("Phone {}", c.id))
    );
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        2,
        "activating added authenticators must leave the backup codes alone"
    );
    assert!(
        !call!(store.put_pending(&user, &authenticator("d", base), true)),
        "put_pending with only_if_none_enabled must refuse beside an enabled authenticator"
    );
    let mut clash = authenticator("b", base);
    clash.enabled = false;
    assert!(
        !call!(store.put_pending(&user, &clash, false)),
        "put_pending must refuse an id an enabled authenticator has"
    );
    assert_eq!(
        enabled_ids(store, &user).await,
        ["a", "b", "c"],
        "a refused put_pending must change nothing"
    );
    assert!(call!(store.delete_credentials(&user)));
    assert!(
        call!(store.get_credentials(&user)).is_empty(),
        "delete_credentials must remove every authenticator"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 0);
}

async fn one_pending<S: CredentialStore>(store: &S, base: u64) {
    let user = user_with(store, "one-pending", &["a"], base).await;
    let p1 = authenticator("p1", base + 1);
    let p2 = authenticator("p2", base + 2);
    assert!(call!(store.put_pending(&user, &p1, false)));
    assert!(call!(store.put_pending(&user, &p2, false)));
    let list = call!(store.get_credentials(&user));
    let pending: Vec<_> = list.iter().filter(|c| !c.enabled).collect();
    assert_eq!(
        pending.len(),
        1,
        "a user has at most one pending authenticator: put_pending replaces it whatever its id"
    );
    assert_eq!(pending[0], &p2);
    assert!(
        !call!(store.activate(&user, &p1.encrypted_secret, 2, 0, None, MAX)),
        "activate of a replaced pending authenticator must refuse"
    );
    assert_eq!(enabled_ids(store, &user).await, ["a"]);
}

async fn activation_rules<S: CredentialStore>(store: &S, base: u64) {
    // A first enrolment's activation (with backup codes) refuses beside an enabled one.
    let user = user_with(store, "activation", &["a", "b"], base).await;
    let p = authenticator("p", base + 5);
    assert!(call!(store.put_pending(&user, &p, false)));
    assert!(
        !call!(store.activate(
            &user,
            &p.encrypted_secret,
            2,
            0,
            Some(&random_codes(3)),
            MAX
        )),
        "activate with backup codes (a first enrolment) must refuse when the user has an \
         enabled authenticator"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 2, "refused");
    // The limit counts enabled authenticators after the activation.
    assert!(
        !call!(store.activate(&user, &p.encrypted_secret, 2, 0, None, 2)),
        "activate must refuse when it would leave more than max_enabled enabled"
    );
    assert_eq!(enabled_ids(store, &user).await, ["a", "b"], "refused");
    assert!(
        call!(store.activate(&user, &p.encrypted_secret, 2, 0, None, 3)),
        "activate up to max_enabled"
    );
    assert_eq!(enabled_ids(store, &user).await, ["a", "b", "p"]);
    assert!(
        !call!(store.activate(&user, &p.encrypted_secret, 3, 0, None, MAX)),
        "a second activate of the same authenticator must refuse"
    );

    // An added authenticator's activation (no backup codes) refuses without an enabled one.
    let lone = unique("activation-lone");
    let q = authenticator("q", base);
    assert!(call!(store.put_pending(&lone, &q, false)));
    assert!(
        !call!(store.activate(&lone, &q.encrypted_secret, 2, 0, None, MAX)),
        "activate without backup codes must refuse when the user has no enabled authenticator \
         (2FA was turned off meanwhile: this is not a first enrolment)"
    );
    assert!(call!(store.delete_credentials(&lone)));
}

async fn replacement<S: CredentialStore>(store: &S, base: u64) {
    let user = user_with(store, "replace", &["old", "other"], base).await;
    let new = CredentialRecord {
        replaces: Some("old".to_owned()),
        ..authenticator("new", base + 9)
    };
    assert!(call!(store.put_pending(&user, &new, false)));
    assert_eq!(
        enabled_ids(store, &user).await,
        ["old", "other"],
        "a pending replacement must leave the old authenticator working until it is confirmed"
    );
    assert!(
        call!(store.activate(&user, &new.encrypted_secret, 7, 0, None, 2)),
        "a replacement at the limit must activate (it removes the old one in the same step)"
    );
    assert_eq!(
        enabled_ids(store, &user).await,
        ["other", "new"],
        "activate must remove the replaced authenticator and enable the new one at once"
    );
    let stored = call!(store.get_credentials(&user))
        .into_iter()
        .find(|c| c.id == "new");
    assert_eq!(
        stored.and_then(|c| c.replaces),
        None,
        "an enabled authenticator has no `replaces`"
    );
    // The authenticator to replace went meanwhile: the new one still activates, alone.
    let again = CredentialRecord {
        replaces: Some("gone".to_owned()),
        ..authenticator("again", base + 10)
    };
    assert!(call!(store.put_pending(&user, &again, false)));
    assert!(
        !call!(store.activate(&user, &again.encrypted_secret, 7, 0, None, 2)),
        "a replacement whose target is gone adds one: refused at the limit"
    );
    assert!(call!(store.activate(
        &user,
        &again.encrypted_secret,
        7,
        0,
        None,
        3
    )));
    assert_eq!(enabled_ids(store, &user).await, ["other", "new", "again"]);
    assert_eq!(call!(store.backup_codes_remaining(&user)), 2);
}

async fn steps_are_per_authenticator<S: CredentialStore>(store: &S, base: u64) {
    let user = user_with(store, "steps", &["a", "b"], base).await;
    let list = call!(store.get_credentials(&user));
    let (a, b) = (&list[0], &list[1]);
    let step = base / 30;
    assert!(call!(store.advance_step(
        &user,
        "a",
        &a.encrypted_secret,
        step,
        0,
        base
    )));
    assert!(
        call!(store.advance_step(&user, "b", &b.encrypted_secret, step, 1, base + 1)),
        "a step used on one authenticator must stay usable on another"
    );
    assert!(
        !call!(store.advance_step(&user, "a", &a.encrypted_secret, step, 0, base)),
        "and never twice on the same one"
    );
    assert!(
        !call!(store.advance_step(&user, "b", &a.encrypted_secret, step + 1, 0, base)),
        "advance_step must check the secret of the named authenticator"
    );
    assert!(
        !call!(store.advance_step(&user, "zz", &a.encrypted_secret, step + 1, 0, base)),
        "advance_step of an unknown authenticator"
    );
    let list = call!(store.get_credentials(&user));
    assert_eq!(
        (list[0].last_used_at, list[1].last_used_at, list[1].drift),
        (Some(base), Some(base + 1), 1),
        "advance_step must set last_used_at (and drift) of its authenticator only"
    );
    assert!(call!(store.rewrite_secret(
        &user,
        "a",
        &a.encrypted_secret,
        b"new-a"
    )));
    assert!(
        !call!(store.rewrite_secret(&user, "b", &a.encrypted_secret, b"x")),
        "rewrite_secret must compare the named authenticator's secret"
    );
    let list = call!(store.get_credentials(&user));
    assert_eq!(list[0].encrypted_secret, b"new-a");
    assert_eq!(list[1].encrypted_secret, b.encrypted_secret);
}

async fn rename_and_remove<S: CredentialStore>(store: &S, base: u64) {
    let user = user_with(store, "remove", &["a", "b"], base).await;
    let name = "Work phone \u{1F4F1} \"quoted\" 'x'";
    assert!(call!(store.rename_credential(&user, "b", name)));
    assert!(
        !call!(store.rename_credential(&user, "zz", name)),
        "unknown id"
    );
    assert_eq!(call!(store.get_credentials(&user))[1].name, name);
    let p = authenticator("p", base + 5);
    assert!(call!(store.put_pending(&user, &p, false)));
    assert_eq!(
        call!(store.remove_credential(&user, "zz")),
        RemoveCredential::NotFound
    );
    assert_eq!(
        call!(store.remove_credential(&user, "a")),
        RemoveCredential::Removed
    );
    assert_eq!(
        call!(store.remove_credential(&user, "b")),
        RemoveCredential::LastEnabled,
        "remove_credential must refuse the last enabled authenticator (a pending one does not \
         count)"
    );
    assert_eq!(
        call!(store.remove_credential(&user, "p")),
        RemoveCredential::Removed,
        "a pending authenticator can always be removed"
    );
    assert_eq!(enabled_ids(store, &user).await, ["b"]);
    assert_eq!(call!(store.get_credentials(&user)).len(), 1);
    let other = unique("remove-nobody");
    assert_eq!(
        call!(store.remove_credential(&other, "b")),
        RemoveCredential::NotFound,
        "another user's id"
    );
    assert!(!call!(store.rename_credential(&other, "b", "x")));
}

pub(super) async fn races<S>(a: &S, b: &S, base: u64)
where
    S: CredentialStore + Clone + 'static,
{
    let stores = [a, b];
    for round in 0..RACE_ROUNDS {
        // Two confirmations (RACE_TASKS, in fact) of one pending added authenticator.
        let user = user_with(a, "race-confirm", &["a"], base).await;
        let p = authenticator("p", base + 1);
        assert!(call!(a.put_pending(&user, &p, false)));
        let results = race(stores, |s| {
            let (user, secret) = (user.clone(), p.encrypted_secret.clone());
            async move { call!(s.activate(&user, &secret, 5, 0, None, MAX)) }
        })
        .await;
        assert_eq!(
            count_true(&results),
            1,
            "activate race (round {round}): exactly one confirmation of a pending authenticator"
        );
        assert_eq!(enabled_ids(b, &user).await, ["a", "p"]);

        // Removing the last two at once leaves one.
        let results = race(stores, |s| {
            let user = user.clone();
            async move {
                let id = if random::<1>()[0].is_multiple_of(2) {
                    "a"
                } else {
                    "p"
                };
                call!(s.remove_credential(&user, id)) == RemoveCredential::Removed
            }
        })
        .await;
        assert_eq!(
            count_true(&results),
            1,
            "remove_credential race (round {round}): of concurrent removals of a user's last \
             two authenticators exactly one may succeed"
        );
        assert_eq!(enabled_ids(a, &user).await.len(), 1);

        // A replacement confirmed while another authenticator is removed: never zero enabled,
        // never more than the limit.
        let user = user_with(a, "race-replace", &["old", "other"], base).await;
        let new = CredentialRecord {
            replaces: Some("old".to_owned()),
            ..authenticator("new", base + 3)
        };
        assert!(call!(a.put_pending(&user, &new, false)));
        let turn = Arc::new(AtomicUsize::new(0));
        let results = race(stores, |s| {
            let (user, secret, turn) = (user.clone(), new.encrypted_secret.clone(), turn.clone());
            async move {
                if turn.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
                    call!(s.activate(&user, &secret, 5, 0, None, 2))
                } else {
                    call!(s.remove_credential(&user, "other")) == RemoveCredential::Removed
                }
            }
        })
        .await;
        let left = enabled_ids(b, &user).await;
        // In either order both succeed once and only `new` is left: removing `other` first
        // leaves `old`, which the activation replaces; activating first leaves `other` and
        // `new`, and `other` is not the last.
        assert_eq!(
            (left, count_true(&results)),
            (vec!["new".to_owned()], 2),
            "activate (replacing) racing remove_credential (round {round}): one activation and \
             one removal must succeed, leaving only the new authenticator"
        );
    }

    // A first enrolment started (no code: only while no authenticator is enabled) racing the
    // confirmation of the pending one: either the confirmation wins and the new start is
    // refused, or the start replaces the pending one and the confirmation fails. Never an
    // enabled authenticator beside a pending one started without a code.
    for round in 0..RACE_ROUNDS {
        let user = unique("race-first-enrolment");
        let first = authenticator("first", base);
        let second = authenticator("second", base + 1);
        assert!(call!(a.put_pending(&user, &first, true)));
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let confirm = {
            let (s, user, barrier, secret) = (
                a.clone(),
                user.clone(),
                barrier.clone(),
                first.encrypted_secret.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                call!(s.activate(&user, &secret, 5, 0, Some(&random_codes(1)), MAX))
            })
        };
        let start = {
            let (s, user) = (b.clone(), user.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                call!(s.put_pending(&user, &second, true))
            })
        };
        let (confirmed, started) = match (confirm.await, start.await) {
            (Ok(c), Ok(s)) => (c, s),
            (Err(e), _) | (_, Err(e)) => std::panic::resume_unwind(e.into_panic()),
        };
        let left: Vec<(String, bool)> = call!(a.get_credentials(&user))
            .into_iter()
            .map(|c| (c.id, c.enabled))
            .collect();
        let expected = if confirmed {
            vec![("first".to_owned(), true)]
        } else {
            vec![("second".to_owned(), false)]
        };
        assert!(
            confirmed != started && left == expected,
            "put_pending(only_if_none_enabled) racing activate (round {round}): activate -> \
             {confirmed}, put_pending -> {started}, authenticators {left:?}"
        );
    }

    // A login's step advance racing the removal of its authenticator: once the removal
    // returned, no advance on it succeeds.
    for round in 0..RACE_ROUNDS {
        let user = user_with(a, "race-remove-login", &["a", "b"], base).await;
        let secret = call!(a.get_credentials(&user))[0].encrypted_secret.clone();
        let removed = Arc::new(AtomicBool::new(false));
        let step = Arc::new(AtomicUsize::new(10));
        let results = race(stores, |s| {
            let (user, secret, removed, step) =
                (user.clone(), secret.clone(), removed.clone(), step.clone());
            async move {
                if step.fetch_add(1, Ordering::SeqCst) == 10 {
                    let r = call!(s.remove_credential(&user, "a"));
                    removed.store(true, Ordering::SeqCst);
                    return r == RemoveCredential::Removed;
                }
                let mut late_wins = 0;
                for _ in 0..4 {
                    let after_removal = removed.load(Ordering::SeqCst);
                    let s_ = step.fetch_add(1, Ordering::SeqCst) as u64;
                    if call!(s.advance_step(&user, "a", &secret, s_, 0, base)) && after_removal {
                        late_wins += 1;
                    }
                }
                late_wins == 0
            }
        })
        .await;
        assert!(
            results.iter().all(|ok| *ok),
            "remove_credential racing advance_step (round {round}): a step advanced on an \
             authenticator after its removal returned"
        );
        assert_eq!(enabled_ids(b, &user).await, ["b"]);
    }

    // Uses of one trusted device token racing its revocation: once the delete returned, no use
    // returns the record.
    for round in 0..RACE_ROUNDS {
        let user = unique("race-trusted");
        let hash = random::<32>();
        let record = DeviceRecord {
            trusted_until: Some(base + 600),
            label: "race".to_owned(),
            ..device_record(&user, base + 3600)
        };
        call!(a.put_device(&hash, &record));
        let revoked = Arc::new(AtomicBool::new(false));
        let turn = Arc::new(AtomicUsize::new(0));
        let results = race(stores, |s| {
            let (revoked, turn) = (revoked.clone(), turn.clone());
            async move {
                if turn.fetch_add(1, Ordering::SeqCst) == RACE_TASKS / 2 {
                    let deleted = call!(s.delete_device(&hash));
                    revoked.store(true, Ordering::SeqCst);
                    return deleted;
                }
                for _ in 0..4 {
                    let after = revoked.load(Ordering::SeqCst);
                    if call!(s.use_device(&hash, base)).is_some() && after {
                        return false;
                    }
                }
                true
            }
        })
        .await;
        assert!(
            results.iter().all(|ok| *ok),
            "use_device racing delete_device (round {round}): a token was accepted after its \
             revocation returned"
        );
        assert_eq!(call!(b.use_device(&hash, base)), None);
    }
}
