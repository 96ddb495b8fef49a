//! Request side of session_sticky (spec section 4): find the sticky cookie across
//! all `Cookie` headers by exact name, decode and classify it per mode
//! ([`StickyCookie`]), and produce the `Cookie` header(s) forwarded to the backend
//! ([`strip`]: pair removed under insert+indirect, `SID~` removed under prefix).
//!
//! Everything works on header bytes and borrows from them: the hit path does not
//! allocate. Headers are only rebuilt when something must be removed.
//! `scan` finds cookies, `decode` reads the sticky value, `strip` edits what
//! goes to the backend.

mod decode;
mod scan;
mod strip;

pub(crate) use decode::decode_indexed;
pub use decode::{decode, read};
pub use scan::{find, find_in_value, find_in_value_ignore_case};
pub use strip::{scan_value, scan_value_general, strip, strip_value, strips, Stripped};

/// A timestamp more than this many seconds after `now` makes the cookie invalid.
pub const MAX_FUTURE_SECS: i64 = 86_400;

/// Why a sticky cookie was rejected. An invalid cookie is treated exactly as an
/// absent one (a new session), and it is still stripped before forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Wrong form: not exactly three `|` fields, a timestamp that is not decimal
    /// digits only, or a sid that is not UTF-8.
    Malformed,
    /// The sid part is empty.
    EmptySid,
    /// `now - LASTSEEN > maxidle`.
    IdleExpired,
    /// `now - FIRSTSEEN > maxlife`.
    LifeExpired,
    /// A timestamp more than [`MAX_FUTURE_SECS`] after `now` (or too big to parse).
    FromFuture,
    /// Ours, `sign=on`: the MAC is missing or no key made it (logged as
    /// `forged`). Checked before anything else in the value.
    Forged,
}

impl Invalid {
    /// Idle- or life-expired (logged as `expired`, not `new`).
    pub fn is_expired(self) -> bool {
        matches!(self, Invalid::IdleExpired | Invalid::LifeExpired)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::Malformed => "malformed",
            Invalid::EmptySid => "empty sid",
            Invalid::IdleExpired => "idle expired",
            Invalid::LifeExpired => "life expired",
            Invalid::FromFuture => "from the future",
            Invalid::Forged => "forged",
        }
    }
}

/// The decoded sticky cookie of one request; borrows the sid from the headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickyCookie<'a> {
    /// No cookie of that name (or, in prefix mode, a value without `~`).
    Absent,
    Invalid(Invalid),
    Valid {
        sid: &'a str,
        /// FIRSTSEEN of a timestamped insert cookie, to be kept on refresh.
        firstseen: Option<i64>,
        /// Ours, `sign=on`: signed by a key other than the first; the
        /// response signs it again with the first (key rotation).
        renew: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::decode::*;
    use super::scan::*;
    use super::strip::*;
    use super::*;
    use crate::sticky::sid::SidIndex;
    use crate::sticky::{Hash, Mode, StickyConf};

    use http::header::COOKIE;
    use http::{HeaderMap, HeaderValue};

    const NOW: i64 = 1_571_297_169;
    const SID: &str = "fe12736d0ef927f9224a3336b65ee84b";

    fn conf(mode: Mode) -> StickyConf {
        StickyConf {
            mode,
            ..StickyConf::default()
        }
    }

    fn timestamped() -> StickyConf {
        StickyConf {
            maxidle: Some(30),
            maxlife: Some(3600),
            ..StickyConf::default()
        }
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_str(v).expect("valid test header"));
        }
        h
    }

    fn valid(sid: &str, firstseen: Option<i64>) -> StickyCookie<'_> {
        StickyCookie::Valid {
            sid,
            firstseen,
            renew: false,
        }
    }

    #[test]
    fn timestamped_cookie_boundaries() {
        let c = timestamped();
        let s = |last: i64, first: i64| format!("{SID}|{last}|{first}");
        let cases: Vec<(&str, String, StickyCookie<'_>)> = vec![
            ("fresh", s(NOW, NOW), valid(SID, Some(NOW))),
            (
                "idle_exactly_maxidle_is_valid",
                s(NOW - 30, NOW - 30),
                valid(SID, Some(NOW - 30)),
            ),
            (
                "idle_one_past_maxidle_is_expired",
                s(NOW - 31, NOW - 31),
                StickyCookie::Invalid(Invalid::IdleExpired),
            ),
            (
                "life_exactly_maxlife_is_valid",
                s(NOW, NOW - 3600),
                valid(SID, Some(NOW - 3600)),
            ),
            (
                "life_one_past_maxlife_is_expired",
                s(NOW, NOW - 3601),
                StickyCookie::Invalid(Invalid::LifeExpired),
            ),
            (
                "lastseen_86400_in_future_is_valid",
                s(NOW + 86_400, NOW),
                valid(SID, Some(NOW)),
            ),
            (
                "lastseen_86401_in_future_is_invalid",
                s(NOW + 86_401, NOW),
                StickyCookie::Invalid(Invalid::FromFuture),
            ),
            (
                "firstseen_86400_in_future_is_valid",
                s(NOW, NOW + 86_400),
                valid(SID, Some(NOW + 86_400)),
            ),
            (
                "firstseen_86401_in_future_is_invalid",
                s(NOW, NOW + 86_401),
                StickyCookie::Invalid(Invalid::FromFuture),
            ),
            (
                "twenty_digit_timestamp_overflowing_is_future",
                format!("{SID}|99999999999999999999|{NOW}"),
                StickyCookie::Invalid(Invalid::FromFuture),
            ),
            (
                "twenty_digit_firstseen_overflowing_is_future",
                format!("{SID}|{NOW}|18446744073709551616"),
                StickyCookie::Invalid(Invalid::FromFuture),
            ),
            (
                "i64_max_timestamp_is_future",
                format!("{SID}|9223372036854775807|{NOW}"),
                StickyCookie::Invalid(Invalid::FromFuture),
            ),
            (
                "twenty_digit_with_leading_zeros_is_parsed",
                format!("{SID}|0000000000{NOW}|{NOW}"),
                valid(SID, Some(NOW)),
            ),
            (
                "negative_timestamp_is_malformed",
                format!("{SID}|-1|{NOW}"),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "plus_signed_timestamp_is_malformed",
                format!("{SID}|+{NOW}|{NOW}"),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "empty_timestamp_is_malformed",
                format!("{SID}||{NOW}"),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "spaced_timestamp_is_malformed",
                format!("{SID}| {NOW}|{NOW}"),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "two_fields_is_malformed",
                format!("{SID}|{NOW}"),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "one_field_is_malformed",
                SID.to_string(),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "four_fields_is_malformed",
                format!("{SID}|{NOW}|{NOW}|{NOW}"),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "empty_sid_is_invalid",
                format!("|{NOW}|{NOW}"),
                StickyCookie::Invalid(Invalid::EmptySid),
            ),
        ];
        for (name, value, want) in &cases {
            assert_eq!(decode(&c, value.as_bytes(), NOW), *want, "{name}");
        }
    }

    #[test]
    fn signed_cookies_verify_rotate_and_refuse_forgeries() {
        use crate::sticky::Keys;
        let k_old = "0123456789abcdef-old";
        let k_new = "0123456789abcdef-new";
        let conf = |keys: &[&str], ts: bool| StickyConf {
            sign: true,
            keys: Keys::new(keys).expect("keys"),
            maxidle: ts.then_some(30),
            maxlife: ts.then_some(3600),
            ..StickyConf::default()
        };
        let signed = |key: &str, body: &str| {
            let mac = Keys::new([key])
                .expect("key")
                .sign(body.as_bytes())
                .expect("mac");
            format!("{body}|{}", std::str::from_utf8(&mac).expect("hex"))
        };
        let ts_body = format!("{SID}|{NOW}|{}", NOW - 5);
        let renewed = |sid, firstseen| StickyCookie::Valid {
            sid,
            firstseen,
            renew: true,
        };
        let forged = StickyCookie::Invalid(Invalid::Forged);
        let (new_only, both): (&[&str], &[&str]) = (&[k_new], &[k_new, k_old]);
        // (keys, timestamps, cookie value, expected)
        let cases: Vec<(&[&str], bool, String, StickyCookie<'_>)> = vec![
            (
                new_only,
                true,
                signed(k_new, &ts_body),
                valid(SID, Some(NOW - 5)),
            ),
            (new_only, false, signed(k_new, SID), valid(SID, None)),
            (
                both,
                true,
                signed(k_old, &ts_body),
                renewed(SID, Some(NOW - 5)),
            ),
            (both, false, signed(k_old, SID), renewed(SID, None)),
            (new_only, true, signed(k_old, &ts_body), forged),
            (new_only, true, ts_body.clone(), forged),
            (new_only, false, SID.to_string(), forged),
            (new_only, false, format!("{SID}|"), forged),
            (new_only, true, String::new(), forged),
            // Extended LASTSEEN with the old MAC.
            (
                new_only,
                true,
                signed(k_new, &ts_body).replacen(&NOW.to_string(), &(NOW + 9).to_string(), 1),
                forged,
            ),
            // A valid MAC over an idle-expired body is expired, not forged.
            (
                new_only,
                true,
                signed(k_new, &format!("{SID}|{}|{}", NOW - 31, NOW - 31)),
                StickyCookie::Invalid(Invalid::IdleExpired),
            ),
        ];
        for (keys, ts, value, want) in &cases {
            let c = conf(keys, *ts);
            assert_eq!(decode(&c, value.as_bytes(), NOW), *want, "{value}");
        }
        // Every one-bit change of a signed cookie is refused (or, where it
        // breaks the form before the MAC, at least never routes).
        let c = conf(&[k_new], true);
        let good = signed(k_new, &ts_body);
        for i in 0..good.len() * 8 {
            let mut b = good.clone().into_bytes();
            b[i / 8] ^= 1 << (i % 8);
            let got = decode(&c, &b, NOW);
            assert!(
                matches!(got, StickyCookie::Invalid(_) | StickyCookie::Absent),
                "bit {i}: {got:?}"
            );
        }
    }

    #[test]
    fn only_maxidle_leaves_lifetime_unlimited() {
        let c = StickyConf {
            maxidle: Some(30),
            maxlife: None,
            ..StickyConf::default()
        };
        let v = format!("{SID}|{NOW}|0");
        assert_eq!(decode(&c, v.as_bytes(), NOW), valid(SID, Some(0)));
    }

    #[test]
    fn extreme_now_does_not_overflow() {
        let c = timestamped();
        let v = format!("{SID}|9223372036854775807|0");
        for now in [i64::MIN, -1, 0, i64::MAX] {
            let _ = decode(&c, v.as_bytes(), now);
        }
        assert_eq!(
            decode(&c, v.as_bytes(), i64::MIN),
            StickyCookie::Invalid(Invalid::FromFuture)
        );
        assert_eq!(
            decode(&c, b"a|0|0", i64::MAX),
            StickyCookie::Invalid(Invalid::IdleExpired)
        );
    }

    #[test]
    fn plain_value_modes_take_the_whole_value_as_sid() {
        let cases: &[(&str, Mode, &[u8], StickyCookie<'_>)] = &[
            ("insert_sid", Mode::Insert, SID.as_bytes(), valid(SID, None)),
            (
                "insert_pipe_is_part_of_sid_without_timestamps",
                Mode::Insert,
                b"a|1|2",
                valid("a|1|2", None),
            ),
            (
                "insert_empty_sid_is_invalid",
                Mode::Insert,
                b"",
                StickyCookie::Invalid(Invalid::EmptySid),
            ),
            ("rewrite_sid", Mode::Rewrite, b"abc", valid("abc", None)),
            (
                "rewrite_empty_sid_is_invalid",
                Mode::Rewrite,
                b"",
                StickyCookie::Invalid(Invalid::EmptySid),
            ),
            (
                "non_utf8_sid_is_malformed",
                Mode::Rewrite,
                b"a\xff",
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "prefix_sid_before_tilde",
                Mode::Prefix,
                b"abc~orig",
                valid("abc", None),
            ),
            (
                "prefix_repeated_tilde_splits_at_first",
                Mode::Prefix,
                b"abc~o~r",
                valid("abc", None),
            ),
            (
                "prefix_missing_tilde_is_no_cookie",
                Mode::Prefix,
                b"abc",
                StickyCookie::Absent,
            ),
            (
                "prefix_empty_sid_is_invalid",
                Mode::Prefix,
                b"~orig",
                StickyCookie::Invalid(Invalid::EmptySid),
            ),
            (
                "prefix_empty_original_is_valid",
                Mode::Prefix,
                b"abc~",
                valid("abc", None),
            ),
        ];
        for (name, mode, value, want) in cases {
            assert_eq!(decode(&conf(*mode), value, NOW), *want, "{name}");
        }
    }

    #[test]
    fn find_matches_exact_name_across_headers() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("xtest_is_not_test", &["xtest=a; test=b"], Some("b")),
            ("only_xtest_is_absent", &["xtest=a; testx=b"], None),
            ("second_cookie_header", &["a=1; b=2", "test=c"], Some("c")),
            ("first_pair_wins", &["test=a; test=b"], Some("a")),
            ("first_header_wins", &["test=a", "test=b"], Some("a")),
            (
                "spaces_around_semicolon_and_equals",
                &["a=1 ;  test = b ; c=3"],
                Some("b"),
            ),
            ("tabs_and_no_spaces", &["a=1;\ttest=b;c=3"], Some("b")),
            ("quoted_value_is_unquoted", &["test=\"b\""], Some("b")),
            ("lone_quote_is_kept", &["test=\"b"], Some("\"b")),
            ("empty_value", &["test="], Some("")),
            (
                "segment_without_equals_is_skipped",
                &["test; test=b"],
                Some("b"),
            ),
            ("no_cookie_header", &[], None),
            ("value_with_equals", &["test=a=b"], Some("a=b")),
        ];
        for (name, values, want) in cases {
            let h = headers(values);
            assert_eq!(find(&h, "test"), want.map(str::as_bytes), "{name}");
        }
    }

    #[test]
    fn read_finds_and_decodes() {
        let h = headers(&["a=1", &format!("route={SID}")]);
        assert_eq!(read(&StickyConf::default(), &h, NOW), valid(SID, None));
        assert_eq!(
            read(&StickyConf::default(), &headers(&["a=1"]), NOW),
            StickyCookie::Absent
        );
    }

    fn indirect() -> StickyConf {
        StickyConf {
            indirect: true,
            ..StickyConf::default()
        }
    }

    fn stripped(c: &StickyConf, values: &[&str]) -> Vec<String> {
        let mut h = headers(values);
        strip(c, &mut h);
        h.get_all(COOKIE)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn indirect_removes_sticky_pair_and_keeps_others_in_order() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("middle_pair", &["a=1; route=x; b=2"], &["a=1; b=2"]),
            ("only_pair_drops_header", &["route=x"], &[]),
            (
                "every_pair_of_that_name",
                &["route=x; a=1; route=y"],
                &["a=1"],
            ),
            ("no_pair_is_untouched", &["a=1;b=2"], &["a=1;b=2"]),
            ("xroute_is_kept", &["xroute=1; route=2"], &["xroute=1"]),
            ("tight_separators", &["a=1;route=x;b=2"], &["a=1; b=2"]),
            (
                "segment_without_equals_is_kept",
                &["flag; route=x"],
                &["flag"],
            ),
            (
                "invalid_cookie_is_stripped_too",
                &["route=|bad; a=1"],
                &["a=1"],
            ),
            ("second_header", &["a=1", "route=x; c=3"], &["a=1", "c=3"]),
            ("empty_second_header_dropped", &["a=1", "route=x"], &["a=1"]),
            ("all_headers_emptied", &["route=x", "route=y"], &[]),
            ("empty_header_is_kept", &[""], &[""]),
        ];
        for (name, input, want) in cases {
            assert_eq!(stripped(&indirect(), input), *want, "{name}");
        }
    }

    #[test]
    fn long_headers_strip_like_short_ones() {
        let others: Vec<String> = (0..20).map(|i| format!("c{i}=v{i}")).collect();
        let kept = others.join("; ");
        let mut with_pair = others.clone();
        with_pair.insert(10, "route=x".into());
        with_pair.push("route=y".into());
        assert_eq!(
            stripped(&indirect(), &[&with_pair.join(";")]),
            [kept.as_str()]
        );
        let mut prefixed = others.clone();
        prefixed.insert(15, "route=s~orig".into());
        let mut want = others;
        want.insert(15, "route=orig".into());
        assert_eq!(
            stripped(&conf(Mode::Prefix), &[&prefixed.join("; ")]),
            [want.join("; ").as_str()]
        );
    }

    #[test]
    fn prefix_strips_sid_and_tilde() {
        let c = conf(Mode::Prefix);
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("simple", &["route=a~orig; b=1"], &["route=orig; b=1"]),
            ("quoted", &["route=\"a~orig\""], &["route=\"orig\""]),
            (
                "repeated_tilde_cuts_first",
                &["route=a~b~c"],
                &["route=b~c"],
            ),
            ("no_tilde_untouched", &["route=orig"], &["route=orig"]),
            ("spaces_kept", &["x=1 ; route = a~v"], &["x=1; route = v"]),
            ("empty_sid", &["route=~v"], &["route=v"]),
            ("second_header", &["a=1", "route=s~v"], &["a=1", "route=v"]),
            (
                "other_cookie_with_tilde_untouched",
                &["xroute=a~b"],
                &["xroute=a~b"],
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(stripped(&c, input), *want, "{name}");
        }
    }

    #[test]
    fn direct_insert_and_rewrite_forward_cookie_unchanged() {
        for c in [StickyConf::default(), conf(Mode::Rewrite)] {
            assert!(!strips(&c));
            assert_eq!(stripped(&c, &["route=x; a=1"]), ["route=x; a=1"]);
        }
        assert!(strips(&indirect()));
        assert!(strips(&conf(Mode::Prefix)));
    }

    #[test]
    fn strip_keeps_sensitive_flag() {
        let mut h = HeaderMap::new();
        let mut v = HeaderValue::from_static("a=1; route=x");
        v.set_sensitive(true);
        h.insert(COOKIE, v);
        strip(&indirect(), &mut h);
        let out = h.get(COOKIE).expect("header kept");
        assert_eq!(out, "a=1");
        assert!(out.is_sensitive());
    }

    #[test]
    fn plain_hash_does_not_change_decoding() {
        let c = StickyConf {
            hash: Hash::Plain,
            ..StickyConf::default()
        };
        assert_eq!(
            decode(&c, b"10.0.23.20:80", NOW),
            valid("10.0.23.20:80", None)
        );
    }

    #[test]
    fn parse_digits_agrees_with_parse_ts() {
        let mut inputs: Vec<Vec<u8>> = vec![b"".to_vec(), b"0".to_vec(), b"9".to_vec()];
        for len in 1..=20 {
            let digits: Vec<u8> = (0..len).map(|i| b"1571297169"[i % 10]).collect();
            inputs.push(digits.clone());
            inputs.push(vec![b'9'; len]);
            inputs.push(vec![b'0'; len]);
            for at in 0..len {
                for bad in [b'/', b':', b'|', b' ', b'a', 0x80, 0xff, 0x00, 0x39 + 0x10] {
                    let mut d = digits.clone();
                    if let Some(b) = d.get_mut(at) {
                        *b = bad;
                    }
                    inputs.push(d);
                }
            }
        }
        for input in &inputs {
            let fast = parse_digits(input);
            match parse_ts(input) {
                // Up to 18 digits, both agree exactly.
                Ok(v) if input.len() <= 18 => assert_eq!(fast, Some(v), "{input:?}"),
                // Longer or invalid fields are left to the general path.
                _ => assert_eq!(fast, None, "{input:?}"),
            }
        }
        for n in [0u64, 1, 9, 10, 99_999_999, 12_345_678, 87_654_321] {
            let text = format!("{n:08}");
            let mut word = [0u8; 8];
            word.copy_from_slice(text.as_bytes());
            assert_eq!(parse8(u64::from_le_bytes(word)), Some(n), "{text}");
        }
    }

    #[test]
    fn parse_stamps_agrees_with_the_general_path() {
        let cases: &[&[u8]] = &[
            b"1571297169|1571297169",
            b"0|0",
            b"1|2",
            b"123456789012345678|1",
            b"1234567890123456789|1",
            b"1|1234567890123456789",
            b"|1",
            b"1|",
            b"1",
            b"1|2|3",
            b"1||2",
            b"a|1",
            b"1|a",
            b" 1|1",
            b"-1|1",
        ];
        for stamps in cases {
            let general = split_at_byte(stamps, b'|').and_then(|(l, f)| {
                let no_more = memchr::memchr(b'|', f).is_none();
                match (parse_ts(l), parse_ts(f)) {
                    (Ok(l), Ok(f)) if no_more => Some((l, f)),
                    _ => None,
                }
            });
            match parse_stamps(stamps) {
                Some(both) => assert_eq!(Some(both), general, "{stamps:?}"),
                None => {
                    // Only fields the fast path does not take (over 18 digits)
                    // may still be valid for the general path.
                    let long = stamps.split(|b| *b == b'|').any(|f| f.len() > 18);
                    assert!(general.is_none() || long, "{stamps:?}");
                }
            }
        }
    }

    /// Header values exercising every branch of the scan, for the cross-checks.
    const SCAN_INPUTS: &[&str] = &[
        "",
        "a=1",
        "route=x",
        "route=x; a=1; route=y",
        "a=1;route=x;b=2",
        "a=1 ;  route = x ; c=3",
        "flag; route=x",
        "route; route=y",
        "xroute=1; route=2",
        "route=\"s~v\"",
        "route=s~v; b=1",
        "route=~v",
        "route=abc",
        "route=|bad; a=1",
        "route=fe12736d0ef927f9224a3336b65ee84b|1571297169|1571297169; lang=en",
        "test=a; route=b; test=c",
        ";;; ; route=x;;",
        "c0=v0; c1=v1; c2=v2; c3=v3; c4=v4; c5=v5; c6=v6; route=x; c7=v7; c8=v8; c9=v9",
    ];

    fn scan_confs() -> Vec<StickyConf> {
        let mut confs = Vec::new();
        for mode in [Mode::Insert, Mode::Rewrite, Mode::Prefix] {
            for indirect in [false, true] {
                for ts in [false, true] {
                    confs.push(StickyConf {
                        mode,
                        indirect: indirect && mode == Mode::Insert,
                        maxidle: ts.then_some(30),
                        maxlife: ts.then_some(3600),
                        ..StickyConf::default()
                    });
                }
            }
        }
        confs
    }

    #[test]
    fn scan_value_is_find_plus_strip() {
        let mut long: Vec<String> = (0..30).map(|i| format!("c{i}=v{i}")).collect();
        long.insert(12, "route=s~x".into());
        let long = long.join("; ");
        let inputs: Vec<&str> = SCAN_INPUTS.iter().copied().chain([long.as_str()]).collect();
        for conf in scan_confs() {
            for input in &inputs {
                let (found, stripped) = scan_value(&conf, input.as_bytes());
                assert_eq!(found, find_in_value(input.as_bytes(), "route"), "{input}");
                assert_eq!(stripped, strip_value(&conf, input.as_bytes()), "{input}");
                let general = scan_value_general(&conf, input.as_bytes());
                assert_eq!((found, stripped), general, "{conf:?} {input}");
            }
        }
    }

    /// Tidy headers (`"; "`-separated, as browsers send them) with the sticky
    /// cookie(s) in every position: the fast path must give exactly what the
    /// general path gives, and must actually be taken.
    #[test]
    fn tidy_fast_path_matches_general_path() {
        let others = [
            "_ga=GA1.2.3",
            "lang=en",
            "flag",
            "x=\"q\"",
            "routex=1",
            "a=b=c",
        ];
        let sticky = [
            "route=s1",
            "route=s~orig",
            "route=\"s~q\"",
            "route=~v",
            "route=s~",
            "route=",
            "route = s~v",
            "route=plain",
        ];
        let mut inputs: Vec<String> = Vec::new();
        for n in 0..=others.len() {
            let base: Vec<&str> = others.iter().copied().take(n).collect();
            inputs.push(base.join("; "));
            for s in sticky {
                for at in 0..=base.len() {
                    let mut v = base.clone();
                    v.insert(at, s);
                    inputs.push(v.join("; "));
                    // A second sticky cookie later on.
                    for at2 in at + 1..=v.len() {
                        let mut w = v.clone();
                        w.insert(at2, "route=t~two");
                        inputs.push(w.join("; "));
                    }
                }
            }
        }
        // Untidy forms: the fast path must decline them.
        let untidy = [
            " route=s",
            "route=s ",
            "a=1;route=s",
            "a=1;  route=s",
            "a=1 ; route=s",
            "a=1;\troute=s",
            "a=1; ; route=s",
            "a=1; route=s;",
            ";a=1",
            "",
        ];
        let mut taken = 0usize;
        let confs: Vec<StickyConf> = scan_confs().into_iter().filter(strips).collect();
        for conf in &confs {
            let (indirect, name) = (conf.mode == Mode::Insert, conf.cookie.as_bytes());
            for input in &inputs {
                let general = scan_value_general(conf, input.as_bytes());
                if let Some(fast) = scan_tidy(name, indirect, input.as_bytes()) {
                    taken += 1;
                    assert_eq!(fast, general, "{conf:?} {input:?}");
                }
                assert_eq!(scan_value(conf, input.as_bytes()), general, "{input:?}");
            }
            for input in untidy {
                assert!(
                    scan_tidy(name, indirect, input.as_bytes()).is_none(),
                    "{input:?}"
                );
            }
        }
        // Only the empty header and those needing more than TIDY_RUNS runs
        // fall back: at least 90% of the cases take the fast path.
        let total = confs.len() * inputs.len();
        assert!(
            taken * 10 >= total * 9,
            "fast path taken {taken} of {total}"
        );
    }

    #[test]
    fn decode_indexed_is_decode() {
        let index = SidIndex::new([SID, "s", "", "abc", SID]);
        let values: Vec<String> = vec![
            SID.into(),
            format!("{SID}|{NOW}|{NOW}"),
            format!("{SID}|{NOW}|{}", NOW - 4000),
            format!("{SID}~orig"),
            "s~v".into(),
            "~v".into(),
            "".into(),
            "abc".into(),
            "zz".into(),
            format!("zz|{NOW}|{NOW}"),
            format!("|{NOW}|{NOW}"),
            format!("a\u{e9}|{NOW}|{NOW}"),
        ];
        let mut raw: Vec<Vec<u8>> = values.iter().map(|v| v.clone().into_bytes()).collect();
        raw.push(b"\xff|1571297169|1571297169".to_vec());
        raw.push(b"s\xff~v".to_vec());
        for conf in scan_confs() {
            for value in &raw {
                let (got, peer) = decode_indexed(&conf, value, &index, NOW);
                let want = decode(&conf, value, NOW);
                assert_eq!(got, want, "{value:?}");
                let want_peer = match want {
                    StickyCookie::Valid { sid, .. } => index.lookup(sid),
                    _ => None,
                };
                // The peer is found whenever the cookie is valid and known
                // (and possibly for a cookie rejected later, e.g. expired).
                if want_peer.is_some() {
                    assert_eq!(peer, want_peer, "{value:?}");
                }
            }
        }
    }

    #[test]
    fn invalid_labels() {
        assert!(Invalid::IdleExpired.is_expired());
        assert!(Invalid::LifeExpired.is_expired());
        assert!(!Invalid::FromFuture.is_expired());
        assert_eq!(Invalid::EmptySid.as_str(), "empty sid");
    }
}
