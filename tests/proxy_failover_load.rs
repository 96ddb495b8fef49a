//! Load test (issue 5), not a timed test: ignored by default, run by
//! `bench/failover.sh`. 64 keep-alive clients send sticky traffic through the
//! proxy while one of three backends is killed and restarted in turn; with
//! `fallback=on` no request may fail. Prints the figures reported in
//! docs/health.md.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn sticky_traffic_survives_backends_killed_and_restarted() {
    let duration = env_secs("FAILOVER_SECONDS", 20);
    let period = env_secs("FAILOVER_PERIOD", 3);
    let clients = 64;
    let backends: Vec<Backend> = ["a", "b", "c"].iter().map(|n| Backend::start(n)).collect();
    let servers: String = backends
        .iter()
        .map(|b| format!("    server {} max_fails=1 fail_timeout=2s;\n", b.peer()))
        .collect();
    let p = start_proxy(&format!(
        "http {{\n  upstream app {{\n{servers}    session_sticky fallback=on;\n  }}\n  \
         server {{\n    listen 127.0.0.1:0;\n    keepalive_requests 100000000;\n    \
         location / {{ proxy_pass http://app; }}\n  }}\n}}\n"
    ));

    let done = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let repins = Arc::new(AtomicU64::new(0));

    // Chaos: every `period`, kill the next backend, restart it `period / 2` later.
    let chaos_done = Arc::clone(&done);
    let chaos = std::thread::spawn(move || {
        let mut backends = backends;
        let mut kills = 0u64;
        let mut k = 0;
        while !chaos_done.load(Ordering::SeqCst) {
            std::thread::sleep(period / 2);
            if chaos_done.load(Ordering::SeqCst) {
                break;
            }
            backends[k].stop();
            kills += 1;
            std::thread::sleep(period / 2);
            backends[k].restart();
            k = (k + 1) % backends.len();
        }
        (
            kills,
            backends.iter().map(Backend::hits).collect::<Vec<_>>(),
        )
    });

    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (done, ok, failed, repins) = (
            Arc::clone(&done),
            Arc::clone(&ok),
            Arc::clone(&failed),
            Arc::clone(&repins),
        );
        let addr = p.addr;
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await;
            let mut cookie: Option<String> = None;
            while !done.load(Ordering::Relaxed) {
                let header = cookie.clone().map(|c| format!("route={c}"));
                let headers: Vec<(&str, &str)> =
                    header.iter().map(|h| ("cookie", h.as_str())).collect();
                match client.send("GET", "/", &headers, empty()).await {
                    Ok(r) if r.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if let Some(new) = r.cookie_value("route") {
                            if cookie.is_some() {
                                repins.fetch_add(1, Ordering::Relaxed);
                            }
                            cookie = Some(new);
                        }
                    }
                    Ok(r) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("status {}: {}", r.status, r.text());
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("client error: {e}");
                        client = Client::connect(addr).await;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(duration).await;
    done.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed();
    let (kills, hits) = tokio::task::spawn_blocking(move || chaos.join().expect("chaos thread"))
        .await
        .expect("join");
    let (ok, failed, repins) = (
        ok.load(Ordering::SeqCst),
        failed.load(Ordering::SeqCst),
        repins.load(Ordering::SeqCst),
    );
    println!(
        "failover load: {clients} connections, {:.1} s, {kills} backend kills: {ok} ok, {failed} failed, \
         {repins} re-pins, {:.0} req/s, backend hits {hits:?}",
        elapsed.as_secs_f64(),
        ok as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(failed, 0, "with fallback=on no request may fail");
    assert!(kills >= 1 && ok > 0);
}
