//! [`EphemeralStore`] contracts one call at a time: challenges, their expiry at the caller's
//! `now`, and limiter states.

use super::{BIGINT_MAX, challenge_record, increment, random, unique};
use crate::store::{ChallengeRecord, EphemeralStore, LimiterState, LimiterUpdate};

/// Runs every check of this file, in order.
pub(super) async fn checks<S: EphemeralStore>(store: &S, base: u64) {
    challenges(store, base).await;
    challenge_expiry(store, base).await;
    times_far_from_the_clock(store).await;
    limiter(store, base).await;
}

/// Every method of an unreachable store returns an error.
pub(super) async fn unreachable<E: EphemeralStore>(e: &E) {
    macro_rules! fails {
        ($e:expr) => {
            assert!(
                $e.await.is_err(),
                "`{}` on a store whose backend is unreachable must return an error",
                stringify!($e)
            )
        };
    }
    let h = [1; 32];
    let record = ChallengeRecord {
        user_id: "tf-conformance-unreachable".to_owned(),
        expires_at: 10,
    };
    fails!(e.put_challenge(&h, &record));
    fails!(e.get_challenge(&h, 1));
    fails!(e.take_challenge(&h, 1));
    fails!(e.update_limiter("tf-conformance-unreachable", 10, |s| s));
    fails!(e.get_limiter("tf-conformance-unreachable"));
    fails!(e.delete_user_state(
        "tf-conformance-unreachable",
        &["tf-conformance-unreachable".to_owned()]
    ));
}

async fn challenges<S: EphemeralStore>(store: &S, base: u64) {
    let hash = random::<32>();
    assert_eq!(call!(store.get_challenge(&hash, base)), None, "unknown");
    assert_eq!(call!(store.take_challenge(&hash, base)), None, "unknown");

    let record = challenge_record("challenge", base + 300);
    call!(store.put_challenge(&hash, &record));
    let other_hash = random::<32>();
    let other = challenge_record("challenge-other", base + 300);
    call!(store.put_challenge(&other_hash, &other));

    for now in [base, base + 299, base] {
        assert_eq!(
            call!(store.get_challenge(&hash, now)),
            Some(record.clone()),
            "get_challenge before expiry must return it and must not consume it"
        );
    }
    assert_eq!(
        call!(store.take_challenge(&hash, base + 1)),
        Some(record),
        "take_challenge before expiry"
    );
    assert_eq!(
        call!(store.take_challenge(&hash, base + 1)),
        None,
        "take_challenge must be single use"
    );
    assert_eq!(
        call!(store.get_challenge(&hash, base + 1)),
        None,
        "a taken challenge is gone"
    );
    assert_eq!(
        call!(store.get_challenge(&other_hash, base)),
        Some(other.clone()),
        "taking one challenge must not touch another"
    );
    assert_eq!(call!(store.take_challenge(&other_hash, base)), Some(other));

    let zeros = [0; 32];
    let mut zeros_too = zeros;
    zeros_too[31] = 1;
    let record = challenge_record("challenge-bytes", base + 300);
    call!(store.put_challenge(&zeros_too, &record));
    assert_eq!(
        call!(store.get_challenge(&zeros, base)),
        None,
        "challenge hashes must be compared as whole binary values"
    );
    assert_eq!(call!(store.take_challenge(&zeros_too, base)), Some(record));
}

async fn challenge_expiry<S: EphemeralStore>(store: &S, base: u64) {
    let expires_at = base + 300;
    let hash = random::<32>();
    call!(store.put_challenge(&hash, &challenge_record("expiry", expires_at)));
    assert_eq!(
        call!(store.get_challenge(&hash, expires_at)),
        None,
        "get_challenge at expires_at must return None (now >= expires_at is expired)"
    );
    assert_eq!(
        call!(store.take_challenge(&hash, expires_at + 1)),
        None,
        "take_challenge after expiry must return None"
    );

    let hash = random::<32>();
    call!(store.put_challenge(&hash, &challenge_record("expiry-take", expires_at)));
    assert_eq!(
        call!(store.take_challenge(&hash, expires_at)),
        None,
        "take_challenge at expires_at must return None"
    );

    let hash = random::<32>();
    call!(store.put_challenge(&hash, &challenge_record("expiry-past", base - 1)));
    assert_eq!(
        call!(store.get_challenge(&hash, base)),
        None,
        "a challenge put already expired must not be returned"
    );
    assert_eq!(call!(store.take_challenge(&hash, base)), None);
}

/// Validity follows the caller's `now`, never a clock of the store's own: challenges at times
/// far in the past and in the future behave like those around now.
async fn times_far_from_the_clock<S: EphemeralStore>(store: &S) {
    for base in [1_000_u64, 1_700_000_000, 4_000_000_000] {
        let hash = random::<32>();
        let record = ChallengeRecord {
            user_id: format!("{}:with:colons", unique("far")),
            expires_at: base + 300,
        };
        assert_eq!(call!(store.get_challenge(&hash, base)), None);
        call!(store.put_challenge(&hash, &record));
        assert_eq!(
            call!(store.get_challenge(&hash, base)),
            Some(record.clone()),
            "a challenge must be valid at the caller's `now` (base {base}), whatever the \
             store's clock says"
        );
        assert_eq!(
            call!(store.take_challenge(&hash, base + 299)),
            Some(record.clone()),
            "take_challenge just before expires_at (base {base})"
        );
        assert_eq!(
            call!(store.take_challenge(&hash, base + 1)),
            None,
            "take_challenge must be single use (base {base})"
        );
        // A store may drop a challenge once it was seen expired, so time only moves forward
        // from here.
        call!(store.put_challenge(&hash, &record));
        assert_eq!(
            call!(store.get_challenge(&hash, base + 300)),
            None,
            "a challenge must be expired at expires_at (base {base})"
        );
        call!(store.put_challenge(&hash, &record));
        assert_eq!(
            call!(store.take_challenge(&hash, base + 300)),
            None,
            "take_challenge at expires_at (base {base})"
        );
    }
}

async fn limiter<S: EphemeralStore>(store: &S, base: u64) {
    let key = unique("limiter");
    let other = unique("limiter-other");
    let expire_at = base + 3600;
    let default = LimiterState::default();
    assert_eq!(
        call!(store.get_limiter(&key)),
        default,
        "get_limiter of an unknown key must return the default state"
    );
    let first = call!(
        store.update_limiter(&key, expire_at, |s| LimiterState::from_parts(
            base,
            s.attempts + 1,
            s.failures + 3,
            0,
            s.forgiven_at + base - 5,
            s.since_success + 2,
            s.last_success_at + base - 60,
        ))
    );
    let expected = LimiterState::from_parts(base, 1, 3, 0, base - 5, 2, base - 60);
    assert_eq!(
        first,
        LimiterUpdate {
            before: default,
            after: expected,
        },
        "update_limiter must start from the default state, return it as `before` and the \
         result as `after`"
    );
    assert_eq!(call!(store.get_limiter(&key)), expected, "stored");
    let second = call!(
        store.update_limiter(&key, expire_at, |s| LimiterState::from_parts(
            s.window_start,
            s.attempts * 10 + 7,
            s.failures + 1,
            s.window_start + 600,
            s.forgiven_at + 1,
            s.since_success * 3,
            s.last_success_at + 60,
        ))
    );
    let expected2 = LimiterState::from_parts(base, 17, 4, base + 600, base - 4, 6, base);
    assert_eq!(
        second,
        LimiterUpdate {
            before: expected,
            after: expected2,
        },
        "update_limiter must read the stored state (read-modify-write) and return it as `before`"
    );
    assert_eq!(call!(store.get_limiter(&key)), expected2);
    assert_eq!(
        call!(store.get_limiter(&other)),
        default,
        "limiter keys must be isolated"
    );
    call!(store.update_limiter(&other, expire_at, increment));
    assert_eq!(
        call!(store.get_limiter(&key)),
        expected2,
        "updating one key must not touch another"
    );
    let odd = format!("{key}:with:colons/and spaces'\"ü");
    assert_eq!(
        call!(store.get_limiter(&odd)),
        default,
        "limiter keys are opaque: separators must not be interpreted"
    );
    call!(store.update_limiter(&odd, expire_at, increment));
    assert_eq!(call!(store.get_limiter(&odd)).attempts, 1);
    assert_eq!(call!(store.get_limiter(&key)), expected2);

    // Every field round-trips, each with its own value (a swapped column shows), at the ends
    // of its range: u32::MAX, and i64::MAX for times.
    for edge in [
        LimiterState::from_parts(1, 2, 3, 4, 5, 6, 7),
        LimiterState::from_parts(
            BIGINT_MAX,
            u32::MAX,
            u32::MAX - 1,
            BIGINT_MAX - 1,
            BIGINT_MAX - 2,
            u32::MAX - 2,
            BIGINT_MAX - 3,
        ),
    ] {
        let update = call!(store.update_limiter(&key, expire_at, move |_| edge));
        assert_eq!(
            update.after, edge,
            "update_limiter must return what it stored"
        );
        assert_eq!(
            call!(store.get_limiter(&key)),
            edge,
            "every limiter field must round-trip exactly"
        );
        assert_eq!(
            call!(store.update_limiter(&key, expire_at, |s| s)),
            LimiterUpdate {
                before: edge,
                after: edge,
            },
            "update_limiter must read back every field exactly"
        );
    }
    // Times beyond i64::MAX: stored exactly, or refused with nothing changed; never wrapped.
    let stored = call!(store.get_limiter(&key));
    let setters: [fn(&mut LimiterState); 4] = [
        |s| s.window_start = u64::MAX,
        |s| s.locked_until = u64::MAX,
        |s| s.forgiven_at = u64::MAX,
        |s| s.last_success_at = u64::MAX,
    ];
    for set in setters {
        let mut huge = stored;
        set(&mut huge);
        match store.update_limiter(&key, expire_at, move |_| huge).await {
            Ok(update) => {
                assert_eq!(update.after, huge, "a time beyond i64::MAX must not wrap");
                assert_eq!(
                    call!(store.get_limiter(&key)),
                    huge,
                    "a time beyond i64::MAX must be stored exactly or refused, never wrapped"
                );
            }
            Err(_) => assert_eq!(
                call!(store.get_limiter(&key)),
                stored,
                "a refused update_limiter must change nothing"
            ),
        }
        call!(store.update_limiter(&key, expire_at, move |_| stored));
    }

    let reset = call!(store.update_limiter(&key, expire_at, |_| LimiterState::default()));
    assert_eq!(reset.after, default, "reset to default");
    assert_eq!(call!(store.get_limiter(&key)), default);
}
