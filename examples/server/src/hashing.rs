//! Password hashing with a bounded appetite. Each Argon2id run holds 19 MiB for tens of
//! milliseconds; unbounded, a burst of logins grows the process by gigabytes. At most `workers`
//! hashes run at once, at most `queue` more requests wait (for at most `max_wait`), and any
//! request beyond that is answered 503 + `Retry-After` at once, before it allocates anything.
//!
//! The hashes run on `workers` threads of their own, each with one Argon2 memory buffer that it
//! reuses, never on tokio's blocking pool with a fresh 19 MiB allocation per hash: the allocator
//! keeps freed blocks in per-thread arenas, so with fresh allocations resident memory kept
//! growing even with only 2 hashes at a time (measured for 128 concurrent logins: 495 MiB peak
//! on the blocking pool, 332 MiB on 2 dedicated threads). With the reused buffers it stays near
//! `workers × 19 MiB` above the baseline.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::error::ApiError;

/// `Retry-After` (seconds) of a request turned away because hashing is saturated.
pub const BUSY_RETRY_AFTER: u64 = 1;

type Job = Box<dyn FnOnce() + Send>;

/// The bounded password hasher, shared by every handler.
pub struct Hasher {
    /// To the worker threads; never holds more than `workers` jobs (each holds a slot).
    jobs: mpsc::Sender<Job>,
    slots: Arc<Semaphore>,
    /// Requests holding or waiting for a slot.
    admitted: AtomicUsize,
    /// `workers + queue`: the most requests admitted at once.
    limit: usize,
    /// The longest a request waits in the queue for a hashing slot.
    max_wait: Duration,
}

impl Hasher {
    /// Starts `workers` hashing threads (at least 1); `queue` more requests may wait, each for
    /// at most `max_wait`.
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn new(workers: usize, queue: usize, max_wait: Duration) -> std::io::Result<Self> {
        let workers = workers.max(1);
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
            limit: workers.saturating_add(queue),
            max_wait,
        })
    }

    /// Argon2id with the crate's default parameters (19 MiB, 2 passes: OWASP's recommendation)
    /// and a fresh 128-bit salt, as a PHC string.
    ///
    /// # Errors
    /// [`ApiError::Busy`] when saturated; 503 if the hashing task or the OS RNG fails.
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
    /// [`ApiError::Busy`] when saturated; 503 if the hashing task fails.
    pub async fn verify(
        &self,
        password: Zeroizing<String>,
        hash: String,
    ) -> Result<bool, ApiError> {
        self.run(move || verify_phc(password.as_bytes(), &hash))
            .await
    }

    /// Runs `work` on a hashing thread once a slot is free, or refuses at once when `limit`
    /// requests are already admitted, or after `max_wait` in the queue.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _admitted = Admitted::enter(&self.admitted, self.limit).ok_or(ApiError::Busy {
            retry_after: BUSY_RETRY_AFTER,
        })?;
        let permit = match tokio::time::timeout(
            self.max_wait,
            Arc::clone(&self.slots).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            // Timed out in the queue (a closed semaphore cannot happen: it is never closed).
            _ => {
                return Err(ApiError::Busy {
                    retry_after: BUSY_RETRY_AFTER,
                });
            }
        };
        // The permit moves into the job: even if this request is dropped (the client went
        // away), the slot stays taken until the hash is done, so the bound holds.
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = work();
            drop(permit);
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
    fn enter(counter: &'a AtomicUsize, limit: usize) -> Option<Self> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(counter))
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

    #[tokio::test]
    async fn beyond_workers_plus_queue_is_refused_at_once() {
        let hasher = Arc::new(Hasher::new(1, 2, Duration::from_secs(5)).unwrap());
        let gate = Arc::new(std::sync::Barrier::new(2));
        // Occupy the one worker until the gate opens.
        let busy = {
            let (hasher, gate) = (Arc::clone(&hasher), Arc::clone(&gate));
            tokio::spawn(async move { hasher.run(move || gate.wait()).await.is_ok() })
        };
        while hasher.admitted.load(Ordering::Acquire) < 1 {
            tokio::task::yield_now().await;
        }
        // Two wait in the queue; the fourth is turned away without waiting.
        let queued: Vec<_> = (0..2)
            .map(|_| {
                let hasher = Arc::clone(&hasher);
                tokio::spawn(async move { hasher.run(|| 7).await.ok() })
            })
            .collect();
        while hasher.admitted.load(Ordering::Acquire) < 3 {
            tokio::task::yield_now().await;
        }
        let refused = hasher.run(|| 7).await;
        assert!(matches!(refused, Err(ApiError::Busy { retry_after: 1 })));
        gate.wait();
        assert!(busy.await.unwrap());
        for q in queued {
            assert_eq!(q.await.unwrap(), Some(7));
        }
        assert_eq!(hasher.admitted.load(Ordering::Acquire), 0);
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
