//! Whole configurations that must load: the realistic Tengine-style
//! `conf/tengine/nginx.conf` with its typed values asserted (defaults, inheritance,
//! every `session_sticky` option), and every shipped file in `conf/` and
//! `conf/examples/`, each also surviving a `-T`-style dump and reload.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sticky_proxy::config::{
    self, AccessLog, AccessLogTarget, Config, Escape, LocationMatch, LogLevel, ServerName,
    WorkerProcesses,
};
use sticky_proxy::sticky::{Hash, Mode, StickyConf, UNLIMITED_SECS};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(rel: &str) -> (Config, Vec<config::ConfigWarning>) {
    let path = root().join(rel);
    config::load(&path).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn tengine_config_main_and_events() {
    let (c, warnings) = load("conf/tengine/nginx.conf");
    assert_eq!(c.main.worker_processes, WorkerProcesses::Count(4));
    assert_eq!(c.main.worker_rlimit_nofile, Some(65535));
    assert_eq!(c.main.pid, Some(PathBuf::from("/tmp/sticky-proxy.pid")));
    assert_eq!(c.main.error_log.path, "/tmp/sticky-proxy-error.log");
    assert_eq!(c.main.error_log.level, LogLevel::Warn);
    assert_eq!(c.main.worker_connections, 4096);
    let warned: Vec<String> = warnings.iter().map(|w| w.message.clone()).collect();
    for name in ["user", "use", "multi_accept"] {
        assert!(
            warned.iter().any(|m| m.starts_with(&format!("\"{name}\""))),
            "no warning for {name}: {warned:?}"
        );
    }
    // `include mime.types` and `default_type` are in force for file serving.
    let files = &c.http.servers[0].conf.files;
    assert_eq!(
        files.types.get("css").map(|v| v.as_bytes()),
        Some(&b"text/css"[..])
    );
    assert_eq!(
        files.types.get("jpg").map(|v| v.as_bytes()),
        Some(&b"image/jpeg"[..])
    );
    assert_eq!(files.default_type, "application/octet-stream");
    assert!(!warned.iter().any(|m| m.starts_with("\"types\"")));
    // `sendfile on` and `tcp_nopush on` act (and do not warn).
    assert!(files.sendfile && files.tcp_nopush);
    assert!(!warned
        .iter()
        .any(|m| m.starts_with("\"sendfile\"") || m.starts_with("\"tcp_nopush\"")));
}

#[test]
fn tengine_config_upstreams_and_every_sticky_option() {
    let (c, _) = load("conf/tengine/nginx.conf");
    let names: Vec<&str> = c.http.upstreams.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        names,
        ["shop", "java", "php", "api", "static", "127.0.0.1:9501"]
    );

    let shop = c.http.upstream("shop").expect("shop");
    assert!(!shop.implicit);
    let peers: Vec<(&str, u32, u32, Duration, bool, bool)> = shop
        .peers
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.weight,
                p.max_fails,
                p.fail_timeout,
                p.backup,
                p.down,
            )
        })
        .collect();
    assert_eq!(
        peers,
        [
            ("127.0.0.1:9001", 3, 2, secs(20), false, false),
            ("127.0.0.1:9002", 1, 1, secs(10), false, false),
            ("127.0.0.1:9003", 1, 1, secs(10), true, false),
            ("127.0.0.1:9004", 1, 1, secs(10), false, true),
        ]
    );
    assert_eq!(shop.peers[0].addr, addr("127.0.0.1:9001"));
    assert_eq!(shop.peers[0].server, "127.0.0.1:9001");
    assert_eq!(
        shop.sticky,
        Some(StickyConf {
            cookie: "SHOPSRV".into(),
            domain: Some(".shop.example".into()),
            path: "/".into(),
            maxage: Some(86400),
            mode: Mode::Insert,
            indirect: true,
            maxidle: Some(1800),
            maxlife: Some(28800),
            fallback: true,
            hash: Hash::Md5,
            ..StickyConf::default()
        })
    );
    assert_eq!(shop.keepalive, Some(32));
    assert_eq!(shop.keepalive_timeout, secs(30));
    assert_eq!(shop.keepalive_requests, 500);

    let java = c
        .http
        .upstream("java")
        .and_then(|u| u.sticky.clone())
        .expect("java sticky");
    assert_eq!(
        (java.mode, java.fallback, java.cookie.as_str()),
        (Mode::Rewrite, false, "JSESSIONID")
    );
    assert_eq!(
        (java.maxidle, java.maxlife, java.maxage),
        (None, None, None)
    );

    let php = c.http.upstream("php").expect("php");
    let sticky = php.sticky.clone().expect("php sticky");
    assert_eq!(
        (sticky.mode, sticky.indirect, sticky.hash),
        (Mode::Prefix, false, Hash::Plain)
    );
    let ids: Vec<Option<&str>> = php.peers.iter().map(|p| p.id.as_deref()).collect();
    assert_eq!(ids, [Some("php-a"), Some("php-b")]);

    let api = c.http.upstream("api").expect("api");
    let sticky = api.sticky.clone().expect("api sticky");
    assert_eq!(
        (sticky.maxlife, sticky.maxidle),
        (Some(3600), Some(UNLIMITED_SECS))
    );
    assert!(sticky.timestamps());
    assert!(!api.peers.is_empty());
    for p in &api.peers {
        assert_eq!(p.server, "localhost:9301");
        assert!(p.addr.ip().is_loopback());
        assert_eq!(p.name, p.addr.to_string());
    }

    let st = c.http.upstream("static").expect("static");
    assert_eq!(st.sticky, None);
    assert_eq!(
        (st.keepalive, st.keepalive_timeout, st.keepalive_requests),
        (None, secs(60), 1000)
    );

    let implicit = &c.http.upstreams[5];
    assert!(implicit.implicit);
    assert_eq!(implicit.peers.len(), 1);
    assert_eq!(implicit.peers[0].name, "127.0.0.1:9501");
}

#[test]
fn tengine_config_log_formats() {
    let (c, _) = load("conf/tengine/nginx.conf");
    let mut names: Vec<&String> = c.http.log_formats.keys().collect();
    names.sort();
    assert_eq!(names, ["combined", "json", "main"]);
    assert_eq!(c.http.log_format_escapes["json"], Escape::Json);
    assert_eq!(c.http.log_format_escapes["main"], Escape::Default);
    // Strings of a log_format are concatenated.
    assert!(c.http.log_formats["main"]
        .source
        .ends_with("sticky=$sticky_status/$sticky_sid"));
    assert!(c.http.log_formats["main"]
        .source
        .contains("\"$http_referer\" \"$http_user_agent\""));
    assert_eq!(
        c.http.log_formats["combined"].source,
        "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\""
    );
}

#[test]
fn tengine_config_servers_locations_and_inheritance() {
    let (c, _) = load("conf/tengine/nginx.conf");
    assert_eq!(c.http.servers.len(), 3);

    let s = &c.http.servers[0];
    assert_eq!(s.listens.len(), 1);
    assert_eq!(s.listens[0].addr, addr("127.0.0.1:8080"));
    assert!(s.listens[0].default_server);
    assert_eq!(s.listens[0].backlog, 1024);
    let names: Vec<String> = s.names.iter().map(|n| format!("{n:?}")).collect();
    assert_eq!(
        names,
        ["Exact(\"shop.example\")", "Exact(\"www.shop.example\")"]
    );
    // http-level values reach the server.
    assert!(!s.conf.server_tokens);
    assert_eq!(s.conf.client_max_body_size, 20 << 20);
    assert_eq!(s.conf.proxy_connect_timeout, secs(5));
    assert_eq!(s.conf.proxy_read_timeout, secs(30));
    assert_eq!(s.conf.proxy_send_timeout, secs(60));
    assert_eq!(s.conf.proxy_set_headers.len(), 3);
    assert_eq!(
        s.conf.access_log,
        AccessLog::On(vec![AccessLogTarget {
            path: PathBuf::from("/tmp/sticky-proxy-access.log"),
            format: "main".into(),
            condition: None,
            syslog: None,
        }])
    );
    assert_eq!(s.connection.keepalive_timeout, secs(65));
    assert_eq!(s.connection.client_header_timeout, secs(60));
    assert_eq!(s.connection.large_client_header_buffers, (4, 8192));
    assert!(s.conf.proxy_pass.is_none());

    let locs = &s.locations;
    assert_eq!(locs.len(), 5);
    // = /healthz
    assert!(matches!(&locs[0].matcher, LocationMatch::Exact(u) if u == "/healthz"));
    let ret = locs[0].conf.return_.clone().expect("return");
    assert_eq!(ret.code, 200);
    assert_eq!(ret.text.map(|t| t.source), Some("ok\n".to_string()));
    assert_eq!(locs[0].conf.access_log, AccessLog::Off);
    // location /
    assert!(
        matches!(&locs[1].matcher, LocationMatch::Prefix { uri, stop_regex: false } if uri == "/")
    );
    let pp = locs[1].conf.proxy_pass.clone().expect("proxy_pass");
    assert_eq!(
        (pp.upstream, pp.proxy_host.as_str(), pp.uri),
        (0, "shop", None)
    );
    assert_eq!(locs[1].conf.sticky_hide_cookie.as_deref(), Some("shop"));
    assert_eq!(locs[1].conf.proxy_set_headers.len(), 3);
    // ^~ /static/ replaces the inherited header list wholesale.
    assert!(
        matches!(&locs[2].matcher, LocationMatch::Prefix { uri, stop_regex: true } if uri == "/static/")
    );
    let pp = locs[2].conf.proxy_pass.clone().expect("proxy_pass");
    assert_eq!((pp.upstream, pp.uri.as_deref()), (4, Some("/")));
    let headers: Vec<(&str, &str)> = locs[2]
        .conf
        .proxy_set_headers
        .iter()
        .map(|(n, t)| (n.name().as_str(), t.source.as_str()))
        .collect();
    assert_eq!(headers, [("host", "static.internal")]);
    // ~* regex
    match &locs[3].matcher {
        LocationMatch::Regex {
            re,
            case_insensitive,
            source,
        } => {
            assert!(*case_insensitive);
            assert_eq!(source, "\\.(png|jpe?g|gif|css|js)$");
            assert!(re.is_match("/img/A.PNG"));
            assert!(!re.is_match("/img/a.png.txt"));
        }
        other => panic!("expected regex, got {other:?}"),
    }
    // /api/ with a nested regex location inheriting from it.
    let api = &locs[4];
    assert_eq!(api.conf.proxy_read_timeout, secs(120));
    assert_eq!(api.conf.proxy_next_upstream.statuses, [502, 503]);
    assert!(api.conf.proxy_next_upstream.error && api.conf.proxy_next_upstream.timeout);
    assert_eq!(api.conf.proxy_next_upstream_tries, 3);
    assert_eq!(api.nested.len(), 1);
    let upload = &api.nested[0];
    assert!(matches!(
        &upload.matcher,
        LocationMatch::Regex {
            case_insensitive: false,
            ..
        }
    ));
    assert_eq!(upload.conf.client_max_body_size, 0);
    assert_eq!(upload.conf.proxy_read_timeout, secs(120));
    assert_eq!(upload.conf.proxy_next_upstream_tries, 3);
    assert_eq!(upload.conf.proxy_connect_timeout, secs(5));
    assert_eq!(upload.conf.proxy_pass.as_ref().map(|p| p.upstream), Some(3));

    let s = &c.http.servers[1];
    assert!(matches!(
        &s.names[0],
        ServerName::LeadingWildcard { suffix, dot_form: false } if suffix == ".java.example"
    ));
    match &s.names[1] {
        ServerName::Regex(re) => assert!(re.is_match("APP12.example.com")),
        other => panic!("expected regex, got {other:?}"),
    }
    assert_eq!(s.connection.keepalive_timeout, secs(10));
    assert_eq!(
        s.locations[0].conf.proxy_http_version,
        http::Version::HTTP_11
    );
    assert_eq!(s.conf.proxy_http_version, http::Version::HTTP_10);
    let legacy = s.locations[1].conf.proxy_pass.clone().expect("proxy_pass");
    assert_eq!(
        (
            legacy.upstream,
            legacy.proxy_host.as_str(),
            legacy.uri.as_deref()
        ),
        (5, "127.0.0.1:9501", Some("/old/"))
    );

    let s = &c.http.servers[2];
    assert!(
        matches!(&s.names[0], ServerName::TrailingWildcard { prefix } if prefix == "php.example.")
    );
    assert_eq!(
        s.conf.access_log,
        AccessLog::On(vec![AccessLogTarget {
            path: PathBuf::from("/tmp/sticky-proxy-php.log"),
            format: "json".into(),
            condition: None,
            syslog: None,
        }])
    );
    let ret = s.locations[1].conf.return_.clone().expect("return");
    assert_eq!(ret.code, 301);
    assert_eq!(
        ret.text.map(|t| t.source).as_deref(),
        Some("http://php.example/status/")
    );
}

#[test]
fn sticky_conf_is_the_documented_demo() {
    let (c, _) = load("conf/sticky.conf");
    let demo = c.http.upstream("demo").expect("demo upstream");
    let names: Vec<&str> = demo.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["127.0.0.1:8081", "127.0.0.1:8082"]);
    let sticky = demo.sticky.clone().expect("sticky");
    assert_eq!(sticky.cookie, "_srv_id");
    assert_eq!(sticky.maxage, Some(3600));
    assert_eq!(
        (sticky.mode, sticky.indirect, sticky.fallback),
        (Mode::Insert, true, true)
    );
    let listens: Vec<SocketAddr> = c.http.servers.iter().map(|s| s.listens[0].addr).collect();
    assert_eq!(
        listens,
        [
            addr("127.0.0.1:8081"),
            addr("127.0.0.1:8082"),
            addr("127.0.0.1:8080")
        ]
    );
    let bodies: Vec<(u16, String)> = c.http.servers[..2]
        .iter()
        .map(|s| {
            let r = s.return_.clone().expect("return");
            (r.code, r.text.map(|t| t.source).unwrap_or_default())
        })
        .collect();
    assert_eq!(
        bodies,
        [
            (200, "Hello, world\n".to_string()),
            (503, "Service unavailable\n".to_string())
        ]
    );
    let front = &c.http.servers[2];
    assert_eq!(
        front.locations[0]
            .conf
            .proxy_pass
            .as_ref()
            .map(|p| p.upstream),
        Some(0)
    );
}

fn conf_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["conf", "conf/examples"] {
        for entry in std::fs::read_dir(root().join(dir)).expect("read conf dir") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "conf") {
                files.push(path);
            }
        }
    }
    files.push(root().join("conf/tengine/nginx.conf"));
    files.sort();
    files
}

#[test]
fn every_shipped_config_loads_and_survives_a_dump() {
    let files = conf_files();
    assert!(files.len() >= 7, "{files:?}");
    for path in files {
        let (c, _) = config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!c.http.servers.is_empty(), "{}", path.display());
        // -T: the expanded tree written back as text loads to the same shape.
        let tree = config::include::load(&path).expect("tree");
        let text = config::parse::dump(&tree);
        let (again, _) = config::load_str(&text, Path::new(&path))
            .unwrap_or_else(|e| panic!("{} after dump: {e}\n{text}", path.display()));
        assert_eq!(again.http.upstreams.len(), c.http.upstreams.len());
        assert_eq!(again.http.servers.len(), c.http.servers.len());
        for (a, b) in again.http.upstreams.iter().zip(&c.http.upstreams) {
            assert_eq!(a, b, "{}", path.display());
        }
    }
}

#[test]
fn every_example_covers_its_mode() {
    let cases: &[(&str, Mode, bool, Hash, bool)] = &[
        (
            "conf/examples/insert-indirect.conf",
            Mode::Insert,
            true,
            Hash::Md5,
            true,
        ),
        (
            "conf/examples/rewrite.conf",
            Mode::Rewrite,
            false,
            Hash::Md5,
            true,
        ),
        (
            "conf/examples/prefix.conf",
            Mode::Prefix,
            false,
            Hash::Md5,
            true,
        ),
        (
            "conf/examples/plain-ids.conf",
            Mode::Insert,
            false,
            Hash::Plain,
            true,
        ),
        (
            "conf/examples/fallback-off.conf",
            Mode::Insert,
            false,
            Hash::Md5,
            false,
        ),
    ];
    for (file, mode, indirect, hash, fallback) in cases {
        let (c, _) = load(file);
        let sticky = c.http.upstreams[0].sticky.clone().expect("sticky");
        assert_eq!(
            (sticky.mode, sticky.indirect, sticky.hash, sticky.fallback),
            (*mode, *indirect, *hash, *fallback),
            "{file}"
        );
    }
    let (c, _) = load("conf/examples/insert-indirect.conf");
    let sticky = c.http.upstreams[0].sticky.clone().expect("sticky");
    assert_eq!(
        (sticky.maxidle, sticky.maxlife, sticky.maxage),
        (Some(1800), Some(28800), Some(28800))
    );
    // Ours: the hardened front end and gorouter's learn mode.
    let (c, _) = load("conf/examples/hardened.conf");
    let sticky = c.http.upstreams[0].sticky.clone().expect("sticky");
    assert_eq!(
        (sticky.hash, sticky.sign, sticky.keys.len()),
        (Hash::Hmac, true, 1)
    );
    assert!(sticky.nocache && sticky.attrs.httponly && sticky.attrs.samesite.is_some());
    let (c, _) = load("conf/examples/gorouter-learn.conf");
    let sticky = c.http.upstreams[0].sticky.clone().expect("sticky");
    assert_eq!(
        (sticky.cookie.as_str(), sticky.learn.as_slice(), sticky.hash),
        ("__VCAP_ID__", &["JSESSIONID".to_string()][..], Hash::Plain)
    );
    let (c, _) = load("conf/examples/plain-ids.conf");
    let ids: Vec<Option<&str>> = c.http.upstreams[0]
        .peers
        .iter()
        .map(|p| p.id.as_deref())
        .collect();
    assert_eq!(ids, [Some("a"), Some("b")]);
}
