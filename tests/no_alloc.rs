//! Generate and verify never touch the heap: a counting global allocator proves it.
//!
//! This is the only file in the crate with `unsafe`: a `GlobalAlloc` impl is an `unsafe impl`.
//! It forwards to the system allocator unchanged and only counts calls. The library itself stays
//! under `#![forbid(unsafe_code)]` (Cargo.toml's lint is "deny" so that this file can allow it).
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use twofactor::{Algorithm, Hotp, ManualClock, Secret, Totp, Window};

struct Counting;

thread_local! {
    // Counts only the allocations of the thread under test; the test harness allocates on others.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn record() {
    // `try_with`: the TLS slot may already be gone while a thread is being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees are ours; the counter is a thread-local `Cell` that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record();
        // SAFETY: forwarded unchanged (see the impl comment).
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record();
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations it made on this thread.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_sees_allocations() {
    // Without this, a broken counter would make the real test pass vacuously.
    let n = allocations_in(|| {
        std::hint::black_box(vec![1u8; 32]);
    });
    assert!(n >= 1);
}

#[test]
fn generate_and_verify_do_not_allocate() {
    for (algorithm, len) in [
        (Algorithm::Sha1, 20),
        (Algorithm::Sha256, 32),
        (Algorithm::Sha512, 64),
    ] {
        let secret = Secret::from_bytes(&vec![7u8; len]).unwrap();
        let totp = Totp::builder(&secret)
            .algorithm(algorithm)
            .digits(8)
            .window(Window::new(3, 2).unwrap())
            .build()
            .unwrap();
        let hotp = Hotp::new(&secret, algorithm, 6).unwrap();
        let clock = ManualClock::new(1_700_000_000);
        let right = totp.generate_at(1_700_000_000).unwrap();
        let right_hotp = hotp.generate(42);
        let n = allocations_in(|| {
            let code = totp.generate_at(1_700_000_000).unwrap();
            let now = totp.generate_now(&clock).unwrap();
            let step = totp.generate_step(12_345);
            assert!(
                totp.verify_at(code.as_str(), 1_700_000_000)
                    .unwrap()
                    .is_valid()
            );
            assert!(totp.verify_now(now.as_str(), &clock).unwrap().is_valid());
            let _ = totp.verify_at("00000000", 1_700_000_000).unwrap();
            let _ = totp
                .verify_shifted_at(right.as_str(), 1_700_000_000, -2)
                .unwrap();
            let _ = totp.diagnose_at(step.as_str(), 1_700_000_000, 100).unwrap();
            // Malformed input is a wrong code; telling a typo apart does not allocate either.
            assert!(!totp.verify_at("12ab", 1_700_000_000).unwrap().is_valid());
            assert!(
                !totp
                    .verify_at("1234567a", 1_700_000_000)
                    .unwrap()
                    .is_valid()
            );
            assert!(totp.digits().check("12ab").is_err());
            let h = hotp.generate(42);
            assert!(hotp.verify(h.as_str(), 40, 5).unwrap().is_valid());
            assert!(hotp.verify(right_hotp.as_str(), 0, 3).is_ok());
        });
        assert_eq!(n, 0, "{algorithm}: generate/verify allocated {n} times");

        // Keying from an existing Secret does not allocate either (only Secret itself owns heap).
        let n = allocations_in(|| {
            let t = Totp::builder(&secret).algorithm(algorithm).build().unwrap();
            std::hint::black_box(&t);
        });
        assert_eq!(n, 0, "{algorithm}: building a Totp allocated {n} times");
    }
}
