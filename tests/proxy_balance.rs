//! Upstream balancing methods against the live proxy: `hash [consistent]` and
//! `ip_hash` placement compared with nginx itself (skipped with a message when
//! nginx is not installed), `least_conn`, `max_conns`, `random`, and
//! `session_sticky` over a hashing method.

mod common;

use std::time::Duration;

use common::*;

fn upstream(backends: &[Backend], method: &str, extra: &str) -> String {
    upstream_with(backends, method, extra, |_| String::new())
}

/// `params(i)` adds parameters to the `server` line of backend `i`.
fn upstream_with(
    backends: &[Backend],
    method: &str,
    extra: &str,
    params: impl Fn(usize) -> String,
) -> String {
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, b)| format!("server {} {};", b.peer(), params(i)))
        .collect();
    format!("upstream app {{ {method} {servers} {extra} }}")
}

fn conf(upstream: &str, location: &str) -> String {
    format!(
        "events {{}}\nhttp {{\n{upstream}\n server {{ listen 127.0.0.1:0; location / {{ proxy_pass http://app; {location} }} }}\n}}\n"
    )
}

/// Which backend answers each of `keys` (as `/?k=KEY`).
async fn placement(addr: std::net::SocketAddr, keys: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for k in keys {
        let r = get(addr, &format!("/?k={k}"), &[]).await;
        out.push(
            r.backend()
                .unwrap_or_else(|| format!("status {}", r.status)),
        );
    }
    out
}

#[tokio::test]
async fn hash_keys_land_where_nginx_puts_them() {
    let backends: Vec<Backend> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| Backend::start(n))
        .collect();
    let keys: Vec<String> = (0..40).map(|i| format!("user{i}")).collect();
    for method in ["hash $arg_k consistent;", "hash $arg_k;"] {
        let up = upstream(&backends, method, "");
        let weighted = upstream_with(&backends, method, "", |i| {
            if i < 2 {
                format!("weight={}", 3 - i)
            } else {
                String::new()
            }
        });
        for text in [&up, &weighted] {
            let p = start_proxy(&conf(text, ""));
            let ours = placement(p.addr, &keys).await;
            let distinct: std::collections::HashSet<&String> = ours.iter().collect();
            assert!(distinct.len() >= 3, "{method}: keys spread: {ours:?}");
            assert_eq!(placement(p.addr, &keys).await, ours, "{method}: stable");
            if let Some(n) = common::nginx::Nginx::start(&format!(
                "{text}\n server {{ listen LISTEN; location / {{ proxy_pass http://app; }} }}"
            )) {
                assert_eq!(
                    placement(n.addr, &keys).await,
                    ours,
                    "{method} {text}: as nginx"
                );
            }
        }
    }
}

#[tokio::test]
async fn consistent_hash_moves_few_keys_when_a_server_is_added() {
    let backends: Vec<Backend> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| Backend::start(n))
        .collect();
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let three = start_proxy(&conf(
        &upstream(&backends[..3], "hash $arg_k consistent;", ""),
        "",
    ));
    let four = start_proxy(&conf(
        &upstream(&backends, "hash $arg_k consistent;", ""),
        "",
    ));
    let before = placement(three.addr, &keys).await;
    let after = placement(four.addr, &keys).await;
    let moved: Vec<usize> = (0..keys.len()).filter(|&i| before[i] != after[i]).collect();
    assert!(
        moved.iter().all(|&i| after[i] == "d"),
        "only to the new server"
    );
    assert!(
        moved.len() < keys.len() / 2,
        "{} of {} moved",
        moved.len(),
        keys.len()
    );
}

#[tokio::test]
async fn ip_hash_pins_a_client_and_matches_nginx() {
    let backends: Vec<Backend> = ["a", "b", "c"].iter().map(|n| Backend::start(n)).collect();
    let text = upstream(&backends, "ip_hash;", "");
    let p = start_proxy(&conf(&text, ""));
    let keys: Vec<String> = (0..6).map(|i| i.to_string()).collect();
    let ours = placement(p.addr, &keys).await;
    assert!(ours.iter().all(|b| *b == ours[0]), "{ours:?}");
    if let Some(n) = common::nginx::Nginx::start(&format!(
        "{text}\n server {{ listen LISTEN; location / {{ proxy_pass http://app; }} }}"
    )) {
        assert_eq!(
            placement(n.addr, &keys).await,
            ours,
            "127.0.0.x lands where nginx puts it"
        );
    }
    // Behind a trusted proxy, realip feeds ip_hash: clients spread.
    let p = start_proxy(&conf(&text, "").replace(
        "server {",
        "set_real_ip_from 127.0.0.1; real_ip_header X-Real-IP; server {",
    ));
    let mut seen = std::collections::HashSet::new();
    for i in 0..30 {
        let ip = format!("198.51.{i}.7");
        let r = get(p.addr, "/", &[("x-real-ip", &ip)]).await;
        let again = get(p.addr, "/", &[("x-real-ip", &ip)]).await;
        assert_eq!(r.backend(), again.backend(), "{ip}");
        seen.insert(r.backend());
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
}

#[tokio::test]
async fn least_conn_and_max_conns_avoid_busy_peers() {
    let backends: Vec<Backend> = ["a", "b"].iter().map(|n| Backend::start(n)).collect();
    for (method, extra) in [("least_conn;", ""), ("", "")] {
        // Round robin with max_conns=1 on both: a busy peer is skipped.
        let text = upstream_with(&backends, method, extra, |_| {
            if method.is_empty() {
                "max_conns=1".into()
            } else {
                String::new()
            }
        });
        let p = start_proxy(&conf(&text, ""));
        let addr = p.addr;
        let slow = tokio::spawn(async move { get(addr, "/", &[("x-delay-ms", "1500")]).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut quick = Vec::new();
        for _ in 0..4 {
            quick.push(get(p.addr, "/", &[]).await.backend().unwrap());
        }
        let busy = slow.await.unwrap().backend().unwrap();
        assert!(
            quick.iter().all(|b| *b != busy),
            "{method}{text}: {quick:?} busy {busy}"
        );
    }
    // Every peer at max_conns: 502, as nginx ("no live upstreams").
    let one = Backend::start("solo");
    let p = start_proxy(&conf(
        &format!("upstream app {{ server {} max_conns=1; }}", one.peer()),
        "",
    ));
    let addr = p.addr;
    let slow = tokio::spawn(async move { get(addr, "/", &[("x-delay-ms", "1500")]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(p.addr, "/", &[]).await.status, 502);
    assert_eq!(slow.await.unwrap().status, 200);
}

#[tokio::test]
async fn random_uses_every_peer() {
    let backends: Vec<Backend> = ["a", "b", "c"].iter().map(|n| Backend::start(n)).collect();
    for method in ["random;", "random two least_conn;"] {
        let p = start_proxy(&conf(&upstream(&backends, method, ""), ""));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..60 {
            seen.insert(get(p.addr, "/", &[]).await.backend().unwrap());
        }
        assert_eq!(seen.len(), 3, "{method}: {seen:?}");
    }
}

#[tokio::test]
async fn sticky_cookie_decides_for_pinned_clients_and_the_hash_for_new_sessions() {
    let backends: Vec<Backend> = ["a", "b", "c"].iter().map(|n| Backend::start(n)).collect();
    let ids = ["a", "b", "c"];
    let text = upstream_with(
        &backends,
        "hash $arg_k;",
        "session_sticky cookie=route hash=plain;",
        |i| format!("id={}", ids[i]),
    );
    let p = start_proxy(&conf(&text, ""));
    // New sessions: placed by the hash of the key, and the cookie names it.
    let mut by_key = Vec::new();
    for k in ["x1", "x2", "x3", "x4", "x5", "x6"] {
        let r = get(p.addr, &format!("/?k={k}"), &[]).await;
        let backend = r.backend().unwrap();
        assert_eq!(r.cookie_value("route").as_deref(), Some(backend.as_str()));
        let again = get(p.addr, &format!("/?k={k}"), &[]).await;
        assert_eq!(again.backend().unwrap(), backend, "the hash is stable");
        by_key.push((k, backend));
    }
    // A pinned client keeps its peer whatever the key says.
    for (k, backend) in &by_key {
        let other = ids.iter().find(|id| **id != backend.as_str()).unwrap();
        let r = get(
            p.addr,
            &format!("/?k={k}"),
            &[("cookie", &format!("route={other}"))],
        )
        .await;
        assert_eq!(
            r.backend().as_deref(),
            Some(*other),
            "the cookie decides for {k}"
        );
    }
}
