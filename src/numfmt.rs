//! Integers as text, formatted in one place: decimal on the stack (header
//! values, cookie timestamps, log variables) and hex (chunk sizes). Pure.

/// Decimal text of an integer, formatted on the stack (no `fmt` machinery:
/// it is on every response).
pub struct Decimal {
    buf: [u8; 20],
    start: usize,
}

/// `00`, `01`, ..., `99`: two digits per division.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

impl Decimal {
    /// The text of `n`.
    pub fn new(n: i64) -> Decimal {
        Decimal::signed(n.unsigned_abs(), n < 0)
    }

    /// The text of `n`.
    pub fn unsigned(n: u64) -> Decimal {
        Decimal::signed(n, false)
    }

    fn signed(magnitude: u64, negative: bool) -> Decimal {
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        let mut v = magnitude;
        // Two digits at a time from the right; u64::MAX has 20 digits, so
        // `start` never goes below 0 (`checked_sub` only to stay panic-free).
        while v >= 100 {
            // `v % 100 < 100`, so the cast cannot truncate.
            let pair = (v % 100) as usize * 2;
            v /= 100;
            let Some(at) = start.checked_sub(2) else {
                break;
            };
            if let (Some(slot), Some(digits)) =
                (buf.get_mut(at..start), DIGIT_PAIRS.get(pair..pair + 2))
            {
                slot.copy_from_slice(digits);
            }
            start = at;
        }
        // `v < 100` here.
        let v = v as usize;
        if v >= 10 {
            if let (Some(at), Some(digits)) =
                (start.checked_sub(2), DIGIT_PAIRS.get(v * 2..v * 2 + 2))
            {
                if let Some(slot) = buf.get_mut(at..start) {
                    slot.copy_from_slice(digits);
                    start = at;
                }
            }
        } else if let Some(at) = start.checked_sub(1) {
            if let Some(slot) = buf.get_mut(at) {
                // `v < 10`, so the cast cannot truncate.
                *slot = b'0' + v as u8;
                start = at;
            }
        }
        // |i64::MIN| has 19 digits: there is always room for the sign.
        if negative {
            if let Some(slot) = start.checked_sub(1).and_then(|i| buf.get_mut(i)) {
                *slot = b'-';
                start -= 1;
            }
        }
        Decimal { buf, start }
    }

    /// The digits (and sign).
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

/// Appends `n` in decimal.
pub fn write_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(Decimal::unsigned(n).as_bytes());
}

/// Appends `n` in lower-case hex.
pub fn write_hex(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        if let (Some(slot), Some(d)) = (
            digits.get_mut(at),
            b"0123456789abcdef".get((n & 15) as usize),
        ) {
            *slot = *d;
        }
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_written_as_std_writes_them() {
        for n in [
            0i64,
            7,
            9,
            10,
            99,
            100,
            101,
            4096,
            1_000_000_007,
            i64::MAX,
            -1,
            -10,
            i64::MIN,
        ] {
            assert_eq!(Decimal::new(n).as_bytes(), n.to_string().as_bytes(), "{n}");
        }
        for n in [0u64, 7, 10, 255, 4096, 1_000_000_007, u64::MAX] {
            let mut out = Vec::new();
            write_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
            let mut out = Vec::new();
            write_hex(&mut out, n);
            assert_eq!(out, format!("{n:x}").as_bytes());
        }
    }
}
