//! Header-field pieces every HTTP/1 head shares, whichever side it is on:
//! where a parsed head's header lines lie in the received bytes, numbers as
//! HTTP writes them, and the tokens of a `Connection` header.

use std::ops::Range;

use bytes::{Buf, Bytes};

/// Start and end of a header line's name and value within a head.
type Span = [u32; 4];

/// The name and value ranges of a head's header lines, found while `httparse`
/// borrows the buffer, so the head can then be cut off the buffer and its
/// values share those bytes. The first `N` lines are kept without
/// allocating. Offsets are `u32`: heads are limited far below 4 GiB.
#[derive(Debug)]
pub struct HeaderSpans<const N: usize> {
    inline: [Span; N],
    more: Vec<Span>,
    count: usize,
}

impl<const N: usize> HeaderSpans<N> {
    /// The spans of `headers`, which lie in `buf`.
    pub fn of(buf: &[u8], headers: &[httparse::Header<'_>]) -> Self {
        let base = buf.as_ptr() as usize;
        let offset = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        let mut spans = HeaderSpans {
            inline: [[0; 4]; N],
            more: Vec::new(),
            count: headers.len(),
        };
        for (i, h) in headers.iter().enumerate() {
            let (n, v) = (offset(h.name.as_bytes()), offset(h.value));
            let span = [n, n + h.name.len() as u32, v, v + h.value.len() as u32];
            match spans.inline.get_mut(i) {
                Some(slot) => *slot = span,
                None => spans.more.push(span),
            }
        }
        spans
    }

    /// How many header lines.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Name and value ranges of each header line, within the head.
    pub fn iter(&self) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + '_ {
        let inline = self.inline.get(..self.count.min(N)).unwrap_or_default();
        inline.iter().chain(self.more.iter()).map(|s| {
            let [a, b, c, d] = s.map(|x| x as usize);
            (a..b, c..d)
        })
    }
}

/// The bytes of `head` at `range` (a header value's), shared. An empty value
/// keeps its place in `head` too (`Bytes::slice` would give a detached empty
/// one), so the name before it can be found ([`crate::http1::names`]).
pub fn shared_value(head: &Bytes, range: Range<usize>) -> Bytes {
    if range.is_empty() {
        empty_at(head, range.start)
    } else {
        head.slice(range)
    }
}

/// An empty value at `at` in `head` (rare: kept off the common path).
#[cold]
fn empty_at(head: &Bytes, at: usize) -> Bytes {
    match at.checked_sub(1) {
        Some(before) => {
            let mut value = head.slice(before..at);
            value.advance(1);
            value
        }
        None => Bytes::new(),
    }
}

/// A non-empty run of ASCII digits that fits in a u64.
pub fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// One token of a `Connection` header value (RFC 9110 7.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionToken<'a> {
    Close,
    KeepAlive,
    Upgrade,
    /// Any other token: the name of a header that is hop-by-hop for this
    /// message (if it is a header name at all).
    Named(&'a [u8]),
}

/// The non-empty tokens of a `Connection` header value, case-insensitive,
/// whitespace around them trimmed.
pub fn connection_tokens(value: &[u8]) -> impl Iterator<Item = ConnectionToken<'_>> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .map(|t| {
            if t.eq_ignore_ascii_case(b"close") {
                ConnectionToken::Close
            } else if t.eq_ignore_ascii_case(b"keep-alive") {
                ConnectionToken::KeepAlive
            } else if t.eq_ignore_ascii_case(b"upgrade") {
                ConnectionToken::Upgrade
            } else {
                ConnectionToken::Named(t)
            }
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn connection_tokens_table() {
        use ConnectionToken::*;
        let cases: &[(&[u8], &[ConnectionToken<'_>])] = &[
            (b"keep-alive", &[KeepAlive]),
            (b"Close", &[Close]),
            (b" Upgrade , X-Hop", &[Upgrade, Named(b"X-Hop")]),
            (b",, bad name ,", &[Named(b"bad name")]),
            (b"", &[]),
            (b"close,keep-alive,TE", &[Close, KeepAlive, Named(b"TE")]),
        ];
        for (value, want) in cases {
            let got: Vec<_> = connection_tokens(value).collect();
            assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(value));
        }
    }

    #[test]
    fn spans_point_at_names_and_values_inline_and_beyond() {
        let raw = b"GET / HTTP/1.1\r\nA: 1\r\nBb: 22\r\nCcc: 333\r\n\r\n";
        let mut slots = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut slots);
        assert!(req.parse(raw).unwrap().is_complete());
        // Two inline, the third in the overflow.
        let spans = HeaderSpans::<2>::of(raw, req.headers);
        assert_eq!(spans.len(), 3);
        let lines: Vec<(&[u8], &[u8])> = spans.iter().map(|(n, v)| (&raw[n], &raw[v])).collect();
        assert_eq!(
            lines,
            [(&b"A"[..], &b"1"[..]), (b"Bb", b"22"), (b"Ccc", b"333")]
        );
    }

    #[test]
    fn shared_values_stay_in_place_even_when_empty() {
        let head = Bytes::from_static(b"A: 1\r\nB:\r\n\r\n");
        let at = |b: &Bytes| b.as_ptr() as usize - head.as_ptr() as usize;
        let one = shared_value(&head, 3..4);
        assert_eq!((&one[..], at(&one)), (&b"1"[..], 3));
        let empty = shared_value(&head, 8..8);
        assert_eq!((empty.len(), at(&empty)), (0, 8));
        assert!(shared_value(&head, 0..0).is_empty());
    }

    #[test]
    fn decimals_are_plain_digits_that_fit() {
        let cases: [(&[u8], Option<u64>); 7] = [
            (b"0", Some(0)),
            (b"123", Some(123)),
            (b"18446744073709551615", None),
            (b"9999999999999999999", Some(9_999_999_999_999_999_999)),
            (b"", None),
            (b"+1", None),
            (b"1 ", None),
        ];
        for (digits, want) in cases {
            assert_eq!(parse_decimal(digits), want, "{digits:?}");
        }
    }
}
