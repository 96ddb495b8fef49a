//! `Range` requests over a file of known size (RFC 9110 section 14), as
//! nginx's range filter answers them: one range -> `206` with
//! `Content-Range`; several -> `206 multipart/byteranges` (at most
//! `max_ranges`, else the whole file); none satisfiable -> `416`; anything
//! it cannot read (another unit, bad syntax) -> the whole file. Pure.

/// What to send of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// The whole file, `200`.
    Full,
    /// `206`: these inclusive byte ranges, in the request's order.
    Partial(Vec<(u64, u64)>),
    /// `416`, with `Content-Range: bytes */SIZE`.
    Unsatisfiable,
}

/// The ranges `header` asks of a file of `size` bytes; `max_ranges` `None`
/// is unlimited, `Some(0)` turns ranges off.
pub fn ranges(header: &[u8], size: u64, max_ranges: Option<u32>) -> Ranges {
    if max_ranges == Some(0) {
        return Ranges::Full;
    }
    // As nginx's range filter: a value shorter than `bytes=` and one byte,
    // or not starting with `bytes=` in any case, is no range request.
    let spec = match header.split_at_checked(6) {
        Some((unit, spec)) if unit.eq_ignore_ascii_case(b"bytes=") && !spec.is_empty() => spec,
        _ => return Ranges::Full,
    };
    let Ok(spec) = std::str::from_utf8(spec) else {
        return Ranges::Unsatisfiable;
    };
    let mut out = Vec::new();
    for part in spec.split(',') {
        let part = part.trim_matches(' ');
        let Some((first, last)) = part.split_once('-') else {
            return Ranges::Unsatisfiable;
        };
        let (first, last) = (first.trim(), last.trim());
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let range = if first.is_empty() {
            // `-N`: the last N bytes.
            if !digits(last) {
                return Ranges::Unsatisfiable;
            }
            let Ok(n) = last.parse::<u64>() else {
                return Ranges::Unsatisfiable;
            };
            if n == 0 || size == 0 {
                None
            } else {
                Some((size.saturating_sub(n), size - 1))
            }
        } else {
            if !digits(first) || !(last.is_empty() || digits(last)) {
                return Ranges::Unsatisfiable;
            }
            let Ok(start) = first.parse::<u64>() else {
                return Ranges::Unsatisfiable;
            };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                match last.parse::<u64>() {
                    Ok(e) => e,
                    Err(_) => return Ranges::Unsatisfiable,
                }
            };
            if end < start {
                return Ranges::Unsatisfiable;
            }
            (start < size).then(|| (start, end.min(size.saturating_sub(1))))
        };
        if let Some(r) = range {
            out.push(r);
        }
    }
    if out.is_empty() {
        return Ranges::Unsatisfiable;
    }
    if max_ranges.is_some_and(|m| out.len() > m as usize) {
        return Ranges::Full;
    }
    Ranges::Partial(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_requests_as_nginx_answers_them() {
        use Ranges::*;
        let p = |v: &[(u64, u64)]| Partial(v.to_vec());
        let cases: &[(&str, u64, Option<u32>, Ranges)] = &[
            ("bytes=0-0", 10, None, p(&[(0, 0)])),
            ("bytes=0-4", 10, None, p(&[(0, 4)])),
            ("bytes=5-", 10, None, p(&[(5, 9)])),
            ("bytes=-3", 10, None, p(&[(7, 9)])),
            ("bytes=-30", 10, None, p(&[(0, 9)])),
            ("bytes=2-100", 10, None, p(&[(2, 9)])),
            ("bytes=0-1,4-5", 10, None, p(&[(0, 1), (4, 5)])),
            ("bytes=0-1, 4-5", 10, None, p(&[(0, 1), (4, 5)])),
            ("bytes=0-1, 4-5 ,", 10, None, Unsatisfiable),
            ("bytes=10-", 10, None, Unsatisfiable),
            ("bytes=10-20", 10, None, Unsatisfiable),
            ("bytes=-0", 10, None, Unsatisfiable),
            ("bytes=0-0", 0, None, Unsatisfiable),
            ("bytes=-5", 0, None, Unsatisfiable),
            ("bytes=20-30,2-3", 10, None, p(&[(2, 3)])),
            ("bytes=5-2", 10, None, Unsatisfiable),
            ("bytes=a-b", 10, None, Unsatisfiable),
            ("bytes=1", 10, None, Unsatisfiable),
            ("items=0-1", 10, None, Full),
            // Shorter than `bytes=` and one byte: no range request (nginx).
            ("bytes=", 10, None, Full),
            ("bytes", 10, None, Full),
            // The unit in any case, as nginx.
            ("Bytes=0-1", 10, None, p(&[(0, 1)])),
            ("BYTES=-2", 10, None, p(&[(8, 9)])),
            ("bytes=0-1,4-5", 10, Some(1), Full),
            ("bytes=0-1,4-5", 10, Some(2), p(&[(0, 1), (4, 5)])),
            ("bytes=0-1", 10, Some(0), Full),
            ("bytes=99999999999999999999999-", 10, None, Unsatisfiable),
            ("bytes=+1-2", 10, None, Unsatisfiable),
        ];
        for (header, size, max, want) in cases {
            assert_eq!(
                &ranges(header.as_bytes(), *size, *max),
                want,
                "{header} of {size}"
            );
        }
    }
}
