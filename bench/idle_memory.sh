#!/usr/bin/env bash
# Memory cost of idle keep-alive client connections: sticky-proxy vs nginx, same run.
#
# Each server runs alone on 127.0.0.1 (free port) with one worker, worker_connections
# 20000, keepalive_timeout 300s, keepalive_requests 1000, access_log off, and
# `location / { return 200 "ok\n"; }` (no backend). For each server in turn:
#   1. start it, send one warm-up request (curl, closed), wait 1 s, read VmRSS:
#      the baseline (first-request one-time allocations are not charged to the
#      idle connections);
#   2. bench/idle_clients.py opens N connections, sends `GET / HTTP/1.1` on each and
#      reads the full response (every one must be a keep-alive 200, or the run
#      fails), then holds all N idle;
#   3. after HOLD seconds idle, read VmRSS again (and PSS);
#   4. the client sends a second request on every held connection: all N must still
#      answer 200 (the server really held them during the measurement), or the run
#      fails; then the server is stopped.
# nginx runs with its master process: its rows are master, worker and the sum.
# RSS double-counts pages master and worker share; the PSS column splits them.
#
# Usage: bench/idle_memory.sh [N]          (default 8000 connections)
#   HOLD=SECONDS   idle time before the measurement (default 5)
#   PROTO=h2c      idle HTTP/2 connections instead (h2c by prior knowledge:
#                  `listen ... http2` in both servers, one `GET /` stream
#                  per connection, then idle; bench/http2.sh runs this)
#   OURS_BIN=PATH  our binary (default ${CARGO_TARGET_DIR:-target}/release/proxy,
#                  built with `cargo build --release` when missing)
# Needs: nginx, curl, python3; about N+100 open files per process.
set -euo pipefail

N=${1:-8000}
HOLD=${HOLD:-5}
PROTO=${PROTO:-http1}
case "$PROTO" in
    http1) LISTEN_OPT=; CURL_OPT=--http1.1 ;;
    h2c) LISTEN_OPT=" http2"; CURL_OPT=--http2-prior-knowledge ;;
    *) echo "PROTO must be http1 or h2c, got '$PROTO'" >&2; exit 2 ;;
esac
case "$N" in '' | *[!0-9]*) echo "N must be a number, got '$N'" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK_PREFIX=/tmp/sticky-idle
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

need nginx nginx
need curl curl
need python3 python3

# --- open files: N client sockets in the client, N accepted sockets per server ----
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((N + 100)) ]; then
    echo "open-file limit is $NOFILE (hard $(ulimit -Hn)), need at least $((N + 100))" >&2
    exit 1
fi

if [ -z "${OURS_BIN:-}" ]; then
    OURS_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/proxy"
    if [ ! -x "$OURS_BIN" ]; then
        echo "building sticky-proxy (release)" >&2
        (cd "$ROOT" && cargo build --release --quiet --bin proxy)
    fi
fi
[ -x "$OURS_BIN" ] || { echo "no proxy binary at $OURS_BIN" >&2; exit 1; }

read -r PORT_OURS PORT_NGINX <<< "$(free_ports 2)"
mkdir -p "$WORK/ours" "$WORK/nginx"

cat > "$WORK/ours/proxy.conf" <<EOF
worker_processes 1;
pid $WORK/ours/proxy.pid;
error_log $WORK/ours/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 1000;
    server {
        listen 127.0.0.1:$PORT_OURS$LISTEN_OPT;
        location / { return 200 "ok\n"; }
    }
}
EOF

cat > "$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 1000;
$(nginx_temp_paths "$WORK/nginx")
    server {
        listen 127.0.0.1:$PORT_NGINX$LISTEN_OPT;
        location / { return 200 "ok\n"; }
    }
}
EOF

"$OURS_BIN" -t -q -c "$WORK/ours/proxy.conf"
nginx -t -q -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
pss_kb() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }

fail() {
    echo "FAIL: $*" >&2
    for log in "$WORK"/ours/error.log "$WORK"/nginx/error.log; do
        [ -s "$log" ] && { echo "--- $log (last lines)" >&2; tail -n 5 "$log" >&2; }
    done
    exit 1
}

# stop_pid PID: SIGTERM, wait for it (it is one of ours, also in PIDS for the trap).
stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# The nginx worker: the master's only child (waits up to 5 s for it).
nginx_worker() {
    local kids
    for _ in $(seq 1 50); do
        kids=$(cat "/proc/$1/task/$1/children" 2>/dev/null || true)
        [ -n "$kids" ] && { echo "${kids%% *}"; return 0; }
        sleep 0.1
    done
    fail "nginx master $1 has no worker"
}

# measure NAME PORT PID...: baseline, N idle clients, measurement, liveness check.
# Appends "name pid_label base_kB idle_kB base_pss_kB idle_pss_kB" lines to $ROWS.
measure() {
    local name=$1 port=$2; shift 2
    local labels=() pids=()
    while [ $# -gt 0 ]; do labels+=("$1"); pids+=("$2"); shift 2; done

    curl -fsS "$CURL_OPT" -o /dev/null "http://127.0.0.1:$port/" || fail "$name: warm-up request failed"
    sleep 1
    local base=() bpss=() i
    for i in "${!pids[@]}"; do
        base+=("$(rss_kb "${pids[$i]}")"); bpss+=("$(pss_kb "${pids[$i]}")")
    done

    local ready="$WORK/$name.ready"
    python3 "$ROOT/bench/idle_clients.py" "$port" "$N" "$ready" "$PROTO" &
    local client=$!
    PIDS+=("$client")
    local t0=$SECONDS
    while [ ! -e "$ready" ]; do
        kill -0 "$client" 2>/dev/null || fail "$name: client exited before holding its connections"
        [ $((SECONDS - t0)) -gt 300 ] && fail "$name: clients not ready after 300 s"
        sleep 0.2
    done
    local ok
    ok=$(sed -n 's/^ok=\([0-9]*\) .*/\1/p' "$ready")
    echo "$name: $ok of $N connections got a keep-alive 200 ($((SECONDS - t0)) s to open)" >&2
    [ "$ok" = "$N" ] || fail "$name: only $ok of $N connections got a 200"
    for i in "${!pids[@]}"; do
        kill -0 "${pids[$i]}" 2>/dev/null || fail "$name: ${labels[$i]} (pid ${pids[$i]}) died"
    done

    sleep "$HOLD" & wait $!   # in the background: a signal's trap runs at once
    local idle=() ipss=()
    for i in "${!pids[@]}"; do
        idle+=("$(rss_kb "${pids[$i]}")"); ipss+=("$(pss_kb "${pids[$i]}")")
    done

    kill -USR1 "$client"
    wait "$client" || true
    local alive
    alive=$(sed -n 's/^alive=\([0-9]*\) .*/\1/p' "$ready.alive" 2>/dev/null || true)
    echo "$name: ${alive:-0} of $N held connections still answered 200 after the measurement" >&2
    [ "${alive:-0}" = "$N" ] || fail "$name: only ${alive:-0} of $N held connections survived"

    for i in "${!pids[@]}"; do
        echo "$name ${labels[$i]} ${base[$i]} ${idle[$i]} ${bpss[$i]} ${ipss[$i]}" >> "$ROWS"
    done
}

ROWS="$WORK/rows.txt"
: > "$ROWS"

# --- ours ------------------------------------------------------------------------
"$OURS_BIN" -c "$WORK/ours/proxy.conf" 2>>"$WORK/ours/error.log" &
OURS_PID=$!; PIDS+=("$OURS_PID")
wait_port "$PORT_OURS"
measure ours "$PORT_OURS" proxy "$OURS_PID"
stop_pid "$OURS_PID"

# --- nginx -----------------------------------------------------------------------
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX_PID=$!; PIDS+=("$NGINX_PID")
wait_port "$PORT_NGINX"
NGINX_WORKER=$(nginx_worker "$NGINX_PID")
measure nginx "$PORT_NGINX" master "$NGINX_PID" worker "$NGINX_WORKER"
stop_pid "$NGINX_PID"

# --- table -----------------------------------------------------------------------
echo
echo "idle keep-alive clients ($PROTO): N=$N, held ${HOLD}s; ours: $("$OURS_BIN" -v 2>&1 | head -n1); $(nginx -v 2>&1)"
awk -v n="$N" '
    { key = $1 " " $2; order[++k] = key; b[key] = $3; i[key] = $4; bp[key] = $5; ip[key] = $6
      tb[$1] += $3; ti[$1] += $4; tbp[$1] += $5; tip[$1] += $6; cnt[$1]++
      if (!($1 in seen)) { seen[$1] = 1; servers[++s] = $1 } }
    function row(srv, proc, base, idle, pbase, pidle) {
        printf "%-6s %-7s %12d %12d %10d %11.0f %12d %12d\n", srv, proc, base, idle,
            idle - base, (idle - base) * 1024 / n, pbase, pidle
    }
    END {
        printf "%-6s %-7s %12s %12s %10s %11s %12s %12s\n", "server", "process",
            "base_rss_kB", "idle_rss_kB", "delta_kB", "bytes/conn", "base_pss_kB", "idle_pss_kB"
        for (j = 1; j <= k; j++) { split(order[j], p, " ")
            row(p[1], p[2], b[order[j]], i[order[j]], bp[order[j]], ip[order[j]]) }
        for (j = 1; j <= s; j++) if (cnt[servers[j]] > 1)
            row(servers[j], "total", tb[servers[j]], ti[servers[j]], tbp[servers[j]], tip[servers[j]])
        print ""
        printf "total RSS with %d idle keep-alive clients:", n
        for (j = 1; j <= s; j++) printf " %s %d kB;", servers[j], ti[servers[j]]
        printf " ours/nginx = %.2f\n", ti["ours"] / ti["nginx"]
        printf "total PSS with %d idle keep-alive clients:", n
        for (j = 1; j <= s; j++) printf " %s %d kB;", servers[j], tip[servers[j]]
        printf " ours/nginx = %.2f\n", tip["ours"] / tip["nginx"]
        printf "target (total RSS ours <= nginx): %s\n", ti["ours"] <= ti["nginx"] ? "met" : "NOT met"
    }' "$ROWS"
