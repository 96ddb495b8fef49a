//! Heap allocations of the per-request sticky work, counted with a counting
//! global allocator: the hit path must allocate at most twice (issue 3).
//! Counts are of a second request in the same second as the first: an
//! inserted `Set-Cookie` value is made once per peer and second (two
//! allocations: the value and its shared buffer) and reused after that.
//!
//! The crate root forbids `unsafe`, but this integration test is its own crate:
//! implementing `GlobalAlloc` is `unsafe` by definition (the trait's contract
//! cannot be checked by the compiler). The impl only forwards to `System` and
//! bumps a counter, so the contract is `System`'s own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use sticky_proxy::sticky::{Choice, Decision, Mode, SidIndex, Sticky, StickyConf};

struct Counting;

thread_local! {
    /// Allocations made by this thread while counting is on (None = off).
    static COUNT: Cell<Option<usize>> = const { Cell::new(None) };
}

fn bump() {
    // `try_with`: the thread-local may already be gone during thread teardown.
    let _ = COUNT.try_with(|c| {
        if let Some(n) = c.get() {
            c.set(Some(n + 1));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; counting touches only a const-initialised thread-local `Cell`,
// which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn count<T>(f: impl FnOnce() -> T) -> (usize, T) {
    COUNT.with(|c| c.set(Some(0)));
    let out = f();
    let n = COUNT.with(|c| c.replace(None)).unwrap_or(0);
    (n, out)
}

const NOW: i64 = 1_571_297_169;
const PEERS: [&str; 4] = [
    "10.0.23.20:80",
    "10.0.23.21:80",
    "10.0.23.22:80",
    "10.0.23.23:80",
];

fn sticky(conf: StickyConf) -> Sticky {
    let index = SidIndex::from_peers(&conf, PEERS.iter().map(|p| (*p, None)));
    Sticky::new(conf, index)
}

fn request(cookie: &str) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(16);
    h.insert(COOKIE, HeaderValue::from_str(cookie).expect("valid"));
    h
}

/// A response map like hyper's: a few headers already there, room for more.
fn response() -> HeaderMap {
    let mut h = HeaderMap::with_capacity(16);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    h.insert(CONTENT_LENGTH, HeaderValue::from_static("42"));
    h
}

/// The whole per-request work: find + decode + decide + strip, then Set-Cookie.
fn per_request(s: &Sticky, req: &mut HeaderMap, resp: &mut HeaderMap) -> Choice {
    let choice = s.on_request(req, NOW, |_| true, |_| Some(1));
    s.on_response(StatusCode::OK, resp, &choice, NOW, false);
    choice
}

#[test]
fn hit_path_allocation_counts() {
    let sid = sticky_proxy::sticky::sid::md5_sid("10.0.23.20:80");
    let ts = StickyConf {
        cookie: "LBSID".into(),
        indirect: true,
        maxidle: Some(30),
        maxlife: Some(3600),
        ..StickyConf::default()
    };
    let cases: Vec<(&str, StickyConf, String, usize)> = vec![
        // Nothing to strip, nothing to set on a hit: zero.
        (
            "insert_direct_hit",
            StickyConf::default(),
            format!("a=1; route={sid}"),
            0,
        ),
        // Rewrite: the request cookie is forwarded as is; no backend Set-Cookie.
        (
            "rewrite_hit",
            StickyConf {
                mode: Mode::Rewrite,
                ..StickyConf::default()
            },
            format!("route={sid}"),
            0,
        ),
        // One for the stripped Cookie value; the refreshed Set-Cookie is the
        // one made for the first request.
        (
            "insert_indirect_timestamps_hit",
            ts.clone(),
            format!("a=1; LBSID={sid}|{NOW}|{NOW}; b=2"),
            1,
        ),
        // The pair was the only cookie: the header is dropped, nothing allocates.
        (
            "insert_indirect_timestamps_hit_only_cookie",
            ts,
            format!("LBSID={sid}|{NOW}|{NOW}"),
            0,
        ),
        // Prefix: one for the forwarded value with `SID~` removed.
        (
            "prefix_hit",
            StickyConf {
                mode: Mode::Prefix,
                ..StickyConf::default()
            },
            format!("route={sid}~app; x=1"),
            1,
        ),
    ];
    for (name, conf, cookie, want) in cases {
        let s = sticky(conf);
        per_request(&s, &mut request(&cookie), &mut response());
        let mut req = request(&cookie);
        let mut resp = response();
        let (n, choice) = count(|| per_request(&s, &mut req, &mut resp));
        assert_eq!(choice.decision, Decision::Pinned(0), "{name}");
        assert_eq!(n, want, "{name}: allocations");
        assert!(n <= 2, "{name}: hit path must allocate at most twice");
    }
}

#[test]
fn new_session_allocates_only_the_set_cookie() {
    let s = sticky(StickyConf::default());
    let mut req = request("a=1");
    let mut resp = response();
    let (first, choice) = count(|| per_request(&s, &mut req, &mut resp));
    assert_eq!(choice.decision, Decision::New(1));
    assert_eq!(first, 2, "the value and its shared buffer");
    let want = format!("route={}; Path=/", s.index.sid(1).expect("sid"));
    assert_eq!(
        resp.get(SET_COOKIE).map(HeaderValue::as_bytes),
        Some(want.as_bytes())
    );
    // Later new sessions of that peer (in that second) reuse it.
    for _ in 0..3 {
        let mut req = request("a=1");
        let mut resp = response();
        let (n, _) = count(|| per_request(&s, &mut req, &mut resp));
        assert_eq!(n, 0);
        assert_eq!(
            resp.get(SET_COOKIE).map(HeaderValue::as_bytes),
            Some(want.as_bytes())
        );
    }
}
