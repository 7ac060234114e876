//! Password hashing with a bounded appetite. Each Argon2id run holds 19 MiB for tens of
//! milliseconds; unbounded, a burst of logins grows the process by gigabytes. At most `workers`
//! hashes run at once; a request beyond them waits for a worker, holding no Argon2 memory, if
//! the wait it can expect fits in `queue_time` (see [`Admission`]). Any other request is
//! answered 503 + `Retry-After` at once, before it allocates anything.
//!
//! The hashes run on `workers` threads of their own, each with one Argon2 memory buffer that it
//! reuses, never on tokio's blocking pool with a fresh 19 MiB allocation per hash: the allocator
//! keeps freed blocks in per-thread arenas, so with fresh allocations resident memory kept
//! growing even with only 2 hashes at a time (measured for 128 concurrent logins: 495 MiB peak
//! on the blocking pool, 332 MiB on 2 dedicated threads). With the reused buffers it stays near
//! `workers × 19 MiB` above the baseline, however many requests wait.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::error::ApiError;

type Job = Box<dyn FnOnce() + Send>;

/// Who may wait for a hashing worker: a request is admitted when the wait it can expect, from
/// the requests ahead of it and the measured time of one hash, fits in `queue_time`. A fixed
/// count of waiting slots would turn users away on a slow machine and queue too many on a fast
/// one; the expected wait is what the user experiences.
#[derive(Clone, Copy, Debug)]
pub struct Admission {
    /// Hashes that run at once (at least 1).
    pub workers: usize,
    /// The longest wait (until the request's own hash is done) worth queueing for.
    pub queue_time: Duration,
}

impl Admission {
    /// Whether the next request is admitted when `admitted` requests already run or wait and
    /// one hash takes `hash_time` (`None`: not measured yet). Its expected wait is
    /// `ceil((admitted + 1) / workers) × hash_time`. A free worker always admits (the wait is
    /// the request's own hash). `Err(retry_after)`: the whole seconds until that wait would
    /// fit, at least 1.
    pub fn decide(&self, admitted: usize, hash_time: Option<Duration>) -> Result<(), u64> {
        let workers = self.workers.max(1);
        if admitted < workers {
            return Ok(());
        }
        // Unmeasured (only before the startup calibration hash): no queue.
        let Some(hash_time) = hash_time else {
            return Err(1);
        };
        let rounds = u32::try_from(admitted / workers + 1).unwrap_or(u32::MAX);
        let wait = hash_time.saturating_mul(rounds);
        if wait <= self.queue_time {
            return Ok(());
        }
        // The queue drains at `workers` per `hash_time`: each second waited takes a second off
        // the expected wait.
        let excess = wait.saturating_sub(self.queue_time);
        let secs = excess.as_secs() + u64::from(excess.subsec_nanos() > 0);
        Err(secs.max(1))
    }
}

/// The moving estimate of one hash's time: the first sample (the startup calibration hash)
/// sets it, every later one moves it by an eighth of the difference, so a burst of slow hashes
/// (a loaded machine) raises it within a few hashes and a single outlier does not.
pub fn next_estimate(estimate: Option<Duration>, sample: Duration) -> Duration {
    match estimate {
        None => sample,
        Some(old) if sample >= old => old + (sample - old) / 8,
        Some(old) => old - (old - sample) / 8,
    }
}

/// The bounded password hasher, shared by every handler.
pub struct Hasher {
    /// To the worker threads; never holds more than `workers` jobs (each holds a slot).
    jobs: mpsc::Sender<Job>,
    slots: Arc<Semaphore>,
    /// Requests running or waiting for a slot.
    admitted: AtomicUsize,
    admission: Admission,
    /// The estimate of one hash's time in nanoseconds; 0 until the first hash.
    hash_nanos: Arc<AtomicU64>,
}

impl Hasher {
    /// Starts `admission.workers` hashing threads (at least 1).
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn new(admission: Admission) -> std::io::Result<Self> {
        let workers = admission.workers.max(1);
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..workers {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for a job, never while running one.
                        let job = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // A panicking job (none is expected) drops its reply, and its request
                        // gets a 503; the thread stays.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })?;
        }
        Ok(Self {
            jobs,
            slots: Arc::new(Semaphore::new(workers)),
            admitted: AtomicUsize::new(0),
            admission: Admission {
                workers,
                ..admission
            },
            hash_nanos: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The current estimate of one hash's time (`None` before the first hash).
    pub fn hash_time(&self) -> Option<Duration> {
        match self.hash_nanos.load(Ordering::Acquire) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    /// Argon2id with the crate's default parameters (19 MiB, 2 passes: OWASP's recommendation)
    /// and a fresh 128-bit salt, as a PHC string.
    ///
    /// # Errors
    /// [`ApiError::Busy`] when the expected wait is too long; 503 if the hashing task or the OS
    /// RNG fails.
    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String, ApiError> {
        let mut salt = [0u8; 16];
        crate::random::fill(&mut salt).map_err(|e| ApiError::infra("no OS randomness", &e))?;
        self.run(move || hash_phc(password.as_bytes(), &salt))
            .await?
            .ok_or_else(|| {
                tracing::error!("password hashing failed");
                ApiError::Unavailable
            })
    }

    /// Checks a password against a PHC string; `false` for a wrong password or a broken hash.
    ///
    /// # Errors
    /// [`ApiError::Busy`] when the expected wait is too long; 503 if the hashing task fails.
    pub async fn verify(
        &self,
        password: Zeroizing<String>,
        hash: String,
    ) -> Result<bool, ApiError> {
        self.run(move || verify_phc(password.as_bytes(), &hash))
            .await
    }

    /// Runs `work` on a hashing thread once a slot is free, or refuses at once when the wait
    /// is expected to exceed the queue time. A request that waited twice the queue time (the
    /// estimate was far off) gives up.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _admitted = Admitted::enter(&self.admitted, |n| {
            self.admission.decide(n, self.hash_time())
        })
        .map_err(|retry_after| ApiError::Busy { retry_after })?;
        let permit = match tokio::time::timeout(
            self.admission.queue_time.saturating_mul(2),
            Arc::clone(&self.slots).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            // Timed out in the queue (a closed semaphore cannot happen: it is never closed).
            _ => {
                return Err(ApiError::Busy {
                    retry_after: self.admission.queue_time.as_secs().max(1),
                });
            }
        };
        // The permit moves into the job: even if this request is dropped (the client went
        // away), the slot stays taken until the hash is done, so the bound holds.
        let (reply, answer) = tokio::sync::oneshot::channel();
        let hash_nanos = Arc::clone(&self.hash_nanos);
        let job: Job = Box::new(move || {
            let started = Instant::now();
            let out = work();
            let took = started.elapsed();
            drop(permit);
            record(&hash_nanos, took);
            let _ = reply.send(out);
        });
        if self.jobs.send(job).is_err() {
            tracing::error!("the password hashing threads are gone");
            return Err(ApiError::Unavailable);
        }
        answer
            .await
            .map_err(|e| ApiError::infra("password hashing task failed", &e))
    }
}

/// Folds one measured hash time into the estimate.
fn record(hash_nanos: &AtomicU64, took: Duration) {
    let _ = hash_nanos.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        let old = (n > 0).then(|| Duration::from_nanos(n));
        let new = next_estimate(old, took).as_nanos();
        Some(u64::try_from(new).unwrap_or(u64::MAX).max(1))
    });
}

thread_local! {
    /// This hashing thread's Argon2 memory, grown once to the largest cost seen and reused.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2 of `password` and `salt` into `out`, in this thread's reused memory. Every block is
/// written before it is read, so what an earlier hash left there does not matter.
fn argon2_into(
    argon: &Argon2<'_>,
    blocks: usize,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> bool {
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::new());
        }
        argon
            .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
            .is_ok()
    })
}

/// What `PasswordHasher::hash_password` makes, without its per-call allocation.
fn hash_phc(password: &[u8], salt: &[u8; 16]) -> Option<String> {
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
    if !argon2_into(&argon, params.block_count(), password, salt, &mut out[..]) {
        return None;
    }
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).ok()?,
        salt: Some(Salt::new(salt).ok()?),
        hash: Some(Output::new(&out[..]).ok()?),
    };
    Some(phc.to_string())
}

/// What `PasswordVerifier::verify_password` does (the parameters, salt and algorithm from the
/// PHC string; the outputs compared in constant time), without its per-call allocation.
/// `false` for a wrong password or a hash it cannot read.
fn verify_phc(password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        Params::try_from(&parsed),
        Algorithm::try_from(parsed.algorithm.as_str()),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    if !argon2_into(
        &argon,
        params.block_count(),
        password,
        salt.as_ref(),
        &mut out,
    ) {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|computed| computed == *expected)
}

/// One admitted request, counted until dropped.
struct Admitted<'a>(&'a AtomicUsize);

impl<'a> Admitted<'a> {
    /// Counts a request in if `decide` admits it at the current count.
    fn enter(
        counter: &'a AtomicUsize,
        decide: impl Fn(usize) -> Result<(), u64>,
    ) -> Result<Self, u64> {
        let mut n = counter.load(Ordering::Acquire);
        loop {
            decide(n)?;
            match counter.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(Self(counter)),
                Err(actual) => n = actual,
            }
        }
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn admission_is_by_expected_wait() {
        let two = Admission {
            workers: 2,
            queue_time: Duration::from_secs(10),
        };
        let hash = Some(ms(500));
        // A free worker: always in, even if one hash is longer than the queue time.
        assert_eq!(two.decide(0, hash), Ok(()));
        assert_eq!(two.decide(1, Some(Duration::from_secs(60))), Ok(()));
        // 16 clients (the load run): at most 8 rounds of 500 ms ahead, 4.5 s.
        assert_eq!(two.decide(15, hash), Ok(()));
        // 38 ahead: ceil(39 / 2) = 20 rounds = 10 s, exactly the queue time.
        assert_eq!(two.decide(38, hash), Ok(()));
        // 40 ahead: 21 rounds = 10.5 s: half a second over, retry in 1.
        assert_eq!(two.decide(40, hash), Err(1));
        // Far over: the seconds until the wait fits, rounded up.
        assert_eq!(two.decide(99, hash), Err(15)); // 50 rounds = 25 s
        assert_eq!(two.decide(100, Some(ms(401))), Err(11)); // 51 × 401 ms = 20.451 s
        // A faster machine queues more: 128 concurrent logins at 100 ms a hash all fit.
        assert_eq!(two.decide(127, Some(ms(100))), Ok(()));
        // Before the calibration hash: no queue, only the free workers.
        assert_eq!(two.decide(1, None), Ok(()));
        assert_eq!(two.decide(2, None), Err(1));
        // No overflow on absurd inputs.
        assert!(two.decide(usize::MAX, Some(Duration::MAX)).is_err());
        let one = Admission {
            workers: 0, // treated as 1
            queue_time: ms(1500),
        };
        assert_eq!(one.decide(0, Some(ms(700))), Ok(()));
        assert_eq!(one.decide(1, Some(ms(700))), Ok(()));
        assert_eq!(one.decide(2, Some(ms(700))), Err(1));
    }

    #[test]
    fn the_estimate_starts_at_the_calibration_and_moves_by_an_eighth() {
        let first = next_estimate(None, ms(80));
        assert_eq!(first, ms(80));
        assert_eq!(next_estimate(Some(first), ms(160)), ms(90));
        assert_eq!(next_estimate(Some(first), ms(0)), ms(70));
        assert_eq!(next_estimate(Some(first), ms(80)), ms(80));
        // A machine that got twice as slow: the estimate follows within a few dozen hashes.
        let mut e = first;
        for _ in 0..40 {
            e = next_estimate(Some(e), ms(160));
        }
        assert!(e > ms(159) && e <= ms(160), "{e:?}");
    }

    #[tokio::test]
    async fn beyond_the_queue_time_is_refused_at_once() {
        let hasher = Arc::new(
            Hasher::new(Admission {
                workers: 1,
                queue_time: Duration::from_secs(2),
            })
            .unwrap(),
        );
        // One hash "takes" a second: one running and one waiting fit in 2 s, a third does not.
        hasher.hash_nanos.store(1_000_000_000, Ordering::Release);
        let gate = Arc::new(std::sync::Barrier::new(2));
        // Occupy the one worker until the gate opens.
        let busy = {
            let (hasher, gate) = (Arc::clone(&hasher), Arc::clone(&gate));
            tokio::spawn(async move { hasher.run(move || gate.wait()).await.is_ok() })
        };
        while hasher.admitted.load(Ordering::Acquire) < 1 {
            tokio::task::yield_now().await;
        }
        let queued = {
            let hasher = Arc::clone(&hasher);
            tokio::spawn(async move { hasher.run(|| 7).await.ok() })
        };
        while hasher.admitted.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        // Two ahead: 3 s expected, 1 s over the queue time.
        let refused = hasher.run(|| 7).await;
        assert!(matches!(refused, Err(ApiError::Busy { retry_after: 1 })));
        gate.wait();
        assert!(busy.await.unwrap());
        assert_eq!(queued.await.unwrap(), Some(7));
        assert_eq!(hasher.admitted.load(Ordering::Acquire), 0);
        // The two jobs were measured into the estimate (they took far less than a second).
        assert!(hasher.hash_time().unwrap() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn the_first_hash_calibrates() {
        let hasher = Hasher::new(Admission {
            workers: 1,
            queue_time: Duration::from_secs(10),
        })
        .unwrap();
        assert_eq!(hasher.hash_time(), None);
        let phc = hasher
            .hash(Zeroizing::new("calibration".into()))
            .await
            .unwrap();
        assert!(hasher.hash_time().is_some());
        assert!(
            hasher
                .verify(Zeroizing::new("calibration".into()), phc)
                .await
                .unwrap()
        );
    }

    #[test]
    fn hashes_verify_both_ways_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = hash_phc(b"hunter42 hunter42", &[7u8; 16]).unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"hunter42 hunter42", &parsed)
                .is_ok()
        );
        // The reused memory holds the previous hash's blocks: results must not depend on it.
        assert!(verify_phc(b"hunter42 hunter42", &ours));
        assert!(!verify_phc(b"hunter42 hunter43", &ours));
        let theirs = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(verify_phc(b"correct horse", &theirs));
        assert!(!verify_phc(b"correct horsE", &theirs));
        assert!(!verify_phc(b"correct horse", "not a hash"));
        assert!(!verify_phc(
            b"correct horse",
            "$argon2id$v=19$m=19456,t=2,p=1"
        ));
        // Same salt and password, same hash, whatever the buffer held before.
        assert_eq!(hash_phc(b"x", &[1u8; 16]), hash_phc(b"x", &[1u8; 16]));
    }
}
