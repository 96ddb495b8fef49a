//! Response side of session_sticky (spec sections 3 and 5): the `Set-Cookie`
//! that pins the client to the peer that answered. Insert mode builds our own
//! cookie (`NAME=VALUE[; Domain=D]; Path=P[; Max-Age=N; Expires=DATE]`); rewrite
//! and prefix modes edit the value of the backend's first `NAME` cookie and keep
//! its attributes byte for byte. Responses with status >= 400 are never touched,
//! and no invalid header value is ever produced (a value that would be invalid,
//! e.g. from a hostile backend, is left as the backend sent it).

use bytes::Bytes;
use http::header::{Entry, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};

use super::decide::{Choice, Decision};
use super::keys::TAG_HEX;
use super::{cache, learn};
use super::{Mode, StickyConf};
use crate::numfmt::Decimal;

/// The insert-mode `Set-Cookie` value for peer `sid`, exactly
/// `NAME=VALUE[; Domain=D]; Path=P[; Max-Age=N; Expires=IMF-fixdate]` followed
/// by ours `[; HttpOnly][; Secure][; SameSite=X][; Partitioned]`, where VALUE is
/// `SID` or `SID|now|firstseen` when maxidle/maxlife is set, and with
/// `sign=on` that followed by `|MAC`. `tls`: the request arrived over TLS
/// (`secure=auto`). `None` if the configured name/domain/path would make an
/// invalid header value. One allocation (the value is sized before it is
/// written).
pub fn insert_value(
    conf: &StickyConf,
    sid: &str,
    now: i64,
    firstseen: i64,
    tls: bool,
) -> Option<HeaderValue> {
    let stamps = conf
        .timestamps()
        .then(|| (Decimal::new(now), Decimal::new(firstseen)));
    let expiry = conf.maxage.map(|maxage| {
        (
            Decimal::new(maxage),
            crate::timefmt::http_date_unix(now.saturating_add(maxage)),
        )
    });
    let name = conf.cookie.as_bytes();
    let domain = conf.domain.as_deref().map(str::as_bytes);
    let path = conf.path.as_bytes();
    let mut len = name.len() + 1 + sid.len() + "; Path=".len() + path.len();
    if let Some((now, first)) = &stamps {
        len += 2 + now.as_bytes().len() + first.as_bytes().len();
    }
    if conf.sign {
        len += 1 + TAG_HEX;
    }
    if let Some(domain) = domain {
        len += "; Domain=".len() + domain.len();
    }
    if let Some((maxage, date)) = &expiry {
        len += "; Max-Age=".len() + maxage.as_bytes().len();
        len += "; Expires=".len() + date.as_bytes().len();
    }
    len += conf.attrs.len(tls);
    // Literal pieces are copied inline; only the variable ones call memcpy.
    let mut out = Vec::with_capacity(len);
    write_pair(conf, sid, stamps.as_ref(), &mut out)?;
    if let Some(domain) = domain {
        out.extend_from_slice(b"; Domain=");
        out.extend_from_slice(domain);
    }
    out.extend_from_slice(b"; Path=");
    out.extend_from_slice(path);
    if let Some((maxage, date)) = &expiry {
        out.extend_from_slice(b"; Max-Age=");
        out.extend_from_slice(maxage.as_bytes());
        out.extend_from_slice(b"; Expires=");
        out.extend_from_slice(date.as_bytes());
    }
    conf.attrs.write(tls, &mut out);
    HeaderValue::from_maybe_shared(Bytes::from(out)).ok()
}

/// Writes `NAME=SID[|LASTSEEN|FIRSTSEEN][|MAC]`, the pair of every cookie we
/// make (insert and learn modes). `None` if signing fails (no key).
pub(super) fn write_pair(
    conf: &StickyConf,
    sid: &str,
    stamps: Option<&(Decimal, Decimal)>,
    out: &mut Vec<u8>,
) -> Option<()> {
    let start = out.len() + conf.cookie.len() + 1;
    out.extend_from_slice(conf.cookie.as_bytes());
    out.push(b'=');
    out.extend_from_slice(sid.as_bytes());
    if let Some((now, first)) = stamps {
        out.push(b'|');
        out.extend_from_slice(now.as_bytes());
        out.push(b'|');
        out.extend_from_slice(first.as_bytes());
    }
    if conf.sign {
        let mac = conf.keys.sign(out.get(start..)?)?;
        out.push(b'|');
        out.extend_from_slice(&mac);
    }
    Some(())
}

/// Byte range of the cookie value in a `Set-Cookie` value whose cookie name is
/// exactly `name` (whitespace around name and value ignored), else `None`.
pub fn value_range(set_cookie: &[u8], name: &str) -> Option<std::ops::Range<usize>> {
    let pair_end = memchr::memchr(b';', set_cookie).unwrap_or(set_cookie.len());
    let pair = set_cookie.get(..pair_end)?;
    let eq = memchr::memchr(b'=', pair)?;
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let name_part = pair.get(..eq)?;
    let lead = name_part.iter().take_while(|b| is_ws(b)).count();
    let trail = name_part.iter().rev().take_while(|b| is_ws(b)).count();
    if name_part.get(lead..eq.saturating_sub(trail).max(lead))? != name.as_bytes() {
        return None;
    }
    let value_part = pair.get(eq + 1..)?;
    let vlead = value_part.iter().take_while(|b| is_ws(b)).count();
    let vtrail = value_part.iter().rev().take_while(|b| is_ws(b)).count();
    let start = eq + 1 + vlead;
    let end = (pair_end - vtrail).max(start);
    Some(start..end)
}

/// `set_cookie` with its value (if its name is `name`) replaced by `sid`
/// (rewrite) or prefixed with `sid~` (prefix). `None` when the name differs or
/// the result would be an invalid header value.
pub fn edit_value(mode: Mode, set_cookie: &[u8], name: &str, sid: &str) -> Option<HeaderValue> {
    let range = value_range(set_cookie, name)?;
    let head = set_cookie.get(..range.start)?;
    let (value, tail) = match mode {
        Mode::Rewrite => (&[][..], set_cookie.get(range.end..)?),
        Mode::Prefix => (
            set_cookie.get(range.start..range.end)?,
            set_cookie.get(range.end..)?,
        ),
        Mode::Insert => return None,
    };
    let tilde = usize::from(mode == Mode::Prefix);
    let mut out = Vec::with_capacity(head.len() + sid.len() + tilde + value.len() + tail.len());
    out.extend_from_slice(head);
    out.extend_from_slice(sid.as_bytes());
    if mode == Mode::Prefix {
        out.push(b'~');
    }
    out.extend_from_slice(value);
    out.extend_from_slice(tail);
    HeaderValue::from_maybe_shared(Bytes::from(out)).ok()
}

fn is_named(v: &HeaderValue, name: &str) -> bool {
    value_range(v.as_bytes(), name).is_some()
}

/// Insert mode with `option=indirect`: our cookie (built by `ours`, `None` =
/// nothing to set) goes in place of the backend's first `NAME` Set-Cookie, and
/// any further ones of that name are dropped; without a backend `NAME` cookie it
/// is appended when `wanted` (a pin or a timestamp refresh). One header lookup
/// unless the backend did set `NAME`.
fn place_indirect(
    conf: &StickyConf,
    headers: &mut HeaderMap,
    wanted: bool,
    ours: impl FnOnce() -> Option<HeaderValue>,
) {
    let mut entry = match headers.entry(SET_COOKIE) {
        Entry::Vacant(entry) => {
            if let Some(v) = wanted.then(ours).flatten() {
                entry.insert(v);
            }
            return;
        }
        Entry::Occupied(entry) => entry,
    };
    if !entry.iter().any(|v| is_named(v, &conf.cookie)) {
        if let Some(v) = wanted.then(ours).flatten() {
            entry.append(v);
        }
        return;
    }
    // The backend set `NAME`: ours replaces it, whatever the decision.
    let Some(ours) = ours() else {
        return;
    };
    let (_, old) = entry.remove_entry_mult();
    let old: Vec<HeaderValue> = old.collect();
    let mut ours = Some(ours);
    for v in old {
        if is_named(&v, &conf.cookie) {
            if let Some(ours) = ours.take() {
                headers.append(SET_COOKIE, ours);
            }
        } else {
            headers.append(SET_COOKIE, v);
        }
    }
}

/// Rewrite/prefix: edit the first `Set-Cookie` named `NAME` in place, adding
/// the configured attributes the backend did not set itself. True when one
/// was edited.
fn edit_first(conf: &StickyConf, headers: &mut HeaderMap, sid: &str, tls: bool) -> bool {
    let Entry::Occupied(mut entry) = headers.entry(SET_COOKIE) else {
        return false;
    };
    for v in entry.iter_mut() {
        if value_range(v.as_bytes(), &conf.cookie).is_some() {
            let Some(mut nv) = edit_value(conf.mode, v.as_bytes(), &conf.cookie, sid) else {
                return false;
            };
            let missing = conf.attrs.missing_from(v.as_bytes(), tls);
            if !missing.is_empty() {
                let mut with = nv.as_bytes().to_vec();
                with.extend_from_slice(&missing);
                match HeaderValue::from_maybe_shared(Bytes::from(with)) {
                    Ok(w) => nv = w,
                    Err(_) => return false,
                }
            }
            nv.set_sensitive(v.is_sensitive());
            *v = nv;
            return true;
        }
    }
    false
}

/// What [`apply`] did, for `$sticky_learned` and the caller's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// A sticky `Set-Cookie` was set or edited.
    pub set: bool,
    /// Learn mode: the index in `learn=` of the cookie the backend set.
    pub learned: Option<u8>,
}

/// Apply the sticky response rules to the response `headers`.
///
/// `sid` is the sid of the peer that actually answered, `choice` the (possibly
/// fallen-back) decision, `now` Unix seconds, `tls` whether the request
/// arrived over TLS (`secure=auto`). Nothing happens for status >= 400 or a
/// refused decision (the proxy's own 502 never carries a sticky cookie).
/// - insert: a cookie is set when the client is (re-)pinned, on every response
///   when maxidle/maxlife is set (LASTSEEN refreshed, FIRSTSEEN kept), and under
///   indirect whenever the backend set a cookie of the same name (ours replaces it).
/// - insert with `learn=`: see [`super::learn`].
/// - rewrite: the value of the first `NAME` Set-Cookie becomes `sid`.
/// - prefix: the value of the first `NAME` Set-Cookie becomes `sid~value`.
/// - `nocache`: `Cache-Control: private` whenever a sticky cookie was set.
pub fn apply(
    conf: &StickyConf,
    status: StatusCode,
    headers: &mut HeaderMap,
    sid: &str,
    choice: &Choice,
    now: i64,
    tls: bool,
) -> Applied {
    let ours = || insert_value(conf, sid, now, choice.firstseen, tls);
    apply_with(conf, status, headers, sid, choice, now, tls, ours)
}

/// [`apply`], with the insert-mode value made by `ours` (called at most once,
/// and only when a cookie is to be set): the engine passes one that reuses the
/// value it made last for the same peer and second.
#[allow(clippy::too_many_arguments)]
pub fn apply_with(
    conf: &StickyConf,
    status: StatusCode,
    headers: &mut HeaderMap,
    sid: &str,
    choice: &Choice,
    now: i64,
    tls: bool,
    ours: impl FnOnce() -> Option<HeaderValue>,
) -> Applied {
    if status.as_u16() >= 400 || choice.decision == Decision::Refuse {
        return Applied::default();
    }
    let mut applied = Applied::default();
    // `ours` is only ever called when a cookie is set, so a call marks it.
    let set = std::cell::Cell::new(false);
    let ours = || {
        let v = ours();
        set.set(v.is_some());
        v
    };
    match conf.mode {
        Mode::Insert if !conf.learn.is_empty() => {
            let learned = learn::in_response(conf, headers, now);
            applied.learned = learned.as_ref().map(|l| l.index);
            let value = match &learned {
                Some(l) => learn::value(conf, l, sid, now, choice.firstseen, tls),
                // A re-pin (fallback, old key) needs ours as in insert mode.
                None if choice.pins() && !matches!(choice.decision, Decision::New(_)) => ours(),
                None => None,
            };
            set.set(value.is_some());
            if conf.indirect {
                place_indirect(conf, headers, value.is_some(), || value);
            } else if let Some(v) = value {
                headers.append(SET_COOKIE, v);
            }
        }
        Mode::Insert => {
            let wanted = choice.pins() || conf.timestamps();
            if conf.indirect {
                place_indirect(conf, headers, wanted, ours);
            } else if let Some(v) = wanted.then(ours).flatten() {
                headers.append(SET_COOKIE, v);
            }
        }
        Mode::Rewrite | Mode::Prefix => set.set(edit_first(conf, headers, sid, tls)),
    }
    applied.set = set.get();
    if applied.set && conf.nocache {
        cache::mark_private(headers);
    }
    applied
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::numfmt::Decimal;
    use crate::sticky::decide::Outcome;

    const NOW: i64 = 1_571_297_169;
    const SID: &str = "fe12736d0ef927f9224a3336b65ee84b";

    fn choice(decision: Decision, firstseen: i64) -> Choice {
        Choice::new(decision, Outcome::New, firstseen)
    }

    fn new_session() -> Choice {
        choice(Decision::New(0), NOW)
    }

    fn hit(firstseen: i64) -> Choice {
        choice(Decision::Pinned(0), firstseen)
    }

    /// (name, conf, status, backend Set-Cookies, choice, expected Set-Cookies)
    type InsertCase<'a> = (
        &'a str,
        &'a StickyConf,
        u16,
        Vec<&'a str>,
        Choice,
        Vec<&'a str>,
    );
    /// (name, conf, status, backend Set-Cookies, expected Set-Cookies)
    type EditCase<'a> = (&'a str, &'a StickyConf, u16, Vec<&'a str>, Vec<&'a str>);
    /// (name, Set-Cookie value, expected value range)
    type RangeCase<'a> = (&'a str, &'a [u8], Option<std::ops::Range<usize>>);

    fn set_cookies(h: &HeaderMap) -> Vec<String> {
        h.get_all(SET_COOKIE)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    fn response(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                SET_COOKIE,
                HeaderValue::from_str(v).expect("valid test header"),
            );
        }
        h
    }

    fn run(conf: &StickyConf, status: u16, backend: &[&str], choice: &Choice) -> Vec<String> {
        let mut h = response(backend);
        let status = StatusCode::from_u16(status).expect("valid status");
        apply(conf, status, &mut h, SID, choice, NOW, false);
        set_cookies(&h)
    }

    #[test]
    fn insert_value_fixtures_are_byte_exact() {
        let ts = |c: StickyConf| StickyConf {
            maxidle: Some(30),
            maxlife: Some(3600),
            ..c
        };
        let cases: Vec<(&str, StickyConf, &str)> = vec![
            ("default", StickyConf::default(), "route=fe12736d0ef927f9224a3336b65ee84b; Path=/"),
            (
                "domain",
                StickyConf { domain: Some("example.com".into()), ..StickyConf::default() },
                "route=fe12736d0ef927f9224a3336b65ee84b; Domain=example.com; Path=/",
            ),
            (
                "maxage",
                StickyConf { maxage: Some(3600), ..StickyConf::default() },
                "route=fe12736d0ef927f9224a3336b65ee84b; Path=/; Max-Age=3600; Expires=Thu, 17 Oct 2019 08:26:09 GMT",
            ),
            (
                "timestamps",
                ts(StickyConf::default()),
                "route=fe12736d0ef927f9224a3336b65ee84b|1571297169|1571297000; Path=/",
            ),
            (
                "all_attributes",
                ts(StickyConf {
                    cookie: "LBSID".into(),
                    domain: Some(".example.com".into()),
                    path: "/app".into(),
                    maxage: Some(86_400),
                    ..StickyConf::default()
                }),
                "LBSID=fe12736d0ef927f9224a3336b65ee84b|1571297169|1571297000; Domain=.example.com; Path=/app; Max-Age=86400; Expires=Fri, 18 Oct 2019 07:26:09 GMT",
            ),
            (
                "huge_maxage_clamps_date",
                StickyConf { maxage: Some(i64::MAX), ..StickyConf::default() },
                "route=fe12736d0ef927f9224a3336b65ee84b; Path=/; Max-Age=9223372036854775807; Expires=Fri, 31 Dec 9999 23:59:59 GMT",
            ),
            (
                "negative_maxage_clamps_to_epoch",
                StickyConf { maxage: Some(-NOW - 10), ..StickyConf::default() },
                "route=fe12736d0ef927f9224a3336b65ee84b; Path=/; Max-Age=-1571297179; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            ),
        ];
        for (name, conf, want) in cases {
            let got = insert_value(&conf, SID, NOW, 1_571_297_000, false).expect(name);
            assert_eq!(got.as_bytes(), want.as_bytes(), "{name}");
        }
    }

    #[test]
    fn insert_value_with_our_attributes_and_signature() {
        use crate::sticky::{Attrs, Keys, SameSite, Secure};
        let hardened = StickyConf {
            attrs: Attrs {
                httponly: true,
                secure: Secure::On,
                samesite: Some(SameSite::Lax),
                partitioned: false,
            },
            maxage: Some(60),
            ..StickyConf::default()
        };
        let got = insert_value(&hardened, SID, NOW, NOW, false).unwrap();
        assert_eq!(
            got.to_str().unwrap(),
            format!("route={SID}; Path=/; Max-Age=60; Expires=Thu, 17 Oct 2019 07:27:09 GMT; HttpOnly; Secure; SameSite=Lax")
        );
        let auto = StickyConf {
            attrs: Attrs {
                secure: Secure::Auto,
                ..Attrs::default()
            },
            ..StickyConf::default()
        };
        let plain = format!("route={SID}; Path=/");
        let tls = format!("route={SID}; Path=/; Secure");
        assert_eq!(
            insert_value(&auto, SID, NOW, NOW, false).unwrap(),
            plain.as_str()
        );
        assert_eq!(
            insert_value(&auto, SID, NOW, NOW, true).unwrap(),
            tls.as_str()
        );
        // sign=on: `|MAC` over what precedes it, by the first key.
        let keys = Keys::new(["0123456789abcdef-new", "0123456789abcdef-old"]).unwrap();
        let signed = StickyConf {
            sign: true,
            keys: keys.clone(),
            maxidle: Some(30),
            maxlife: Some(3600),
            ..StickyConf::default()
        };
        let body = format!("{SID}|{NOW}|1571297000");
        let mac = keys.sign(body.as_bytes()).unwrap();
        let want = format!(
            "route={body}|{}; Path=/",
            std::str::from_utf8(&mac).unwrap()
        );
        let got = insert_value(&signed, SID, NOW, 1_571_297_000, false).unwrap();
        assert_eq!(got.to_str().unwrap(), want);
        let untimed = StickyConf {
            maxidle: None,
            maxlife: None,
            ..signed
        };
        let mac = keys.sign(SID.as_bytes()).unwrap();
        let want = format!("route={SID}|{}; Path=/", std::str::from_utf8(&mac).unwrap());
        assert_eq!(
            insert_value(&untimed, SID, NOW, NOW, false).unwrap(),
            want.as_str()
        );
    }

    #[test]
    fn rewrite_and_prefix_add_only_missing_attributes() {
        use crate::sticky::{Attrs, SameSite, Secure};
        let attrs = Attrs {
            httponly: true,
            secure: Secure::On,
            samesite: Some(SameSite::Lax),
            partitioned: false,
        };
        for mode in [Mode::Rewrite, Mode::Prefix] {
            let conf = StickyConf {
                mode,
                attrs,
                ..StickyConf::default()
            };
            let v = |rest: &str| match mode {
                Mode::Prefix => format!("route={SID}~app{rest}"),
                _ => format!("route={SID}{rest}"),
            };
            let cases = [
                (
                    "route=app; Path=/",
                    v("; Path=/; HttpOnly; Secure; SameSite=Lax"),
                ),
                (
                    "route=app; HttpOnly; SameSite=Strict",
                    v("; HttpOnly; SameSite=Strict; Secure"),
                ),
                (
                    "route=app; secure; httponly; samesite=none",
                    v("; secure; httponly; samesite=none"),
                ),
            ];
            for (backend, want) in cases {
                assert_eq!(
                    run(&conf, 200, &[backend], &hit(NOW)),
                    vec![want.clone()],
                    "{mode:?} {backend}"
                );
            }
        }
    }

    #[test]
    fn insert_value_refuses_invalid_configured_text() {
        let conf = StickyConf {
            domain: Some("bad\ndomain".into()),
            ..StickyConf::default()
        };
        assert_eq!(insert_value(&conf, SID, NOW, NOW, false), None);
        let mut h = HeaderMap::new();
        apply(
            &conf,
            StatusCode::OK,
            &mut h,
            SID,
            &new_session(),
            NOW,
            false,
        );
        assert!(h.is_empty());
    }

    #[test]
    fn insert_mode_behaviour() {
        let plain = StickyConf::default();
        let ts = StickyConf {
            maxidle: Some(30),
            maxlife: Some(3600),
            ..StickyConf::default()
        };
        let indirect = StickyConf {
            indirect: true,
            ..StickyConf::default()
        };
        let ours = format!("route={SID}; Path=/");
        let refreshed = format!("route={SID}|{NOW}|{}; Path=/", NOW - 100);
        let fallback = choice(Decision::Fallback(0), NOW);
        let cases: Vec<InsertCase<'_>> = vec![
            (
                "new_session_sets_cookie",
                &plain,
                200,
                vec![],
                new_session(),
                vec![&ours],
            ),
            (
                "hit_without_timestamps_sets_nothing",
                &plain,
                200,
                vec!["a=1"],
                hit(NOW),
                vec!["a=1"],
            ),
            (
                "fallback_repins",
                &plain,
                200,
                vec![],
                fallback,
                vec![&ours],
            ),
            (
                "hit_with_timestamps_refreshes_lastseen_keeps_firstseen",
                &ts,
                200,
                vec![],
                hit(NOW - 100),
                vec![&refreshed],
            ),
            (
                "direct_appends_after_backend_cookies",
                &plain,
                200,
                vec!["a=1", "route=app"],
                new_session(),
                vec!["a=1", "route=app", &ours],
            ),
            (
                "indirect_replaces_backend_cookie_in_place",
                &indirect,
                200,
                vec!["a=1", "route=app; Path=/x", "b=2"],
                new_session(),
                vec!["a=1", &ours, "b=2"],
            ),
            (
                "indirect_drops_further_backend_cookies_of_that_name",
                &indirect,
                200,
                vec!["route=1", "a=1", "route=2"],
                new_session(),
                vec![&ours, "a=1"],
            ),
            (
                "indirect_replaces_backend_cookie_even_on_hit",
                &indirect,
                200,
                vec!["route=app"],
                hit(NOW),
                vec![&ours],
            ),
            (
                "indirect_keeps_xroute",
                &indirect,
                200,
                vec!["xroute=1"],
                new_session(),
                vec!["xroute=1", &ours],
            ),
            (
                "indirect_hit_without_backend_cookie_sets_nothing",
                &indirect,
                200,
                vec!["a=1"],
                hit(NOW),
                vec!["a=1"],
            ),
            (
                "status_399_sets_cookie",
                &plain,
                399,
                vec![],
                new_session(),
                vec![&ours],
            ),
            (
                "status_400_sets_nothing",
                &plain,
                400,
                vec![],
                new_session(),
                vec![],
            ),
            (
                "status_502_sets_nothing_with_timestamps",
                &ts,
                502,
                vec!["route=app"],
                hit(NOW),
                vec!["route=app"],
            ),
            (
                "refused_sets_nothing",
                &ts,
                200,
                vec![],
                choice(Decision::Refuse, NOW),
                vec![],
            ),
        ];
        for (name, conf, status, backend, c, want) in cases {
            assert_eq!(run(conf, status, &backend, &c), want, "{name}");
        }
    }

    /// Differential: the hand-written fast path against the `cookie` crate's
    /// whole Set-Cookie parser. The name and value found are the crate's, and
    /// a rewritten or prefixed cookie keeps every attribute of the backend's
    /// (Domain, Path, Expires, Max-Age, Secure, HttpOnly, SameSite,
    /// Partitioned), byte for byte as the crate reads them.
    #[test]
    fn edits_keep_every_attribute_the_cookie_crate_reads() {
        let cases = [
            "JSESSIONID=abc123; Path=/; HttpOnly",
            "JSESSIONID = abc123 ; Domain=example.com; Path=/app; Secure; SameSite=Lax",
            "JSESSIONID=\"q v\"; Max-Age=3600; Expires=Wed, 21 Oct 2026 07:28:00 GMT",
            "JSESSIONID=; Path=/; SameSite=None; Secure; Partitioned",
            "JSESSIONID=x=y; path=/lower; httponly",
        ];
        for text in cases {
            let parsed = ::cookie::Cookie::parse(text).unwrap();
            let range = value_range(text.as_bytes(), "JSESSIONID").unwrap();
            assert_eq!(parsed.name(), "JSESSIONID", "{text}");
            assert_eq!(
                text.get(range.clone()).unwrap().trim_matches('"'),
                parsed.value_trimmed(),
                "{text}"
            );
            for mode in [Mode::Rewrite, Mode::Prefix] {
                let edited = edit_value(mode, text.as_bytes(), "JSESSIONID", "SID").unwrap();
                let edited = ::cookie::Cookie::parse(edited.to_str().unwrap()).unwrap();
                let want = match mode {
                    Mode::Rewrite => "SID".to_string(),
                    _ => format!("SID~{}", text.get(range.clone()).unwrap()),
                };
                assert_eq!(edited.value(), want, "{text} {mode:?}");
                assert_eq!(edited.domain(), parsed.domain(), "{text}");
                assert_eq!(edited.path(), parsed.path(), "{text}");
                assert_eq!(edited.expires(), parsed.expires(), "{text}");
                assert_eq!(edited.max_age(), parsed.max_age(), "{text}");
                assert_eq!(edited.secure(), parsed.secure(), "{text}");
                assert_eq!(edited.http_only(), parsed.http_only(), "{text}");
                assert_eq!(edited.same_site(), parsed.same_site(), "{text}");
                assert_eq!(edited.partitioned(), parsed.partitioned(), "{text}");
            }
        }
        // Another cookie's name is never edited.
        assert!(value_range(b"OTHER=1; Path=/", "JSESSIONID").is_none());
    }

    #[test]
    fn rewrite_and_prefix_behaviour() {
        let rewrite = StickyConf {
            mode: Mode::Rewrite,
            ..StickyConf::default()
        };
        let prefix = StickyConf {
            mode: Mode::Prefix,
            ..StickyConf::default()
        };
        let rw = format!("route={SID}; Path=/x; HttpOnly; Max-Age=60");
        let rw_spaced = format!(" route = {SID} ; Secure");
        let pf = format!("route={SID}~app; Path=/x; HttpOnly");
        let pf_quoted = format!("route={SID}~\"q\"; Domain=x");
        let pf_empty = format!("route={SID}~; Path=/");
        let rw_bare = format!("route={SID}");
        let cases: Vec<EditCase<'_>> = vec![
            (
                "rewrite_keeps_attributes_byte_for_byte",
                &rewrite,
                200,
                vec!["route=app; Path=/x; HttpOnly; Max-Age=60"],
                vec![&rw],
            ),
            (
                "rewrite_keeps_whitespace",
                &rewrite,
                200,
                vec![" route = app ; Secure"],
                vec![&rw_spaced],
            ),
            (
                "rewrite_only_first_matching",
                &rewrite,
                200,
                vec!["a=1", "route=app", "route=two"],
                vec!["a=1", &rw_bare, "route=two"],
            ),
            (
                "rewrite_without_backend_cookie_adds_nothing",
                &rewrite,
                200,
                vec!["xroute=1", "a=route=2"],
                vec!["xroute=1", "a=route=2"],
            ),
            (
                "rewrite_no_set_cookie_at_all",
                &rewrite,
                200,
                vec![],
                vec![],
            ),
            (
                "rewrite_status_399",
                &rewrite,
                399,
                vec!["route=app"],
                vec![&rw_bare],
            ),
            (
                "rewrite_status_400_untouched",
                &rewrite,
                400,
                vec!["route=app"],
                vec!["route=app"],
            ),
            (
                "rewrite_name_without_equals_is_not_matched",
                &rewrite,
                200,
                vec!["route; Path=/"],
                vec!["route; Path=/"],
            ),
            (
                "prefix_prepends_sid",
                &prefix,
                200,
                vec!["route=app; Path=/x; HttpOnly"],
                vec![&pf],
            ),
            (
                "prefix_quoted_value",
                &prefix,
                200,
                vec!["route=\"q\"; Domain=x"],
                vec![&pf_quoted],
            ),
            (
                "prefix_empty_value",
                &prefix,
                200,
                vec!["route=; Path=/"],
                vec![&pf_empty],
            ),
            (
                "prefix_without_backend_cookie_adds_nothing",
                &prefix,
                200,
                vec!["a=1"],
                vec!["a=1"],
            ),
            (
                "prefix_status_400_untouched",
                &prefix,
                404,
                vec!["route=app"],
                vec!["route=app"],
            ),
        ];
        for (name, conf, status, backend, want) in cases {
            assert_eq!(run(conf, status, &backend, &hit(NOW)), want, "{name}");
        }
    }

    #[test]
    fn decimal_formats_every_i64_like_display() {
        let mut cases = vec![
            0,
            7,
            -7,
            10,
            1_571_297_169,
            -1_571_297_179,
            i64::MAX,
            i64::MIN,
            i64::MAX - 1,
            i64::MIN + 1,
        ];
        // Every digit count, and both sides of each power of ten.
        let mut p = 1i64;
        for _ in 0..19 {
            for n in [p - 1, p, p + 1, 2 * p - 1, 5 * p, 9 * p] {
                cases.push(n);
                cases.push(-n);
            }
            p = p.saturating_mul(10);
        }
        // A spread of values (a fixed LCG, no randomness in tests).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            cases.push(x as i64);
            cases.push((x >> 33) as i64);
        }
        for n in cases {
            assert_eq!(Decimal::new(n).as_bytes(), n.to_string().as_bytes(), "{n}");
        }
    }

    #[test]
    fn value_range_finds_exact_name() {
        let cases: &[RangeCase<'_>] = &[
            ("simple", b"route=v; Path=/", Some(6..7)),
            ("spaces", b" route = v ; x", Some(9..10)),
            ("empty_value", b"route=", Some(6..6)),
            ("blank_value", b"route=   ;", Some(9..9)),
            ("other_name", b"xroute=v", None),
            ("equals_in_attribute_only", b"route; a=b", None),
            ("empty", b"", None),
        ];
        for (name, input, want) in cases {
            assert_eq!(value_range(input, "route"), *want, "{name}");
        }
    }

    #[test]
    fn edit_keeps_sensitive_flag() {
        let conf = StickyConf {
            mode: Mode::Rewrite,
            ..StickyConf::default()
        };
        let mut v = HeaderValue::from_static("route=a");
        v.set_sensitive(true);
        let mut h = HeaderMap::new();
        h.insert(SET_COOKIE, v);
        apply(&conf, StatusCode::OK, &mut h, SID, &hit(NOW), NOW, false);
        let out = h.get(SET_COOKIE).expect("kept");
        assert!(out.is_sensitive());
        assert_eq!(out.as_bytes(), format!("route={SID}").as_bytes());
    }
}
