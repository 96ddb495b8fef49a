//! Decoding the sticky cookie's value per mode (insert's `SID|LAST|FIRST`,
//! rewrite's `SID`, prefix's `SID~rest`), with Tengine's checks and the
//! maxidle/maxlife expiry at `now`.

use http::HeaderMap;
use memchr::memchr;

use super::scan::*;
use super::*;
use crate::sticky::sid::SidIndex;
use crate::sticky::{Mode, StickyConf, UNLIMITED_SECS};

/// Decimal digits only, at least one; `Err(FromFuture)` when it overflows i64
/// (such a value is necessarily far in the future).
pub(super) fn parse_ts(field: &[u8]) -> Result<i64, Invalid> {
    if field.is_empty() {
        return Err(Invalid::Malformed);
    }
    // Up to 18 digits cannot overflow: one pass, checking digits as it goes.
    if field.len() <= 18 {
        let mut acc = 0i64;
        for d in field {
            let digit = d.wrapping_sub(b'0');
            if digit > 9 {
                return Err(Invalid::Malformed);
            }
            acc = acc * 10 + i64::from(digit);
        }
        return Ok(acc);
    }
    if !field.iter().all(u8::is_ascii_digit) {
        return Err(Invalid::Malformed);
    }
    field.iter().try_fold(0i64, |acc, d| {
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(i64::from(d - b'0')))
            .ok_or(Invalid::FromFuture)
    })
}

/// The usual `LASTSEEN|FIRSTSEEN`: two runs of 1 to 18 decimal digits around
/// one `|`. `None` for anything else, which the general path ([`split_at_byte`],
/// [`parse_ts`]) then classifies; where this returns values they are the ones
/// that path parses.
pub(super) fn parse_stamps(stamps: &[u8]) -> Option<(i64, i64)> {
    let (last, first) = split_at_byte(stamps, b'|')?;
    Some((parse_digits(last)?, parse_digits(first)?))
}

/// 1 to 18 decimal digits (no overflow possible), eight at a time; `None` for
/// anything else.
pub(super) fn parse_digits(field: &[u8]) -> Option<i64> {
    if field.is_empty() || field.len() > 18 {
        return None;
    }
    let mut acc = 0u64;
    let mut chunks = field.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        acc = acc * 100_000_000 + parse8(u64::from_le_bytes(word))?;
    }
    for d in chunks.remainder() {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        acc = acc * 10 + u64::from(digit);
    }
    i64::try_from(acc).ok()
}

/// Eight ASCII digits (first digit in the lowest byte) as a number, SWAR; `None`
/// unless every byte is `0`..=`9`.
pub(super) fn parse8(word: u64) -> Option<u64> {
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    // Each byte 0x30..=0x39: high nibble 3, and adding 6 does not carry into it.
    let digits = (word & HIGH) | ((word.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4);
    if digits != 0x3333_3333_3333_3333 {
        return None;
    }
    let v = word - 0x3030_3030_3030_3030;
    // Pairs of digits, then pairs of pairs, then the two halves.
    let v = (v * 10 + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = (v * 100 + (v >> 16)) & 0x0000_ffff_0000_ffff;
    Some((v * 10_000 + (v >> 32)) & 0xffff_ffff)
}

pub(super) fn sid_str(sid: &[u8]) -> Result<&str, Invalid> {
    if sid.is_empty() {
        return Err(Invalid::EmptySid);
    }
    std::str::from_utf8(sid).map_err(|_| Invalid::Malformed)
}

/// The parts before and after the first `byte`.
pub(super) fn split_at_byte(value: &[u8], byte: u8) -> Option<(&[u8], &[u8])> {
    let i = memchr(byte, value)?;
    Some((value.get(..i)?, value.get(i + 1..)?))
}

pub(super) fn decode_timestamped<'v, 's>(
    conf: &StickyConf,
    value: &'v [u8],
    now: i64,
    sid_check: impl FnOnce(&'v [u8]) -> Result<&'s str, Invalid>,
) -> Result<(&'s str, i64), Invalid> {
    // Exactly three `|`-separated fields.
    let (sid, stamps) = split_at_byte(value, b'|').ok_or(Invalid::Malformed)?;
    let (last, first) = match parse_stamps(stamps) {
        Some(both) => both,
        None => {
            let (last, first) = split_at_byte(stamps, b'|').ok_or(Invalid::Malformed)?;
            if memchr(b'|', first).is_some() {
                return Err(Invalid::Malformed);
            }
            (parse_ts(last)?, parse_ts(first)?)
        }
    };
    let sid = sid_check(sid)?;
    // i128: no overflow whatever `now` and the (non-negative) timestamps are.
    let (now, last_w, first_w) = (i128::from(now), i128::from(last), i128::from(first));
    let future = i128::from(MAX_FUTURE_SECS);
    if last_w - now > future || first_w - now > future {
        return Err(Invalid::FromFuture);
    }
    let maxidle = i128::from(conf.maxidle.unwrap_or(UNLIMITED_SECS));
    let maxlife = i128::from(conf.maxlife.unwrap_or(UNLIMITED_SECS));
    if now - last_w > maxidle {
        return Err(Invalid::IdleExpired);
    }
    if now - first_w > maxlife {
        return Err(Invalid::LifeExpired);
    }
    Ok((sid, first))
}

/// Decode and classify one sticky cookie value (quotes already removed) per
/// `conf.mode`, at time `now` (Unix seconds).
pub fn decode<'a>(conf: &StickyConf, value: &'a [u8], now: i64) -> StickyCookie<'a> {
    decode_with(conf, value, now, sid_str)
}

/// [`decode`], with the sid of a known peer taken from `index` instead of being
/// UTF-8-checked again: a sid equal to one in the index is valid UTF-8 (and
/// non-empty, which is checked first), so the result is the same.
/// Also returns the peer index found for the sid, if any (what
/// `index.lookup(sid)` returns for a valid cookie's sid).
pub(crate) fn decode_indexed<'s>(
    conf: &StickyConf,
    value: &'s [u8],
    index: &'s SidIndex,
    now: i64,
) -> (StickyCookie<'s>, Option<usize>) {
    let mut peer = None;
    let cookie = decode_with(conf, value, now, |raw| {
        if !raw.is_empty() {
            if let Some((i, sid)) = index
                .lookup_bytes(raw)
                .and_then(|i| index.sid(i).map(|sid| (i, sid)))
            {
                peer = Some(i);
                return Ok(sid);
            }
        }
        sid_str(raw)
    });
    (cookie, peer)
}

/// [`decode`] with `sid_check` turning the raw sid into a `&str` (or the reason
/// it is invalid), at the point of the checks where [`sid_str`] runs.
pub(super) fn decode_with<'v, 's>(
    conf: &StickyConf,
    value: &'v [u8],
    now: i64,
    sid_check: impl FnOnce(&'v [u8]) -> Result<&'s str, Invalid>,
) -> StickyCookie<'s> {
    // sign=on (insert mode only): `BODY|MAC`, the MAC checked first.
    let (value, renew) = if conf.sign {
        match verify(conf, value) {
            Ok(signed) => signed,
            Err(why) => return StickyCookie::Invalid(why),
        }
    } else {
        (value, false)
    };
    let result = match conf.mode {
        Mode::Insert if conf.timestamps() => {
            decode_timestamped(conf, value, now, sid_check).map(|(sid, first)| (sid, Some(first)))
        }
        Mode::Insert | Mode::Rewrite => sid_check(value).map(|sid| (sid, None)),
        Mode::Prefix => match memchr(b'~', value) {
            None => return StickyCookie::Absent,
            Some(t) => sid_check(value.get(..t).unwrap_or_default()).map(|sid| (sid, None)),
        },
    };
    match result {
        Ok((sid, firstseen)) => StickyCookie::Valid {
            sid,
            firstseen,
            renew,
        },
        Err(why) => StickyCookie::Invalid(why),
    }
}

/// `BODY|MAC` -> `BODY`, and whether a key other than the first signed it;
/// [`Invalid::Forged`] when there is no `|` or no key made the MAC.
fn verify<'v>(conf: &StickyConf, value: &'v [u8]) -> Result<(&'v [u8], bool), Invalid> {
    let bar = memchr::memrchr(b'|', value).ok_or(Invalid::Forged)?;
    let (body, mac) = (value.get(..bar), value.get(bar + 1..));
    let (Some(body), Some(mac)) = (body, mac) else {
        return Err(Invalid::Forged);
    };
    match conf.keys.verify(body, mac) {
        Some(key) => Ok((body, key > 0)),
        None => Err(Invalid::Forged),
    }
}

/// Find and decode the sticky cookie of a request.
pub fn read<'a>(conf: &StickyConf, headers: &'a HeaderMap, now: i64) -> StickyCookie<'a> {
    match find(headers, &conf.cookie) {
        None => StickyCookie::Absent,
        Some(value) => decode(conf, value, now),
    }
}
