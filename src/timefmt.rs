//! Every date and time the proxy writes as text, in one place: the HTTP `Date`
//! header and cookie `Expires` (IMF-fixdate), the access-log variables
//! `$time_local`, `$time_iso8601` and `$msec`, and the error-log timestamp.
//!
//! Pure: the instant is an argument (nothing here reads the clock), and every
//! formatter returns a [`Stamp`], the text on the stack, so a hot path formats
//! without allocating. All times are UTC (as the proxy's `+0000` says); instants
//! before 1970 print as the epoch.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second an IMF-fixdate can show (`Fri, 31 Dec 9999 23:59:59 GMT`);
/// later instants print as this one.
pub const MAX_HTTP_DATE_SECS: i64 = 253_402_300_799;

/// Formatted date text, held on the stack (at most [`Stamp::CAPACITY`] ASCII
/// bytes, enough for any `SystemTime`).
#[derive(Clone, Copy)]
pub struct Stamp {
    buf: [u8; Stamp::CAPACITY],
    len: usize,
}

impl Stamp {
    /// Bytes a stamp can hold: the longest text is `$time_local` of the last
    /// representable `SystemTime` (a 12-digit year), 34 bytes.
    pub const CAPACITY: usize = 40;

    fn format(args: fmt::Arguments<'_>) -> Stamp {
        let mut stamp = Stamp {
            buf: [0; Stamp::CAPACITY],
            len: 0,
        };
        // Cannot fail: every format here fits CAPACITY (checked by the tests).
        let _ = fmt::Write::write_fmt(&mut stamp, args);
        stamp
    }

    /// The text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl Stamp {
    /// Appends `text` (never past the capacity).
    fn push(&mut self, text: &[u8]) {
        let end = self.len + text.len();
        if let Some(slot) = self.buf.get_mut(self.len..end) {
            slot.copy_from_slice(text);
            self.len = end;
        }
    }

    /// Appends the last `width` decimal digits of `n`, zero-padded.
    fn push_digits(&mut self, mut n: u32, width: usize) {
        let end = self.len + width;
        if let Some(slot) = self.buf.get_mut(self.len..end) {
            for d in slot.iter_mut().rev() {
                // `n % 10 < 10`: the cast cannot truncate.
                *d = b'0' + (n % 10) as u8;
                n /= 10;
            }
            self.len = end;
        }
    }
}

impl fmt::Write for Stamp {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<&str> for Stamp {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A UTC calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 is Sunday.
    pub weekday: u32,
}

/// Whole seconds since the epoch (instants before 1970 are the epoch).
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `t` as UTC calendar fields (times before 1970 clamp to the epoch).
pub fn civil(t: SystemTime) -> Civil {
    civil_from_secs(unix_secs(t))
}

fn civil_from_secs(secs: u64) -> Civil {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem / 60 % 60) as u32,
        second: (rem % 60) as u32,
        // 1970-01-01 was a Thursday.
        weekday: ((days + 4) % 7) as u32,
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

impl Civil {
    pub fn month_name(&self) -> &'static str {
        MONTHS
            .get(self.month.saturating_sub(1) as usize)
            .copied()
            .unwrap_or("Jan")
    }

    fn weekday_name(&self) -> &'static str {
        WEEKDAYS
            .get(self.weekday as usize)
            .copied()
            .unwrap_or("Thu")
    }
}

/// IMF-fixdate (RFC 9110 5.6.7), for the `Date` header and cookie `Expires`:
/// `Sun, 06 Nov 1994 08:49:37 GMT`. Instants after 9999 print as
/// [`MAX_HTTP_DATE_SECS`].
pub fn http_date(t: SystemTime) -> Stamp {
    http_date_unix(i64::try_from(unix_secs(t)).unwrap_or(i64::MAX))
}

/// [`http_date`] of `unix_secs` seconds since the epoch, clamped to
/// `0..=`[`MAX_HTTP_DATE_SECS`] (for callers that count time in seconds).
pub fn http_date_unix(unix_secs: i64) -> Stamp {
    let secs = unix_secs.clamp(0, MAX_HTTP_DATE_SECS).unsigned_abs();
    let c = civil_from_secs(secs);
    // Written digit by digit, not through `fmt` (a file's `Last-Modified`
    // is formatted per response): the year is 1970..=9999 here.
    let mut stamp = Stamp {
        buf: [0; Stamp::CAPACITY],
        len: 0,
    };
    stamp.push(c.weekday_name().as_bytes());
    stamp.push(b", ");
    stamp.push_digits(c.day, 2);
    stamp.push(b" ");
    stamp.push(c.month_name().as_bytes());
    stamp.push(b" ");
    stamp.push_digits(u32::try_from(c.year).unwrap_or(9999), 4);
    stamp.push(b" ");
    stamp.push_digits(c.hour, 2);
    stamp.push(b":");
    stamp.push_digits(c.minute, 2);
    stamp.push(b":");
    stamp.push_digits(c.second, 2);
    stamp.push(b" GMT");
    stamp
}

/// `$time_local`: `22/Nov/2026:04:20:42 +0000` (always UTC).
pub fn time_local(t: SystemTime) -> Stamp {
    let c = civil(t);
    Stamp::format(format_args!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        c.day,
        c.month_name(),
        c.year,
        c.hour,
        c.minute,
        c.second
    ))
}

/// `$time_iso8601`: `2026-11-22T04:20:42+00:00` (always UTC).
pub fn time_iso8601(t: SystemTime) -> Stamp {
    let c = civil(t);
    Stamp::format(format_args!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    ))
}

/// `$msec`: seconds since the epoch with milliseconds, `1795321242.123`.
pub fn msec(t: SystemTime) -> Stamp {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    Stamp::format(format_args!(
        "{}.{:03}",
        since.as_secs(),
        since.subsec_millis()
    ))
}

/// A syslog header's time (RFC 3164, nginx's `ngx_cached_syslog_time`):
/// `Dec  5 04:51:13`, the day space-padded (UTC).
pub fn syslog(t: SystemTime) -> Stamp {
    let c = civil(t);
    Stamp::format(format_args!(
        "{} {:>2} {:02}:{:02}:{:02}",
        c.month_name(),
        c.day,
        c.hour,
        c.minute,
        c.second
    ))
}

/// The error log's timestamp, as nginx writes it: `2026/11/22 04:20:42` (UTC).
pub fn error_log(t: SystemTime) -> Stamp {
    let c = civil(t);
    Stamp::format(format_args!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn every_format_at_fixed_instants() {
        // (instant, IMF-fixdate, $time_local, $time_iso8601, error log)
        let cases = [
            (
                0,
                "Thu, 01 Jan 1970 00:00:00 GMT",
                "01/Jan/1970:00:00:00 +0000",
                "1970-01-01T00:00:00+00:00",
                "1970/01/01 00:00:00",
            ),
            (
                784_111_777,
                "Sun, 06 Nov 1994 08:49:37 GMT",
                "06/Nov/1994:08:49:37 +0000",
                "1994-11-06T08:49:37+00:00",
                "1994/11/06 08:49:37",
            ),
            (
                951_782_400,
                "Tue, 29 Feb 2000 00:00:00 GMT",
                "29/Feb/2000:00:00:00 +0000",
                "2000-02-29T00:00:00+00:00",
                "2000/02/29 00:00:00",
            ),
            (
                1_571_297_169,
                "Thu, 17 Oct 2019 07:26:09 GMT",
                "17/Oct/2019:07:26:09 +0000",
                "2019-10-17T07:26:09+00:00",
                "2019/10/17 07:26:09",
            ),
            (
                1_709_251_199,
                "Thu, 29 Feb 2024 23:59:59 GMT",
                "29/Feb/2024:23:59:59 +0000",
                "2024-02-29T23:59:59+00:00",
                "2024/02/29 23:59:59",
            ),
            (
                1_795_321_242,
                "Sun, 22 Nov 2026 04:20:42 GMT",
                "22/Nov/2026:04:20:42 +0000",
                "2026-11-22T04:20:42+00:00",
                "2026/11/22 04:20:42",
            ),
            (
                4_102_444_800,
                "Fri, 01 Jan 2100 00:00:00 GMT",
                "01/Jan/2100:00:00:00 +0000",
                "2100-01-01T00:00:00+00:00",
                "2100/01/01 00:00:00",
            ),
            (
                253_402_300_799,
                "Fri, 31 Dec 9999 23:59:59 GMT",
                "31/Dec/9999:23:59:59 +0000",
                "9999-12-31T23:59:59+00:00",
                "9999/12/31 23:59:59",
            ),
        ];
        for (secs, http, local, iso, error) in cases {
            let t = at(secs);
            assert_eq!(http_date(t), http, "{secs}");
            assert_eq!(http_date_unix(secs as i64), http, "{secs}");
            assert_eq!(time_local(t), local, "{secs}");
            assert_eq!(time_iso8601(t), iso, "{secs}");
            assert_eq!(error_log(t), error, "{secs}");
        }
    }

    #[test]
    fn msec_table() {
        let cases = [
            (0, "0.000"),
            (1, "0.001"),
            (1_795_321_242_123, "1795321242.123"),
            (1_795_321_243_500, "1795321243.500"),
        ];
        for (millis, want) in cases {
            assert_eq!(
                msec(UNIX_EPOCH + Duration::from_millis(millis)),
                want,
                "{millis}"
            );
        }
    }

    #[test]
    fn http_dates_clamp_to_the_representable_range() {
        let cases = [
            (i64::MIN, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (-1_571_297_179, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (MAX_HTTP_DATE_SECS + 1, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (i64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (secs, want) in cases {
            assert_eq!(http_date_unix(secs), want, "{secs}");
        }
        assert_eq!(http_date(at(u64::MAX / 2)), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn instants_before_1970_are_the_epoch() {
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(http_date(before), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(time_local(before), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(msec(before), "0.000");
    }

    #[test]
    fn the_far_future_fits_a_stamp() {
        // The last second a SystemTime can hold here: every format is whole.
        let mut last = UNIX_EPOCH;
        for step in (0..64).rev() {
            if let Some(t) = last.checked_add(Duration::from_secs(1 << step)) {
                last = t;
            }
        }
        let c = civil(last);
        let year = c.year.to_string();
        assert!(time_local(last).as_str().ends_with(" +0000"));
        assert!(time_local(last).as_str().contains(&format!("/{year}:")));
        assert!(time_iso8601(last).as_str().starts_with(&format!("{year}-")));
        assert!(time_iso8601(last).as_str().ends_with("+00:00"));
        assert!(error_log(last).as_str().starts_with(&format!("{year}/")));
        let secs = last.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(msec(last).as_str(), format!("{secs}.000"));
    }

    /// The hand-written IMF-fixdate against the `httpdate` crate, over a sweep
    /// of instants (every day boundary of a few leap cycles, and odd seconds).
    #[test]
    fn http_date_matches_the_httpdate_crate() {
        let mut secs: u64 = 0;
        while secs <= MAX_HTTP_DATE_SECS as u64 {
            for offset in [0, 1, 59, 3_599, 86_399] {
                let s = (secs + offset).min(MAX_HTTP_DATE_SECS as u64);
                let want = httpdate::fmt_http_date(at(s));
                assert_eq!(http_date(at(s)).as_str(), want, "{s}");
            }
            secs += 86_400 * 37 + 12_345;
        }
    }
}
