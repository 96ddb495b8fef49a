//! Criterion bench of the whole per-request sticky work (find + decode + decide +
//! strip + build Set-Cookie) through the `Sticky` facade, for a hit and for a new
//! session. Header maps are rebuilt outside the timed section (`iter_batched`).
//!
//! Run: `cargo bench --bench sticky -- --warm-up-time 1 --measurement-time 3`
//!
//! Exact instruction counts (robust on a noisy machine): with `STICKY_PROFILE`
//! set to a case name (e.g. `hit/insert_indirect_timestamps`) the binary skips
//! criterion and runs that case `STICKY_ITERS` times (default 10000) through the
//! `#[inline(never)]` function `one_request`, so callgrind can count only it:
//!
//! ```sh
//! STICKY_PROFILE=hit/insert_indirect_timestamps valgrind --tool=callgrind \
//!   --toggle-collect='*one_request*' target/release/deps/sticky-<hash>
//! ```

use std::hint::black_box;

use criterion::{BatchSize, Criterion};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use sticky_proxy::sticky::sid::md5_sid;
use sticky_proxy::sticky::{Choice, Hash, Keys, Mode, SidIndex, Sticky, StickyConf};

const NOW: i64 = 1_571_297_169;

fn sticky(conf: StickyConf) -> Sticky {
    let peers: Vec<String> = (0..8).map(|i| format!("10.0.23.{}:80", 20 + i)).collect();
    let index = SidIndex::from_peers(&conf, peers.iter().map(|p| (p.as_str(), None)));
    Sticky::new(conf, index)
}

fn request(cookie: &str) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(16);
    h.insert("host", HeaderValue::from_static("example.com"));
    h.insert("user-agent", HeaderValue::from_static("curl/8.0"));
    h.insert(COOKIE, HeaderValue::from_str(cookie).expect("valid"));
    h
}

fn response() -> HeaderMap {
    let mut h = HeaderMap::with_capacity(16);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    h.insert(CONTENT_LENGTH, HeaderValue::from_static("42"));
    h
}

fn cases() -> Vec<(&'static str, StickyConf, String)> {
    let sid = md5_sid("10.0.23.20:80");
    let ts = StickyConf {
        cookie: "LBSID".into(),
        indirect: true,
        maxidle: Some(30),
        maxlife: Some(3600),
        ..StickyConf::default()
    };
    // Ours: keyed sids and signed cookies (issue 19).
    let keyed = StickyConf {
        hash: Hash::Hmac,
        sign: true,
        keys: Keys::new(["bench-key-0123456789abcdef"]).expect("key"),
        ..ts.clone()
    };
    let keyed_sid = keyed.keys.sid("10.0.23.20:80").expect("sid");
    let body = format!("{keyed_sid}|{NOW}|{NOW}");
    let mac = keyed.keys.sign(body.as_bytes()).expect("mac");
    let signed = format!("{body}|{}", String::from_utf8_lossy(&mac));
    vec![
        (
            "hit/insert_indirect_timestamps",
            ts.clone(),
            format!("_ga=GA1.2.3; LBSID={sid}|{NOW}|{NOW}; lang=en"),
        ),
        (
            "new/insert_indirect_timestamps",
            ts,
            "_ga=GA1.2.3; lang=en".to_string(),
        ),
        (
            "hit/insert_direct",
            StickyConf::default(),
            format!("_ga=GA1.2.3; route={sid}; lang=en"),
        ),
        (
            "new/insert_direct",
            StickyConf::default(),
            "_ga=GA1.2.3; lang=en".to_string(),
        ),
        (
            "hit/hmac_sign_indirect_timestamps",
            keyed.clone(),
            format!("_ga=GA1.2.3; LBSID={signed}; lang=en"),
        ),
        (
            "new/hmac_sign_indirect_timestamps",
            keyed,
            "_ga=GA1.2.3; lang=en".to_string(),
        ),
        (
            "hit/prefix",
            StickyConf {
                mode: Mode::Prefix,
                ..StickyConf::default()
            },
            format!("_ga=GA1.2.3; route={sid}~app42; lang=en"),
        ),
    ]
}

/// The measured work: request side, then response side.
#[inline(never)]
fn one_request(s: &Sticky, req: &mut HeaderMap, resp: &mut HeaderMap) -> Choice {
    let choice = s.on_request(req, NOW, |_| true, |_| Some(3));
    s.on_response(StatusCode::OK, resp, &choice, NOW, false);
    choice
}

/// A copy of `resp` with room for two more headers.
fn with_room(resp: &HeaderMap) -> HeaderMap {
    let mut copy = resp.clone();
    copy.reserve(2);
    copy
}

fn per_request(c: &mut Criterion) {
    let mut group = c.benchmark_group("sticky_per_request");
    for (name, conf, cookie) in cases() {
        let s = sticky(conf);
        let req = request(&cookie);
        let resp = response();
        group.bench_function(name, |b| {
            // The response map has room for the Set-Cookie, as the proxy builds
            // it (`upstream::h1`: the header count plus two); a plain clone has
            // none, so every append would regrow it.
            b.iter_batched(
                || (req.clone(), with_room(&resp)),
                |(mut req, mut resp)| {
                    let choice = one_request(&s, &mut req, &mut resp);
                    black_box((req, resp, choice))
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// `STICKY_PROFILE` mode: run one case in a plain loop (see the module docs).
fn profile(case: &str) {
    let iters: usize = std::env::var("STICKY_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let Some((_, conf, cookie)) = cases().into_iter().find(|(n, _, _)| *n == case) else {
        eprintln!("unknown case {case}");
        std::process::exit(2);
    };
    let s = sticky(conf);
    let req = request(&cookie);
    let resp = response();
    for _ in 0..iters {
        let (mut req, mut resp) = (req.clone(), with_room(&resp));
        let choice = one_request(&s, &mut req, &mut resp);
        black_box((req, resp, choice));
    }
}

fn main() {
    if let Ok(case) = std::env::var("STICKY_PROFILE") {
        profile(&case);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    per_request(&mut c);
    c.final_summary();
}
