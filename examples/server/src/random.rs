//! Randomness straight from the operating system.

use rand::TryRng as _;
use rand::rngs::{SysError, SysRng};

/// Fills `buf` from the OS CSPRNG. An error means no randomness: the caller must refuse to go on.
pub fn fill(buf: &mut [u8]) -> Result<(), SysError> {
    SysRng.try_fill_bytes(buf)
}
