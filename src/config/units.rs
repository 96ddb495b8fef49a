//! nginx value units: time (`500ms`, `10s`, `1m30s`, bare = seconds) and size
//! (`512`, `8k`, `1m`, `1g`). Pure string -> number conversions, overflow-checked;
//! the builder turns an `Err` into nginx's `"NAME" directive invalid value`.

use std::time::Duration;

/// Parses an nginx time value. Units, largest first: `y` (365 days), `M` (30 days),
/// `w`, `d`, `h`, `m`, `s`, `ms`; each may appear once and in decreasing order
/// (`1h30m`, `1m30s`); a trailing bare number is seconds (`1m30` is 90 s), and a bare
/// number alone is seconds.
pub fn parse_time(s: &str) -> Result<Duration, String> {
    if s.is_empty() {
        return Err("empty time value".to_string());
    }
    let bytes = s.as_bytes();
    let mut total_ms: u64 = 0;
    let mut i = 0;
    // Rank of the last unit used; units must strictly decrease.
    let mut last_rank = usize::MAX;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!("invalid time value \"{s}\""));
        }
        let number: u64 = s[start..i]
            .parse()
            .map_err(|_| format!("time value \"{s}\" is too large"))?;
        let (rank, unit_ms, len) = match (bytes.get(i), bytes.get(i + 1)) {
            (None, _) => (0, 1000, 0),
            (Some(b'm'), Some(b's')) => (0, 1, 2),
            (Some(b'y'), _) => (8, 365 * 86_400_000, 1),
            (Some(b'M'), _) => (7, 30 * 86_400_000, 1),
            (Some(b'w'), _) => (6, 7 * 86_400_000, 1),
            (Some(b'd'), _) => (5, 86_400_000, 1),
            (Some(b'h'), _) => (4, 3_600_000, 1),
            (Some(b'm'), _) => (3, 60_000, 1),
            (Some(b's'), _) => (2, 1000, 1),
            (Some(_), _) => return Err(format!("invalid time value \"{s}\"")),
        };
        // A bare trailing number counts as seconds but only after a larger unit.
        let rank = if len == 0 { 1 } else { rank };
        if rank >= last_rank {
            return Err(format!("invalid time value \"{s}\""));
        }
        last_rank = rank;
        i += len;
        let part = number
            .checked_mul(unit_ms)
            .ok_or_else(|| format!("time value \"{s}\" is too large"))?;
        total_ms = total_ms
            .checked_add(part)
            .ok_or_else(|| format!("time value \"{s}\" is too large"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Parses a time value that must be whole seconds (no sub-second remainder), as
/// `session_sticky` needs; returns the seconds.
pub fn parse_seconds(s: &str) -> Result<i64, String> {
    let d = parse_time(s)?;
    if d.subsec_millis() != 0 {
        return Err(format!(
            "time value \"{s}\" is not a whole number of seconds"
        ));
    }
    i64::try_from(d.as_secs()).map_err(|_| format!("time value \"{s}\" is too large"))
}

/// Parses an nginx size: a number of bytes with an optional `k`/`K` (KiB), `m`/`M`
/// (MiB) or `g`/`G` (GiB) suffix.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, scale) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1u64 << 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 1u64 << 30),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid size value \"{s}\""));
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("size value \"{s}\" is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_values_follow_nginx_units() {
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("10", 10_000),
            ("500ms", 500),
            ("10s", 10_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("1d", 86_400_000),
            ("1w", 604_800_000),
            ("1M", 2_592_000_000),
            ("1y", 31_536_000_000),
            ("1m30s", 90_000),
            ("1m30", 90_000),
            ("1h1m1s1ms", 3_661_001),
            ("2d12h", 216_000_000),
        ];
        for (text, ms) in ok {
            assert_eq!(parse_time(text), Ok(Duration::from_millis(*ms)), "{text}");
        }
    }

    #[test]
    fn bad_time_values_are_rejected() {
        for text in [
            "",
            "10x",
            "s",
            "ms",
            "1s1m",
            "1m1m",
            "1ss",
            "-1",
            "1.5s",
            " 1",
            "1 s",
            "99999999999999999999",
            "18446744073709551615s",
            "9999999999999999y",
        ] {
            assert!(parse_time(text).is_err(), "{text:?} should fail");
        }
    }

    #[test]
    fn whole_seconds_only_for_sticky_times() {
        assert_eq!(parse_seconds("3600"), Ok(3600));
        assert_eq!(parse_seconds("1h"), Ok(3600));
        assert_eq!(parse_seconds("1500ms").map_err(|_| ()), Err(()));
        assert!(parse_seconds("abc").is_err());
    }

    #[test]
    fn size_values_follow_nginx_units() {
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("512", 512),
            ("8k", 8192),
            ("8K", 8192),
            ("1m", 1 << 20),
            ("1M", 1 << 20),
            ("1g", 1 << 30),
            ("10G", 10 << 30),
        ];
        for (text, n) in ok {
            assert_eq!(parse_size(text), Ok(*n), "{text}");
        }
        for text in [
            "",
            "k",
            "10x",
            "1kb",
            "-1",
            "1.5m",
            "99999999999999999999",
            "17179869184g",
        ] {
            assert!(parse_size(text).is_err(), "{text:?} should fail");
        }
    }
}
