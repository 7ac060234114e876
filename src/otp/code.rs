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
    pub(crate) fn new(value: u64, digits: Digits) -> Self {
        let mut buf = [b'0'; 10];
        let len = digits.get() as usize;
        let mut v = value;
        for slot in buf[..len].iter_mut().rev() {
            // v % 10 < 10: the cast cannot truncate.
            #[allow(clippy::cast_possible_truncation)]
            {
                *slot = b'0' + (v % 10) as u8;
            }
            v /= 10;
        }
        #[allow(clippy::cast_possible_truncation)]
        Self {
            buf,
            len: len as u8,
        }
    }

    /// The code as a string of digits, e.g. `"094287"`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written.
        core::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
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
