//! Tengine's `session_sticky` semantics as pure code (spec/session_sticky.md).
//!
//! - [`StickyConf`]: the validated `session_sticky` parameters (built by the config
//!   builder).
//! - `sid`: server ids (md5 / plain) and the sid -> peer index.
//! - `cookie`: request side (find, decode, classify, strip).
//! - `decide`: which peer serves the request.
//! - `set_cookie`: response side (insert / rewrite / prefix).
//!
//! - [`Sticky`]: the per-upstream bundle (conf + sid index) with the two calls the
//!   proxy makes: [`Sticky::on_request`] and [`Sticky::on_response`].
//!
//! Nothing here does I/O or reads the clock: `now` (Unix seconds) is an argument.

pub mod attrs;
pub mod cache;
pub mod cookie;
pub mod decide;
pub mod keys;
pub mod learn;
pub mod set_cookie;
pub mod sid;

pub use attrs::{Attrs, SameSite, Secure};
pub use cookie::{Invalid, StickyCookie};
pub use decide::{Choice, Decision, Outcome};
pub use keys::Keys;
pub use set_cookie::Applied;
pub use sid::SidIndex;

use cookie::Stripped;
use http::header::{Entry, COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use std::cell::RefCell;

/// How the sticky cookie is owned and encoded (spec section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Insert,
    Rewrite,
    Prefix,
}

/// How a server id is derived (spec section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Md5,
    Plain,
    /// `hash=hmac` (ours): truncated HMAC-SHA256 under the first key.
    Hmac,
}

/// "Unlimited" for maxidle/maxlife when only the other one is set: 2^31-1 seconds.
pub const UNLIMITED_SECS: i64 = (1 << 31) - 1;

/// The validated parameters of one `session_sticky` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyConf {
    /// Cookie name, default `route`.
    pub cookie: String,
    pub domain: Option<String>,
    /// Default `/`.
    pub path: String,
    /// `Max-Age` seconds of an inserted cookie; `None` = browser-session cookie.
    pub maxage: Option<i64>,
    pub mode: Mode,
    /// `option=indirect`: the sticky cookie never reaches the backend. Always false
    /// in rewrite mode (the builder warns and clears it).
    pub indirect: bool,
    /// Idle limit in seconds. The builder sets it to [`UNLIMITED_SECS`] when only
    /// `maxlife` was given; `None` when neither was given.
    pub maxidle: Option<i64>,
    /// Lifetime limit in seconds, same rule as `maxidle`.
    pub maxlife: Option<i64>,
    /// `fallback=on` (default true).
    pub fallback: bool,
    pub hash: Hash,
    /// Ours: `httponly`, `secure[=auto]`, `samesite=`, `partitioned`.
    pub attrs: Attrs,
    /// Ours: `key=` / `key_file=` (first signs and makes sids, all verify).
    /// Non-empty exactly when `hash=hmac` or `sign=on`.
    pub keys: Keys,
    /// Ours: `sign=on`, insert mode only: the cookie carries a MAC.
    pub sign: bool,
    /// Ours: `learn=NAME[,NAME]`, insert mode only (gorouter's semantics).
    pub learn: Vec<String>,
    /// Ours: `nocache`: `Cache-Control: private` on a response that inserts.
    pub nocache: bool,
}

impl Default for StickyConf {
    fn default() -> Self {
        StickyConf {
            cookie: "route".to_string(),
            domain: None,
            path: "/".to_string(),
            maxage: None,
            mode: Mode::Insert,
            indirect: false,
            maxidle: None,
            maxlife: None,
            fallback: true,
            hash: Hash::Md5,
            attrs: Attrs::default(),
            keys: Keys::default(),
            sign: false,
            learn: Vec::new(),
            nocache: false,
        }
    }
}

impl StickyConf {
    /// True when the insert-mode cookie carries `SID|LASTSEEN|FIRSTSEEN`.
    pub fn timestamps(&self) -> bool {
        self.mode == Mode::Insert && (self.maxidle.is_some() || self.maxlife.is_some())
    }
}

/// One sticky upstream: its configuration and the sids of its peers (index `i`
/// is peer `i` of the engine's peer list).
#[derive(Debug, Clone)]
pub struct Sticky {
    pub conf: StickyConf,
    pub index: SidIndex,
    /// The insert-mode `Set-Cookie` value made last for each peer, with what it
    /// depends on besides the peer: `(now, firstseen)` (see [`Sticky::key`]).
    /// Every new session of a peer within one second gets the same value, so
    /// it is made once per peer and second instead of once per response.
    made: RefCell<Vec<Option<Made>>>,
}

/// An inserted value and its key.
type Made = ((i64, i64), HeaderValue);

impl Sticky {
    pub fn new(conf: StickyConf, index: SidIndex) -> Sticky {
        let made = RefCell::new(vec![None; index.len()]);
        Sticky { conf, index, made }
    }

    /// What an inserted value depends on besides the peer: the clock only with
    /// timestamps or `maxage`, FIRSTSEEN only with timestamps, and TLS only
    /// with `secure=auto` (folded into the FIRSTSEEN slot's sign: a real
    /// FIRSTSEEN is never negative).
    fn key(&self, now: i64, firstseen: i64, tls: bool) -> (i64, i64) {
        let (now, first) = match (self.conf.timestamps(), self.conf.maxage.is_some()) {
            (true, _) => (now, firstseen),
            (false, true) => (now, 0),
            (false, false) => (0, 0),
        };
        let tls_only = tls && self.conf.attrs.secure == Secure::Auto;
        (now, if tls_only { -1 - first } else { first })
    }

    /// The insert-mode value for `peer` (whose sid is `sid`), made again only
    /// when its key changed.
    fn inserted(
        &self,
        peer: usize,
        sid: &str,
        now: i64,
        firstseen: i64,
        tls: bool,
    ) -> Option<HeaderValue> {
        let key = self.key(now, firstseen, tls);
        let mut made = self.made.borrow_mut();
        if let Some(Some((k, v))) = made.get(peer) {
            if *k == key {
                return Some(v.clone());
            }
        }
        let value = set_cookie::insert_value(&self.conf, sid, now, firstseen, tls)?;
        // A peer with a sid has a slot: `made` has one per entry of `index`.
        if let Some(slot) = made.get_mut(peer) {
            *slot = Some((key, value.clone()));
        }
        Some(value)
    }

    /// Request side, all in one: find and decode the cookie in `headers`, decide
    /// the peer (`is_up(i)`: health of peer `i`; `choose(exclude)`: the
    /// balancer's pick skipping `exclude`), then strip the `Cookie` header(s) for
    /// forwarding. On [`Decision::Refuse`] answer 502 without a sticky cookie.
    pub fn on_request<U, C>(&self, headers: &mut HeaderMap, now: i64, is_up: U, choose: C) -> Choice
    where
        U: Fn(usize) -> bool,
        C: FnOnce(Option<usize>) -> Option<usize>,
    {
        let conf = &self.conf;
        if !conf.learn.is_empty() {
            // Learn mode: our cookie counts only with a learned one (gorouter).
            let choice = self.decide_request(headers, now, is_up, choose);
            self.strip(headers);
            return choice;
        }
        let mut entry = match headers.entry(COOKIE) {
            Entry::Vacant(_) => {
                let absent = StickyCookie::Absent;
                return decide::decide(conf, &absent, &self.index, now, is_up, choose);
            }
            // The usual request: one `Cookie` header, parsed once for both the
            // sticky value and the forwarded form, with one header lookup.
            Entry::Occupied(e) if e.iter().nth(1).is_none() => e,
            // Several `Cookie` headers: search them all, then strip each.
            Entry::Occupied(_) => {
                let found = cookie::read(conf, headers, now);
                let choice = decide::decide(conf, &found, &self.index, now, is_up, choose);
                cookie::strip(conf, headers);
                return choice;
            }
        };
        let only = entry.get();
        let sensitive = only.is_sensitive();
        let (value, stripped) = cookie::scan_value(conf, only.as_bytes());
        let (found, peer) = match value {
            None => (StickyCookie::Absent, None),
            Some(v) => cookie::decode_indexed(conf, v, &self.index, now),
        };
        let lookup = |sid: &str| match peer {
            Some(p) => Some((p, false)),
            None => self.index.find(sid),
        };
        let choice = decide::decide_with(conf, &found, lookup, now, is_up, choose);
        match stripped {
            Stripped::Keep => {}
            Stripped::Remove => {
                entry.remove();
            }
            Stripped::Replace(mut v) => {
                v.set_sensitive(sensitive);
                entry.insert(v);
            }
        }
        choice
    }

    /// The request side without the stripping: what [`Sticky::on_request`]
    /// decides, from headers it only reads. For the proxy when
    /// `proxy_set_header` reads `$sticky_*` before the headers are edited;
    /// [`Sticky::strip`] must follow.
    pub fn decide_request<U, C>(&self, headers: &HeaderMap, now: i64, is_up: U, choose: C) -> Choice
    where
        U: Fn(usize) -> bool,
        C: FnOnce(Option<usize>) -> Option<usize>,
    {
        let conf = &self.conf;
        let learned = if conf.learn.is_empty() {
            None
        } else {
            learn::in_request(conf, headers)
        };
        let found = if conf.learn.is_empty() || learned.is_some() {
            cookie::read(conf, headers, now)
        } else {
            StickyCookie::Absent
        };
        let choice = decide::decide(conf, &found, &self.index, now, is_up, choose);
        Choice { learned, ..choice }
    }

    /// The forwarded `Cookie` header(s) (see [`cookie::strip`]).
    pub fn strip(&self, headers: &mut HeaderMap) {
        cookie::strip(&self.conf, headers);
    }

    /// The name of the learned cookie of `choice` or of the response
    /// (`applied`), for `$sticky_learned`: the response's when it set one.
    pub fn learned_name(&self, choice: &Choice, applied: Option<&Applied>) -> Option<&str> {
        let i = applied.and_then(|a| a.learned).or(choice.learned)?;
        self.conf.learn.get(usize::from(i)).map(String::as_str)
    }

    /// The sid of the peer a choice routes to, for `$sticky_sid` (`None` when
    /// refused).
    pub fn sid(&self, choice: &Choice) -> Option<&str> {
        choice.decision.peer().and_then(|p| self.index.sid(p))
    }

    /// Response side: set or edit the sticky `Set-Cookie` for the peer of
    /// `choice` (after any [`decide::after_failure`]). No-op for a
    /// refused choice and for status >= 400. `tls`: the request arrived over
    /// TLS (`secure=auto`).
    pub fn on_response(
        &self,
        status: StatusCode,
        headers: &mut HeaderMap,
        choice: &Choice,
        now: i64,
        tls: bool,
    ) -> Applied {
        let (Some(peer), Some(sid)) = (choice.decision.peer(), self.sid(choice)) else {
            return Applied::default();
        };
        let ours = || self.inserted(peer, sid, now, choice.firstseen, tls);
        set_cookie::apply_with(&self.conf, status, headers, sid, choice, now, tls, ours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const NOW: i64 = 1_571_297_169;

    /// Inserted values reused within a second are exactly what making them
    /// afresh gives, per peer, clock and FIRSTSEEN.
    #[test]
    fn inserted_values_are_reused_only_while_they_would_be_the_same() {
        let peers = ["10.0.0.1:80", "10.0.0.2:80"];
        let confs = [
            StickyConf::default(),
            StickyConf {
                maxage: Some(60),
                ..StickyConf::default()
            },
            StickyConf {
                maxidle: Some(30),
                maxlife: Some(600),
                ..StickyConf::default()
            },
        ];
        for conf in confs {
            let index = SidIndex::from_peers(&conf, peers.iter().map(|p| (*p, None)));
            let sticky = Sticky::new(conf.clone(), index);
            // (peer, now, firstseen), repeated, interleaved and changing.
            let calls = [
                (0, NOW, NOW),
                (1, NOW, NOW),
                (0, NOW, NOW),
                (0, NOW, NOW - 5),
                (0, NOW + 1, NOW + 1),
                (1, NOW + 1, NOW + 1),
                (1, NOW + 1, NOW + 1),
            ];
            for (peer, now, firstseen) in calls {
                let choice = Choice::new(Decision::New(peer), Outcome::New, firstseen);
                let mut got = HeaderMap::new();
                sticky.on_response(StatusCode::OK, &mut got, &choice, now, false);
                let mut want = HeaderMap::new();
                let sid = sticky.index.sid(peer).expect("sid");
                set_cookie::apply(&conf, StatusCode::OK, &mut want, sid, &choice, now, false);
                assert_eq!(got, want, "{conf:?} {peer} {now} {firstseen}");
                assert_eq!(got.len(), 1);
            }
        }
    }

    /// gorouter's scenario: `cookie=__VCAP_ID__ learn=JSESSIONID hash=plain`.
    #[test]
    fn learn_mode_routes_only_with_the_learned_cookie_and_inserts_only_when_learned() {
        let conf = StickyConf {
            cookie: "__VCAP_ID__".into(),
            learn: vec!["JSESSIONID".into()],
            hash: Hash::Plain,
            ..StickyConf::default()
        };
        let peers = [
            ("10.0.0.1:80", Some("app-0")),
            ("10.0.0.2:80", Some("app-1")),
        ];
        let sticky = Sticky::new(conf.clone(), SidIndex::from_peers(&conf, peers));
        let rr = |_: Option<usize>| Some(0);
        // (request Cookie, decision, outcome, learned)
        let cases = [
            ("", Decision::New(0), Outcome::New, None),
            ("__VCAP_ID__=app-1", Decision::New(0), Outcome::New, None),
            ("JSESSIONID=abc", Decision::New(0), Outcome::New, Some(0)),
            (
                "JSESSIONID=abc; __VCAP_ID__=app-1",
                Decision::Pinned(1),
                Outcome::Hit,
                Some(0),
            ),
            (
                "__VCAP_ID__=app-9; JSESSIONID=abc",
                Decision::Fallback(0),
                Outcome::Unknown,
                Some(0),
            ),
        ];
        for (cookie, decision, outcome, learned) in cases {
            let mut h = HeaderMap::new();
            if !cookie.is_empty() {
                h.insert(COOKIE, HeaderValue::from_static(cookie));
            }
            let c = sticky.on_request(&mut h, NOW, |_| true, rr);
            assert_eq!(
                (c.decision, c.outcome, c.learned),
                (decision, outcome, learned),
                "{cookie}"
            );
            assert_eq!(sticky.learned_name(&c, None), learned.map(|_| "JSESSIONID"));
        }
        // Response: ours only where the backend sets JSESSIONID (or on a re-pin).
        let new = Choice::new(Decision::New(1), Outcome::New, NOW);
        let fallback = Choice::new(Decision::Fallback(1), Outcome::Unknown, NOW);
        let cases: [(&Choice, Option<&str>, Vec<&str>); 4] = [
            (&new, None, vec![]),
            (
                &new,
                Some("JSESSIONID=abc; Path=/"),
                vec!["JSESSIONID=abc; Path=/", "__VCAP_ID__=app-1; Path=/"],
            ),
            (&fallback, None, vec!["__VCAP_ID__=app-1; Path=/"]),
            (&new, Some("other=1"), vec!["other=1"]),
        ];
        for (choice, backend, want) in cases {
            let mut h = HeaderMap::new();
            if let Some(b) = backend {
                h.insert(http::header::SET_COOKIE, HeaderValue::from_static(b));
            }
            let applied = sticky.on_response(StatusCode::OK, &mut h, choice, NOW, false);
            let got: Vec<&str> = h
                .get_all(http::header::SET_COOKIE)
                .iter()
                .map(|v| v.to_str().expect("ascii"))
                .collect();
            assert_eq!(got, want, "{backend:?}");
            assert_eq!(
                applied.set,
                want.iter().any(|v| v.starts_with("__VCAP_ID__"))
            );
        }
    }

    #[test]
    fn nocache_marks_only_responses_that_set_the_cookie() {
        let conf = StickyConf {
            nocache: true,
            ..StickyConf::default()
        };
        let sticky = Sticky::new(
            conf.clone(),
            SidIndex::from_peers(&conf, [("10.0.0.1:80", None)]),
        );
        let new = Choice::new(Decision::New(0), Outcome::New, NOW);
        let hit = Choice::new(Decision::Pinned(0), Outcome::Hit, NOW);
        // (choice, status, backend Cache-Control, Cache-Control after)
        let cases: [(&Choice, u16, Option<&str>, Vec<&str>); 5] = [
            (&new, 200, None, vec!["private"]),
            (
                &new,
                200,
                Some("public, max-age=60"),
                vec!["public, max-age=60", "private"],
            ),
            (&new, 200, Some("no-store"), vec!["no-store"]),
            (&hit, 200, Some("public"), vec!["public"]),
            (&new, 404, Some("public"), vec!["public"]),
        ];
        for (choice, status, backend, want) in cases {
            let mut h = HeaderMap::new();
            if let Some(b) = backend {
                h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static(b));
            }
            let status = StatusCode::from_u16(status).expect("status");
            sticky.on_response(status, &mut h, choice, NOW, false);
            let got: Vec<&str> = h
                .get_all(http::header::CACHE_CONTROL)
                .iter()
                .map(|v| v.to_str().expect("ascii"))
                .collect();
            assert_eq!(got, want, "{choice:?} {status} {backend:?}");
        }
    }

    /// `on_request` (one pass over a single `Cookie` header) must do exactly what
    /// its three steps do one after the other.
    #[test]
    fn on_request_is_read_decide_strip() {
        let peers = ["10.0.23.20:80", "10.0.23.21:80", "10.0.23.22:80"];
        let sid = sid::md5_sid(peers[0]);
        let down = sid::md5_sid(peers[2]);
        let headers: Vec<Vec<String>> = vec![
            vec![],
            vec!["a=1".into()],
            vec![format!("a=1; route={sid}; b=2")],
            vec![format!("route={sid}")],
            vec![format!("route={sid}|{NOW}|{NOW}; x=1")],
            vec![format!("route={sid}|{}|{NOW}", NOW - 100)],
            vec![format!("route={down}|{NOW}|{NOW}")],
            vec![format!("route={down}")],
            vec![format!("route={sid}~app; x=1")],
            vec!["route=zz~app".into()],
            vec!["route=zz".into()],
            vec!["route=".into()],
            vec!["".into()],
            vec![format!("route=\"{sid}\"")],
            vec!["a=1".into(), format!("route={sid}")],
            vec![format!("route={sid}"), "route=zz".into()],
        ];
        for mode in [Mode::Insert, Mode::Rewrite, Mode::Prefix] {
            for (indirect, ts, fallback) in [
                (false, false, true),
                (true, false, true),
                (true, true, false),
                (false, true, true),
            ] {
                let conf = StickyConf {
                    mode,
                    indirect: indirect && mode == Mode::Insert,
                    maxidle: ts.then_some(30),
                    maxlife: ts.then_some(3600),
                    fallback,
                    ..StickyConf::default()
                };
                let index = SidIndex::from_peers(&conf, peers.iter().map(|p| (*p, None)));
                let sticky = Sticky::new(conf.clone(), index.clone());
                for values in &headers {
                    let mut h = HeaderMap::new();
                    h.insert("host", HeaderValue::from_static("example.com"));
                    for v in values {
                        let mut v = HeaderValue::from_str(v).expect("valid test header");
                        v.set_sensitive(true);
                        h.append(http::header::COOKIE, v);
                    }
                    let mut want_h = h.clone();
                    let is_up = |i: usize| i != 2;
                    let choose =
                        |ex: Option<usize>| [1usize, 0].into_iter().find(|i| Some(*i) != ex);
                    let found = cookie::read(&conf, &want_h, NOW);
                    let want = decide::decide(&conf, &found, &index, NOW, is_up, choose);
                    cookie::strip(&conf, &mut want_h);
                    let got = sticky.on_request(&mut h, NOW, is_up, choose);
                    assert_eq!(got, want, "{conf:?} {values:?}");
                    assert_eq!(h, want_h, "{conf:?} {values:?}");
                    let sens = |m: &HeaderMap| -> Vec<bool> {
                        m.get_all(http::header::COOKIE)
                            .iter()
                            .map(|v| v.is_sensitive())
                            .collect()
                    };
                    assert_eq!(sens(&h), sens(&want_h), "{conf:?} {values:?}");
                }
            }
        }
    }
}
