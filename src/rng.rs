//! Access to the operating system's CSPRNG.

use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;

/// The operating system's CSPRNG as an infallible [`rand::CryptoRng`].
///
/// If the OS cannot supply randomness the process cannot safely continue issuing secrets, so a
/// failure there panics (inside `UnwrapErr`) rather than returning predictable bytes.
pub(crate) fn os_rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}
