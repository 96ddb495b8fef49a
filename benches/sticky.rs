//! Criterion bench of the whole per-request sticky work (find + decode + decide +
//! strip + build Set-Cookie) through the `Sticky` facade, for a hit and for a new
//! session. Header maps are rebuilt outside the timed section (`iter_batched`).
//!
//! Run: `cargo bench --bench sticky -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use sticky_proxy::sticky::sid::md5_sid;
use sticky_proxy::sticky::{Mode, SidIndex, Sticky, StickyConf};

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

fn per_request(c: &mut Criterion) {
    let sid = md5_sid("10.0.23.20:80");
    let ts = StickyConf {
        cookie: "LBSID".into(),
        indirect: true,
        maxidle: Some(30),
        maxlife: Some(3600),
        ..StickyConf::default()
    };
    let cases = [
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
            "hit/prefix",
            StickyConf {
                mode: Mode::Prefix,
                ..StickyConf::default()
            },
            format!("_ga=GA1.2.3; route={sid}~app42; lang=en"),
        ),
    ];
    let mut group = c.benchmark_group("sticky_per_request");
    for (name, conf, cookie) in cases {
        let s = sticky(conf);
        let req = request(&cookie);
        let resp = response();
        group.bench_function(name, |b| {
            b.iter_batched(
                || (req.clone(), resp.clone()),
                |(mut req, mut resp)| {
                    let choice = s.on_request(&mut req, NOW, |_| true, |_| Some(3));
                    s.on_response(StatusCode::OK, &mut resp, &choice, NOW);
                    black_box((req, resp, choice))
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, per_request);
criterion_main!(benches);
