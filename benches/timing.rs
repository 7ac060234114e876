//! Timing side channels, measured dudect-style: Welch's t-test between input classes whose
//! timing must not differ, over randomly interleaved, batch-timed samples, with outliers cropped
//! at several percentiles, and an A/A control pair (two classes with identical inputs) beside
//! the comparisons.
//!
//! Groups (select with a substring filter; none runs every group):
//! - `totp_verify_at`: `Totp::verify_at` (SHA-1, 6 digits, window ±1) with a code valid at drift
//!   -1 / 0 / +1, each against an invalid code.
//! - `service_verify`: `TwoFactor::verify` on `MemoryStore` with a wrong code, for an unknown
//!   user, a user without 2FA (enrolment started, not confirmed) and a user with 2FA on. The TOTP
//!   rate limit never locks (`max_failures = u32::MAX`, no escalation), so every call does the
//!   full check; each batch asserts that every call was `Rejected`, never `RateLimited`. Two
//!   controls: `2fa-on'` vs `2fa-on''` (the same users, A/A) and `2fa-on` vs `2fa-on'` (two sets
//!   of users enrolled alike, A/A'), which bounds what the pairs can resolve.
//!
//! Run: `cargo bench --all-features --bench timing [-- FILTER]`; environment:
//! `TIMING_SAMPLES` (per class, default 1000000), `TIMING_BATCH` (calls per timed sample,
//! default 16 for `totp_verify_at`, 8 for `service_verify`), `TIMING_USERS` (users per class for
//! `service_verify`, default 4096), `TIMING_SEED` (u64; default from the OS). See
//! benches/README.md for how to read the output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use twofactor::service::{Config, SecondFactor, Verify};
use twofactor::{
    BackupCodeKey, ConfirmOutcome, EnrolmentStart, Keyring, ManualClock, MemoryStore, Secret, Totp,
    TotpOutcome, TwoFactor, VerifyOutcome,
};

/// dudect's threshold: above it, the two classes are told apart.
const T_THRESHOLD: f64 = 4.5;
/// Crop levels: keep samples at or below this percentile of the pair's pooled samples
/// (1.0 keeps all), as dudect crops at fixed percentiles and reports each test.
const CROPS: [f64; 5] = [1.0, 0.999, 0.99, 0.90, 0.50];
/// The Unix time the service runs at (any fixed time; the limiter never locks).
const NOW: u64 = 1_700_000_000;

struct Settings {
    samples: usize,
    batch: Option<usize>,
    users: usize,
    seed: u64,
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
    })
}

fn main() {
    // `cargo bench` passes `--bench`; everything else that is not a flag is a filter.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let settings = Settings {
        samples: env_usize("TIMING_SAMPLES").unwrap_or(1_000_000),
        batch: env_usize("TIMING_BATCH"),
        users: env_usize("TIMING_USERS").unwrap_or(4096).max(1),
        seed: std::env::var("TIMING_SEED")
            .ok()
            .map_or_else(rand::random, |v| v.parse().expect("TIMING_SEED: a u64")),
    };
    let selected = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    if selected("totp_verify_at") {
        totp_verify_at(&settings);
    }
    if selected("service_verify") {
        service_verify(&settings);
    }
}

// ------------------------------------------------------------------------------------------------
// Measurement
// ------------------------------------------------------------------------------------------------

/// A group: class names, the pairs to compare (indices), and the control pairs with their tags.
struct Group {
    name: &'static str,
    classes: &'static [&'static str],
    pairs: &'static [(usize, usize)],
    controls: &'static [(usize, usize, &'static str)],
}

/// Runs `samples` batches per class in a random order (a shuffled schedule holding each class
/// exactly `samples` times). `sample(class, rng)` prepares a batch's inputs (untimed), times the
/// batch, checks its outcomes (untimed) and returns the batch's duration in ns.
fn collect(
    group: &Group,
    settings: &Settings,
    mut sample: impl FnMut(usize, &mut StdRng) -> u64,
) -> Vec<Vec<u64>> {
    let classes = group.classes.len();
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let mut schedule: Vec<u8> = (0..classes)
        .flat_map(|c| std::iter::repeat_n(u8::try_from(c).unwrap(), settings.samples))
        .collect();
    schedule.shuffle(&mut rng);
    // Warm-up: caches, branch predictors, the allocator and CPU frequency settle.
    for &class in schedule.iter().take(20_000) {
        black_box(sample(usize::from(class), &mut rng));
    }
    let mut times: Vec<Vec<u64>> = (0..classes)
        .map(|_| Vec::with_capacity(settings.samples))
        .collect();
    for &class in &schedule {
        let class = usize::from(class);
        times[class].push(sample(class, &mut rng));
    }
    times
}

/// Mean and variance by Welford's method.
#[derive(Default)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn push(&mut self, x: f64) {
        self.n += 1.0;
        let d = x - self.mean;
        self.mean += d / self.n;
        self.m2 += d * (x - self.mean);
    }

    fn var(&self) -> f64 {
        self.m2 / (self.n - 1.0)
    }
}

/// Welch's t statistic of two samples.
fn welch_t(a: &Moments, b: &Moments) -> f64 {
    (a.mean - b.mean) / (a.var() / a.n + b.var() / b.n).sqrt()
}

/// The median of `xs`.
fn median(xs: &[u64]) -> u64 {
    let mut v = xs.to_vec();
    let mid = v.len() / 2;
    *v.select_nth_unstable(mid).1
}

/// The pair's |t| at every crop level, plus the uncropped means.
fn compare(a: &[u64], b: &[u64]) -> (Moments, Moments, Vec<f64>) {
    let mut pooled: Vec<u64> = a.iter().chain(b).copied().collect();
    pooled.sort_unstable();
    let ts = CROPS
        .iter()
        .map(|&p| {
            // p ≤ 1 and the index is clamped: the cast is the percentile's rank.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let rank = ((pooled.len() as f64 * p).ceil() as usize).clamp(1, pooled.len());
            let limit = pooled[rank - 1];
            let moments = |xs: &[u64]| {
                let mut m = Moments::default();
                for &x in xs.iter().filter(|&&x| x <= limit) {
                    #[allow(clippy::cast_precision_loss)]
                    m.push(x as f64);
                }
                m
            };
            welch_t(&moments(a), &moments(b)).abs()
        })
        .collect();
    let all = |xs: &[u64]| {
        let mut m = Moments::default();
        for &x in xs {
            #[allow(clippy::cast_precision_loss)]
            m.push(x as f64);
        }
        m
    };
    (all(a), all(b), ts)
}

fn report(group: &Group, settings: &Settings, batch: usize, detail: &str, times: &[Vec<u64>]) {
    println!(
        "\n== {}: {} samples/class, batch {batch}, seed {} ({detail})",
        group.name, settings.samples, settings.seed
    );
    let mut header = format!(
        "{:<28} {:>9} {:>11} {:>11} {:>8}",
        "pair", "n", "a ns/call", "b ns/call", "Δmedian"
    );
    for &p in &CROPS {
        if p >= 1.0 {
            header.push_str(&format!(" {:>8}", "|t| all"));
        } else {
            header.push_str(&format!(" {:>8}", format!("<p{}", p * 100.0)));
        }
    }
    println!("{header}  verdict");
    let lines = group
        .pairs
        .iter()
        .map(|&p| (p, ""))
        .chain(group.controls.iter().map(|&(a, b, tag)| ((a, b), tag)));
    for ((a, b), tag) in lines {
        let (ma, mb, ts) = compare(&times[a], &times[b]);
        #[allow(clippy::cast_precision_loss)]
        let per_call = |m: &Moments| m.mean / batch as f64;
        #[allow(clippy::cast_precision_loss)]
        let median_diff = (median(&times[a]) as f64 - median(&times[b]) as f64) / batch as f64;
        let mut line = format!(
            "{:<28} {:>9} {:>11.2} {:>11.2} {:>8.2}",
            format!("{} vs {}{tag}", group.classes[a], group.classes[b]),
            times[a].len().min(times[b].len()),
            per_call(&ma),
            per_call(&mb),
            median_diff,
        );
        for t in &ts {
            write!(line, " {t:>8.2}").unwrap();
        }
        let worst = ts.iter().copied().fold(0.0, f64::max);
        if worst <= T_THRESHOLD {
            line.push_str("  PASS |t| <= 4.5");
        } else {
            line.push_str("  FAIL");
        }
        println!("{line}");
    }
}

fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

// ------------------------------------------------------------------------------------------------
// Totp::verify_at
// ------------------------------------------------------------------------------------------------

/// One time and the codes each class sends at it: valid at drift -1, 0, +1, then an invalid one.
/// Held inline in one cache line, so that no class's code is hotter in the cache than another's
/// (the invalid column serves two classes).
#[repr(align(64))]
struct TotpInput {
    t: u64,
    codes: [[u8; 6]; 4],
}

fn totp_verify_at(settings: &Settings) {
    const GROUP: Group = Group {
        name: "totp_verify_at",
        classes: &["valid(-1)", "valid(0)", "valid(+1)", "invalid", "invalid'"],
        pairs: &[(0, 3), (1, 3), (2, 3)],
        controls: &[(3, 4, " (A/A)")],
    };
    let batch = settings.batch.unwrap_or(16);
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0x746f_7470);
    let secret = Secret::from_bytes(b"12345678901234567890").unwrap();
    let totp = Totp::builder(&secret).build().unwrap();
    let digits = |s: &str| <[u8; 6]>::try_from(s.as_bytes()).unwrap();
    // A pool of random times; every class draws the same pool entries, only the code differs.
    let pool: Vec<TotpInput> = (0..4096)
        .map(|_| {
            let t = rng.random_range(1_000_000_000..2_000_000_000u64);
            let window = [t - 30, t, t + 30].map(|u| digits(totp.generate_at(u).unwrap().as_str()));
            let invalid = loop {
                let c = digits(&format!("{:06}", rng.random_range(0..1_000_000u32)));
                if !window.contains(&c) {
                    break c;
                }
            };
            TotpInput {
                t,
                codes: [window[0], window[1], window[2], invalid],
            }
        })
        .collect();
    let column = |class: usize| class.min(3);
    // The batch's codes and times are copied here, so that every class reads its inputs from the
    // same addresses (where a load sits relative to the stack's stores can change its latency).
    let mut codes = String::with_capacity(6 * batch);
    let mut times: Vec<u64> = Vec::with_capacity(batch);
    let mut outs: Vec<Option<TotpOutcome>> = vec![None; batch];
    let samples = collect(&GROUP, settings, |class, rng| {
        codes.clear();
        times.clear();
        for _ in 0..batch {
            let e = &pool[rng.random_range(0..pool.len())];
            codes.push_str(std::str::from_utf8(&e.codes[column(class)]).unwrap());
            times.push(e.t);
        }
        let start = Instant::now();
        for (i, (slot, &t)) in outs.iter_mut().zip(&times).enumerate() {
            *slot = totp
                .verify_at(black_box(&codes[6 * i..6 * i + 6]), black_box(t))
                .ok();
        }
        let ns = elapsed_ns(start);
        black_box(&outs);
        let want = (class < 3).then(|| i64::try_from(class).unwrap() - 1);
        for out in &outs {
            let drift = out.expect("verify_at failed").matched().map(|m| m.drift);
            assert_eq!(drift, want, "class {}", GROUP.classes[class]);
        }
        ns
    });
    report(
        &GROUP,
        settings,
        batch,
        "SHA-1, 6 digits, window ±1",
        &samples,
    );
}

// ------------------------------------------------------------------------------------------------
// TwoFactor::verify
// ------------------------------------------------------------------------------------------------

fn service_verify(settings: &Settings) {
    const GROUP: Group = Group {
        name: "service_verify",
        classes: &["unknown", "no-2fa", "2fa-on", "2fa-on'", "2fa-on''"],
        pairs: &[(0, 2), (1, 2), (0, 1)],
        controls: &[(3, 4, " (A/A)"), (2, 3, " (A/A')")],
    };
    let batch = settings.batch.unwrap_or(8);
    let users = settings.users;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut config = Config::new("Timing");
    // Never lock: every sample must do the full check. Asserted per call below.
    config.rate_limit.max_failures = u32::MAX;
    config.rate_limit.escalate = false;
    let store = MemoryStore::new();
    let svc = TwoFactor::new(
        store.clone(),
        store,
        Keyring::single(1, [7; 32]),
        BackupCodeKey::from_bytes([3; 32]),
        config,
    )
    .unwrap()
    .with_clock(ManualClock::new(NOW));

    // Ids of one length for every class, so hashing and copying them cost the same.
    let ids = |tag: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("user-{tag}-{i:06}")).collect()
    };
    let unknown = ids("un", users);
    let pending = ids("pe", users);
    let enabled = ids("on", users);
    // The controls: `2fa-on'` and `2fa-on''` send the same inputs (A/A); `2fa-on` against
    // `2fa-on'` compares two sets of users enrolled alike (A/A'), the floor for what the pairs
    // can resolve. The control pool serves two classes, so it has twice the users: every user of
    // every pool is drawn equally often, and none is hotter in the cache than another.
    let control = ids("co", 2 * users);
    let id_len = unknown[0].len();
    // The codes valid now for each enrolled user: a wrong code must avoid them.
    let mut valid_on: Vec<[u32; 3]> = Vec::with_capacity(users);
    let mut valid_co: Vec<[u32; 3]> = Vec::with_capacity(2 * users);
    // Users are created interleaved (one of each pool in turn), so that every pool's records,
    // keys and limiter rows are spread alike over the heap and the maps.
    rt.block_on(async {
        for i in 0..users {
            let EnrolmentStart::Started(_) = svc
                .start_enrolment(&pending[i], "p@example.com")
                .await
                .unwrap()
            else {
                panic!("enrolment did not start")
            };
            for (id, is_control) in [
                (&enabled[i], false),
                (&control[2 * i], true),
                (&control[2 * i + 1], true),
            ] {
                let EnrolmentStart::Started(e) =
                    svc.start_enrolment(id, "e@example.com").await.unwrap()
                else {
                    panic!("enrolment did not start")
                };
                let totp = Totp::builder(e.secret()).build().unwrap();
                let code = totp.generate_at(NOW).unwrap();
                let ConfirmOutcome::Confirmed { .. } =
                    svc.confirm_enrolment(id, code.as_str()).await.unwrap()
                else {
                    panic!("not confirmed")
                };
                let codes = [NOW - 30, NOW, NOW + 30]
                    .map(|t| totp.generate_at(t).unwrap().as_str().parse().unwrap());
                if is_control {
                    valid_co.push(codes);
                } else {
                    valid_on.push(codes);
                }
            }
        }
    });
    let pools = [&unknown, &pending, &enabled, &control, &control];
    // Touch every user once, so that no sample pays for creating a limiter row.
    rt.block_on(async {
        for id in [&unknown, &pending, &enabled, &control]
            .into_iter()
            .flatten()
        {
            let out = svc
                .verify(Verify::new(id, SecondFactor::Typed("000000")))
                .await
                .unwrap();
            assert!(matches!(
                out,
                VerifyOutcome::Rejected | VerifyOutcome::Success { .. }
            ));
        }
    });
    // The batch's ids and codes are copied into these buffers, so that every class reads its
    // inputs from the same memory.
    let mut batch_ids = String::with_capacity(id_len * batch);
    let mut codes = String::with_capacity(6 * batch);
    let mut outs = Vec::with_capacity(batch);
    let times = collect(&GROUP, settings, |class, rng| {
        batch_ids.clear();
        codes.clear();
        for _ in 0..batch {
            // The same draws for every class: a user index (halved for the pools of `users`),
            // and a code that is wrong for both enrolled users it picks.
            let k = rng.random_range(0..2 * users);
            let code = loop {
                let c = rng.random_range(0..1_000_000u32);
                if !valid_on[k / 2].contains(&c) && !valid_co[k].contains(&c) {
                    break c;
                }
            };
            let pool = pools[class];
            batch_ids.push_str(&pool[k * pool.len() / (2 * users)]);
            write!(codes, "{code:06}").unwrap();
        }
        let start = Instant::now();
        rt.block_on(async {
            for i in 0..batch {
                let user = &batch_ids[id_len * i..id_len * (i + 1)];
                let code = &codes[6 * i..6 * i + 6];
                outs.push(
                    svc.verify(Verify::new(
                        black_box(user),
                        SecondFactor::Typed(black_box(code)),
                    ))
                    .await,
                );
            }
        });
        let ns = elapsed_ns(start);
        for out in outs.drain(..) {
            // Never locked out: a `RateLimited` sample would measure the limiter, not the check.
            assert_eq!(
                out.unwrap(),
                VerifyOutcome::Rejected,
                "class {}",
                GROUP.classes[class]
            );
        }
        ns
    });
    report(
        &GROUP,
        settings,
        batch,
        &format!(
            "wrong code, {users} users/class, MemoryStore, Keyring, no audit sink, never locked"
        ),
        &times,
    );
}
