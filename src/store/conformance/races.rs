//! The races: [`RACE_TASKS`] tasks released together, split over two instances, on every
//! operation that must happen once or must not lose an update.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::{ID, MAX, NOW, single};
use super::{
    RACE_ROUNDS, RACE_TASKS, chain_step, challenge_record, device_record, enabled_user,
    pending_record, random, random_codes, recovery_record, unique,
};
use crate::store::{
    BackupCodeHash, ChallengeHash, CredentialStore, EphemeralStore, LimiterState, TokenHash,
};

/// Starts `RACE_TASKS` tasks, task `i` on `stores[i % 2]`, releases them together, and returns
/// their results in task order.
pub(super) async fn race<S, T, F, Fut>(stores: [&S; 2], f: F) -> Vec<T>
where
    S: Clone + Send + 'static,
    T: Send + 'static,
    F: Fn(S) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(RACE_TASKS));
    let tasks: Vec<_> = (0..RACE_TASKS)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let work = f(stores[i % 2].clone());
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(RACE_TASKS);
    for task in tasks {
        match task.await {
            Ok(value) => results.push(value),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("conformance: a race task did not finish: {e}"),
        }
    }
    results
}

pub(super) fn count_true(results: &[bool]) -> usize {
    results.iter().filter(|&&won| won).count()
}

pub(super) async fn credential<S>(a: &S, b: &S, base: u64)
where
    S: CredentialStore + Clone + 'static,
{
    let stores = [a, b];

    // Same TOTP step from every task: exactly one acceptance.
    let user = unique("race-step");
    let first = base / 30;
    let secret = enabled_user(a, &user, base, first, &[]).await;
    for round in 1..=RACE_ROUNDS {
        let step = first + round;
        let results = race(stores, |s| {
            let user = user.clone();
            let secret = secret.clone();
            async move { call!(s.advance_step(&user, ID, &secret, step, 1, NOW)) }
        })
        .await;
        assert_eq!(
            count_true(&results),
            1,
            "advance_step race (round {round}): exactly one of {RACE_TASKS} concurrent calls \
             with the same step may succeed"
        );
        assert_eq!(
            single(b, &user).await.and_then(|c| c.last_step),
            Some(step),
            "advance_step race: last_step after the race"
        );
    }

    // Different steps at once: the latest always wins and is what remains.
    let mut last = first + RACE_ROUNDS;
    for round in 1..=RACE_ROUNDS {
        let next = AtomicU64::new(last);
        let results = race(stores, |s| {
            let user = user.clone();
            let secret = secret.clone();
            let step = next.fetch_add(1, Ordering::Relaxed) + 1;
            async move {
                (
                    step,
                    call!(s.advance_step(&user, ID, &secret, step, 0, NOW)),
                )
            }
        })
        .await;
        last += RACE_TASKS as u64;
        assert!(
            results.iter().any(|&(step, won)| step == last && won),
            "advance_step race with distinct steps (round {round}): the latest step must be \
             accepted"
        );
        assert_eq!(
            single(a, &user).await.and_then(|c| c.last_step),
            Some(last),
            "advance_step race with distinct steps (round {round}): last_step must end at the \
             latest step, never move backwards"
        );
    }

    // Same backup code from every task: exactly one consumption.
    let user = unique("race-backup");
    enabled_user(a, &user, base, first, &[]).await;
    for round in 1..=RACE_ROUNDS {
        let codes = random_codes(8);
        assert!(call!(b.replace_backup_codes(&user, &codes)));
        let code = codes[round as usize % codes.len()];
        let results = race(stores, |s| {
            let user = user.clone();
            async move { call!(s.consume_backup_code(&user, &code)) }
        })
        .await;
        let wins: Vec<_> = results.iter().flatten().collect();
        assert_eq!(
            wins,
            [&7],
            "consume_backup_code race (round {round}): exactly one of {RACE_TASKS} concurrent \
             calls with the same code may succeed, reporting 7 left"
        );
        assert_eq!(call!(a.backup_codes_remaining(&user)), 7);
    }

    // Same pending secret confirmed by every task: exactly one activation.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-activate");
        let secret = random::<32>();
        assert!(call!(a.put_pending(
            &user,
            &pending_record(&secret, base),
            true
        )));
        let codes = random_codes(4);
        let results = race(stores, |s| {
            let user = user.clone();
            let codes = codes.clone();
            async move { call!(s.activate(&user, &secret, first, 0, Some(&codes), MAX)) }
        })
        .await;
        assert_eq!(
            count_true(&results),
            1,
            "activate race (round {round}): exactly one of {RACE_TASKS} concurrent calls may \
             succeed"
        );
        assert!(single(b, &user).await.is_some_and(|c| c.enabled));
        assert_eq!(call!(b.backup_codes_remaining(&user)), 4);
    }

    // Same due recovery request completed by every task: exactly one completion.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-recovery");
        enabled_user(a, &user, base, first, &random_codes(2)).await;
        call!(b.put_recovery(&user, &recovery_record(base, base + 3600, true)));
        let results = race(stores, |s| {
            let user = user.clone();
            async move { call!(s.complete_recovery(&user, base, true)) }
        })
        .await;
        assert_eq!(
            count_true(&results),
            1,
            "complete_recovery race (round {round}): exactly one of {RACE_TASKS} concurrent \
             calls may succeed"
        );
        assert_eq!(single(a, &user).await, None);
    }

    // Same unapproved request completed by waiting, by every task: exactly one completion.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-recovery-wait");
        enabled_user(a, &user, base, first, &random_codes(2)).await;
        call!(b.put_recovery(&user, &recovery_record(base - 10, base, false)));
        let results = race(stores, |s| {
            let user = user.clone();
            async move { call!(s.complete_recovery(&user, base, false)) }
        })
        .await;
        assert_eq!(
            count_true(&results),
            1,
            "complete_recovery race after the wait (round {round}): exactly one of \
             {RACE_TASKS} concurrent calls may succeed"
        );
        assert_eq!(single(a, &user).await, None);
    }

    // Same cancel token from every task: exactly one cancellation.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-cancel-token");
        enabled_user(a, &user, base, first, &[]).await;
        let request = recovery_record(base, base + 3600, false);
        let token = request.cancel_hash;
        call!(b.put_recovery(&user, &request));
        let results = race(stores, |s| {
            let user = user.clone();
            async move { call!(s.cancel_recovery_with_token(&user, &token)) }
        })
        .await;
        assert_eq!(
            count_true(&results),
            1,
            "cancel_recovery_with_token race (round {round}): exactly one of {RACE_TASKS} \
             concurrent calls with the token may succeed"
        );
        assert_eq!(call!(a.get_recovery(&user)), None);
    }

    // Cancel and complete at once: one or the other, never both.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-cancel-complete");
        enabled_user(a, &user, base, first, &[]).await;
        let request = recovery_record(base, base + 3600, true);
        let token = request.cancel_hash;
        call!(b.put_recovery(&user, &request));
        let next = AtomicUsize::new(0);
        let results = race(stores, |s| {
            let user = user.clone();
            let cancel = next.fetch_add(1, Ordering::Relaxed).is_multiple_of(2);
            async move {
                if cancel {
                    (true, call!(s.cancel_recovery_with_token(&user, &token)))
                } else {
                    (false, call!(s.complete_recovery(&user, base, true)))
                }
            }
        })
        .await;
        let won: Vec<bool> = results
            .iter()
            .filter(|(_, won)| *won)
            .map(|&(cancel, _)| cancel)
            .collect();
        assert_eq!(
            won.len(),
            1,
            "cancel_recovery_with_token against complete_recovery race (round {round}): \
             exactly one may succeed"
        );
        assert_eq!(
            single(a, &user).await.is_some(),
            won[0],
            "cancel_recovery_with_token against complete_recovery race (round {round}): the \
             credential must be kept if and only if the cancellation won"
        );
        assert_eq!(call!(b.get_recovery(&user)), None);
        call!(a.delete_credentials(&user));
    }

    // Replacing backup codes while others consume: one whole set remains, never a mix.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-replace");
        let old = random_codes(8);
        enabled_user(a, &user, base, first, &old).await;
        let sets: Vec<Vec<BackupCodeHash>> = (0..RACE_TASKS).map(|_| random_codes(2)).collect();
        let next = AtomicUsize::new(0);
        let results = race(stores, |s| {
            let user = user.clone();
            let i = next.fetch_add(1, Ordering::Relaxed);
            let set = sets[i].clone();
            let code = old[0];
            async move {
                if i.is_multiple_of(4) {
                    call!(s.replace_backup_codes(&user, &set));
                    None
                } else {
                    call!(s.consume_backup_code(&user, &code))
                }
            }
        })
        .await;
        assert!(
            results.iter().flatten().count() <= 1,
            "replace_backup_codes race (round {round}): a code may be consumed at most once"
        );
        assert_eq!(
            call!(b.backup_codes_remaining(&user)),
            2,
            "replace_backup_codes race (round {round}): exactly one whole new set must remain"
        );
        let mut remaining = 0;
        for set in sets.iter().step_by(4) {
            let hits = [
                call!(a.consume_backup_code(&user, &set[0])).is_some(),
                call!(a.consume_backup_code(&user, &set[1])).is_some(),
            ];
            assert!(
                hits == [true, true] || hits == [false, false],
                "replace_backup_codes race (round {round}): the remaining codes must be one \
                 whole set"
            );
            remaining += usize::from(hits[0]) * 2;
        }
        assert_eq!(remaining, 2);
    }

    // Device tokens deleted by every task: exactly one deletion.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-device");
        let hash: TokenHash = random::<32>();
        call!(a.put_device(&hash, &device_record(&user, base + 3600)));
        let results = race(stores, |s| async move { call!(s.delete_device(&hash)) }).await;
        assert_eq!(
            count_true(&results),
            1,
            "delete_device race (round {round}): exactly one of {RACE_TASKS} concurrent calls \
             may report the token deleted"
        );
        assert_eq!(call!(b.use_device(&hash, base)), None);
    }

    // The re-enrolment race: a code is checked against credential A while the owner deletes A
    // and enrols and confirms B. A's secret must never advance B.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-reenrol");
        let old = enabled_user(a, &user, base, first, &[]).await;
        let new = random::<32>().to_vec();
        let activated_at = first + 1_000;
        let next = AtomicU64::new(0);
        race(stores, |s| {
            let user = user.clone();
            let (old, new) = (old.clone(), new.clone());
            let i = next.fetch_add(1, Ordering::Relaxed);
            async move {
                if i == 0 {
                    // The owner: three calls, letting the others run in between.
                    call!(s.delete_credentials(&user));
                    tokio::task::yield_now().await;
                    assert!(call!(s.put_pending(
                        &user,
                        &pending_record(&new, base),
                        true
                    )));
                    tokio::task::yield_now().await;
                    assert!(call!(s.activate(
                        &user,
                        &new,
                        activated_at,
                        0,
                        Some(&[]),
                        MAX
                    )));
                } else {
                    // Logins with codes checked against A, at steps past B's first.
                    for k in 0..3 {
                        for _ in 0..=i % 4 {
                            tokio::task::yield_now().await;
                        }
                        let step = activated_at + 3 * i + k + 1;
                        call!(s.advance_step(&user, ID, &old, step, 7, NOW));
                    }
                }
            }
        })
        .await;
        assert_eq!(
            single(b, &user)
                .await
                .map(|c| (c.encrypted_secret, c.last_step, c.drift)),
            Some((new.clone(), Some(activated_at), 0)),
            "re-enrolment race (round {round}): advance_step with the old credential's secret \
             must never advance the credential enrolled since (expected_secret)"
        );
        assert!(
            !call!(a.advance_step(&user, ID, &old, activated_at + 10_000, 7, NOW)),
            "re-enrolment race (round {round}): after the race, the old secret must still not \
             advance the new credential (expected_secret)"
        );
    }
}

pub(super) async fn ephemeral<S>(a: &S, b: &S, base: u64)
where
    S: EphemeralStore + Clone + 'static,
{
    let stores = [a, b];

    // Same challenge taken by every task: exactly one gets it.
    for round in 1..=RACE_ROUNDS {
        let hash: ChallengeHash = random::<32>();
        let record = challenge_record("race-challenge", base + 300);
        call!(a.put_challenge(&hash, &record));
        let results = race(
            stores,
            |s| async move { call!(s.take_challenge(&hash, base)) },
        )
        .await;
        let wins: Vec<_> = results.into_iter().flatten().collect();
        assert_eq!(
            wins,
            [record],
            "take_challenge race (round {round}): exactly one of {RACE_TASKS} concurrent calls \
             may get the challenge"
        );
        assert_eq!(call!(b.get_challenge(&hash, base)), None);
    }

    // Concurrent updates of one counter: none lost, each sees a distinct count, and the
    // (before, after) pairs chain from the default state to the stored one without a gap:
    // `before` is the state the stored `after` was computed from, even after retries.
    for round in 1..=RACE_ROUNDS {
        let key = unique("race-limiter");
        let results = race(stores, |s| {
            let key = key.clone();
            async move { call!(s.update_limiter(&key, base + 3600, chain_step)) }
        })
        .await;
        let mut seen: Vec<u32> = results.iter().map(|u| u.after.attempts).collect();
        seen.sort_unstable();
        let expected: Vec<u32> = (1..=RACE_TASKS as u32).collect();
        assert_eq!(
            seen, expected,
            "update_limiter race (round {round}): {RACE_TASKS} concurrent increments must be \
             serialised, each returning a distinct count"
        );
        let mut updates = results;
        updates.sort_unstable_by_key(|u| u.before.attempts);
        let mut state = LimiterState::default();
        for (i, update) in updates.iter().enumerate() {
            assert_eq!(
                update.before, state,
                "update_limiter race (round {round}): update {i} must report as `before` the \
                 state the previous update stored (before/after chain)"
            );
            assert_eq!(
                update.after,
                chain_step(update.before),
                "update_limiter race (round {round}): `after` must be computed from `before` \
                 (before/after chain)"
            );
            state = update.after;
        }
        assert_eq!(
            call!(b.get_limiter(&key)),
            state,
            "update_limiter race (round {round}): lost update"
        );
    }
}
