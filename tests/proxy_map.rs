//! `map` (exact, `\` escapes, `~`/`~*` with captures and named groups,
//! `default`, `hostnames` masks, a map of a map, `include` inside) and
//! `split_clients` (MurmurHash2 buckets), against the live proxy, and compared
//! with nginx itself when it is installed.

mod common;

use common::nginx::{summary, Nginx};
use common::*;

/// The inside of `http { }`; `LISTEN` is the address, `INCLUDED` a file of map
/// entries.
const HTTP: &str = r#"
map $arg_k $mapped {
    default "def";
    abc "exact";
    ~^re(?<num>[0-9]+)$ "regex $1 $num";
    ~*^CI "ci";
    \default "escaped";
    include INCLUDED;
}
map $host $site {
    hostnames;
    volatile;
    default "none";
    *.example.com "wild";
    .example.org "dot";
    www.example.* "tail";
    example.net "exact";
}
map $mapped $chained { default "c:$mapped"; }
split_clients "${arg_k}salt" $bucket {
    10% a;
    20.5% b;
    33.33% c;
    * d;
}
server {
    listen LISTEN;
    location /map { return 200 "$mapped|$chained"; }
    location /host { return 200 "$site"; }
    location /split { return 200 "$bucket"; }
}
"#;

async fn text(addr: std::net::SocketAddr, path: &str, host: &str) -> (u16, String) {
    let r = Client::connect(addr)
        .await
        .get(path, &[("host", host)])
        .await;
    (r.status, summary(&r, addr.port()).2)
}

#[tokio::test]
async fn map_and_split_clients_answer_as_nginx() {
    let dir = std::env::temp_dir().join(format!("sticky-proxy-map-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let included = dir.join("extra.map");
    std::fs::write(&included, "from-include \"included\";\n").expect("write");
    let http = HTTP.replace("INCLUDED", &included.display().to_string());
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{{}}}\n",
        http.replace("LISTEN", "127.0.0.1:0")
    ));
    let cases: Vec<(String, &str, &str)> = vec![
        ("/map?k=abc".into(), "x", "exact|c:exact"),
        ("/map?k=ABC".into(), "x", "exact|c:exact"),
        ("/map?k=re42".into(), "x", "regex 42 42|c:regex 42 42"),
        ("/map?k=ci-yes".into(), "x", "ci|c:ci"),
        ("/map?k=default".into(), "x", "escaped|c:escaped"),
        ("/map?k=from-include".into(), "x", "included|c:included"),
        ("/map?k=other".into(), "x", "def|c:def"),
        ("/host".into(), "a.example.com", "wild"),
        ("/host".into(), "example.com", "none"),
        ("/host".into(), "example.org", "dot"),
        ("/host".into(), "b.example.org", "dot"),
        ("/host".into(), "www.example.de", "tail"),
        ("/host".into(), "example.net", "exact"),
        ("/host".into(), "other.test", "none"),
    ];
    for (path, host, want) in &cases {
        assert_eq!(
            text(p.addr, path, host).await,
            (200, want.to_string()),
            "{path} {host}"
        );
    }
    // split_clients: the buckets of 300 keys, and how many fell in each.
    let mut ours = Vec::new();
    for k in 0..300 {
        ours.push(text(p.addr, &format!("/split?k={k}"), "x").await.1);
    }
    let count = |b: &str| ours.iter().filter(|x| x.as_str() == b).count();
    let (a, b, c, d) = (count("a"), count("b"), count("c"), count("d"));
    assert_eq!(a + b + c + d, 300, "{ours:?}");
    // 10%, 20.5%, 33.33%, the rest: loosely, for 300 keys.
    assert!(
        (15..=45).contains(&a) && (40..=85).contains(&b),
        "{a} {b} {c} {d}"
    );
    assert!(
        (75..=125).contains(&c) && (80..=135).contains(&d),
        "{a} {b} {c} {d}"
    );
    let Some(nginx) = Nginx::start(&http) else {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    };
    for (path, host, _) in &cases {
        assert_eq!(
            text(p.addr, path, host).await,
            text(nginx.addr, path, host).await,
            "{path} {host}: ours vs nginx"
        );
    }
    for (k, bucket) in ours.iter().enumerate() {
        let theirs = text(nginx.addr, &format!("/split?k={k}"), "x").await.1;
        assert_eq!(bucket, &theirs, "split_clients key {k}salt");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `geo`: the longest network holding the address, IPv4 and IPv6, the
/// client's address by default or another variable's value; `delete`; a
/// value that is not an address gets the default. The usual allow-list for
/// `limit_req` (`geo` feeding a `map` of the key) loads and limits only the
/// others.
const GEO: &str = r#"
geo $trusted { default 0; 127.0.0.0/8 1; 10.0.0.0/8 2; 127.0.0.1 3; }
geo $arg_ip $byarg {
    default none;
    192.168.0.0/16 lan;
    192.168.1.0/24 office;
    ::1 six;
    2001:db8::/32 doc;
    10.1.0.0/16 a;
    10.9.0.0/16 gone;
    delete 10.9.0.0/16;
}
map $trusted $limit_key { 0 $binary_remote_addr; default ""; }
server {
    listen LISTEN;
    location /geo { return 200 "$trusted $byarg"; }
}
"#;

#[tokio::test]
async fn geo_answers_as_nginx() {
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{{}}}\n",
        GEO.replace("LISTEN", "127.0.0.1:0")
    ));
    let cases = [
        ("/geo", "3 none"),
        ("/geo?ip=192.168.1.5", "3 office"),
        ("/geo?ip=192.168.9.9", "3 lan"),
        ("/geo?ip=::1", "3 six"),
        ("/geo?ip=2001:db8::7", "3 doc"),
        ("/geo?ip=10.1.2.3", "3 a"),
        ("/geo?ip=10.9.0.1", "3 none"),
        ("/geo?ip=x", "3 none"),
    ];
    for (path, want) in cases {
        assert_eq!(
            text(p.addr, path, "x").await,
            (200, want.to_string()),
            "{path}"
        );
    }
    let Some(nginx) = Nginx::start(GEO) else {
        return;
    };
    for (path, _) in cases {
        assert_eq!(
            text(p.addr, path, "x").await,
            text(nginx.addr, path, "x").await,
            "{path}: ours vs nginx"
        );
    }
}
