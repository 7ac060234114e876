//! A generated code, held without heap allocation.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::Digits;

/// A one-time code as generated: 6 to 10 ASCII digits, with leading zeros.
///
/// A live code is a credential, so `Debug` is redacted, there is no `Display`, and the digits are
/// zeroized on drop. Read it with [`Code::as_str`].
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Code {
    buf: [u8; 10],
    len: u8,
}

impl Code {
    /// The code for HOTP value `value` (already reduced below 10^digits).
    #[inline]
    pub(crate) fn new(value: u32, digits: Digits) -> Self {
        let mut buf = [b'0'; 10];
        match digits.get() {
            6 => write_digits::<6>(&mut buf, value),
            7 => write_digits::<7>(&mut buf, value),
            8 => write_digits::<8>(&mut buf, value),
            9 => write_digits::<9>(&mut buf, value),
            _ => write_digits::<10>(&mut buf, value),
        }
        // 6 to 10: fits in u8.
        #[allow(clippy::cast_possible_truncation)]
        Self {
            buf,
            len: digits.get() as u8,
        }
    }

    /// The code as a string of digits, e.g. `"094287"`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written.
        core::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

/// Writes the last `N` decimal digits of `value` to `buf[..N]`, most significant first. Each
/// digit is `value / 10^k % 10` with a constant `10^k` once the loop is unrolled, so the digits
/// are independent multiply-shifts rather than a chain of divisions, and no digit's cost depends
/// on the value.
#[inline(always)]
fn write_digits<const N: usize>(buf: &mut [u8; 10], value: u32) {
    let mut power = 1u32;
    for k in 0..N {
        // A digit is below 10: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        {
            buf[N - 1 - k] = b'0' + (value / power % 10) as u8;
        }
        power = power.wrapping_mul(10);
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code([REDACTED])")
    }
}

impl PartialEq for Code {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        self.as_str()
            .as_bytes()
            .ct_eq(other.as_str().as_bytes())
            .into()
    }
}

impl Eq for Code {}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}
