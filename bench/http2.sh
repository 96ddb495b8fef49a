#!/usr/bin/env bash
# HTTP/2 cost: sticky-proxy (hyper's HTTP/2) vs nginx, each with one worker on
# core 0, h2c by prior knowledge (`listen ... http2`), in front of the same
# two nginx backends on core 1 (HTTP/1.1 keep-alive upstream); h2load runs
# on core 1 too.
#
# (a) h2load -c 10 -m 10 (10 connections x 10 concurrent streams), REQUESTS
#     requests per run, every one with the sticky cookie of backend one
#     (a sticky hit; nginx uses `hash $cookie_route`, as in bench/run.sh):
#     requests/s, p50/p99 of the request time (from h2load's per-request
#     --log-file) and the proxy's CPU per request (utime+stime from
#     /proc/PID/stat before and after). The order of the two rotates each
#     round.
# (b) memory per idle HTTP/2 connection: bench/idle_memory.sh with PROTO=h2c
#     (IDLE_N connections, one GET each, then held idle; RSS before/after).
#     IDLE_N=0 skips it.
#
# Usage: bench/http2.sh [ROUNDS] [REQUESTS] [IDLE_N]
#   defaults: 3 rounds, 200000 requests, 8000 idle connections.
#   OURS_BIN=PATH  our binary (default: cargo build --release, then
#                  ${CARGO_TARGET_DIR:-target}/release/proxy)
# Needs: nginx, h2load (nghttp2-client), curl, taskset, python3.
set -euo pipefail

ROUNDS=${1:-3}
REQUESTS=${2:-200000}
IDLE_N=${3:-8000}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK_PREFIX=/tmp/sticky-h2-bench
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

need nginx nginx
need h2load nghttp2-client
need curl curl
need taskset util-linux

if [ -z "${OURS_BIN:-}" ]; then
    echo "building sticky-proxy (release)" >&2
    (cd "$ROOT" && cargo build --release --quiet --bin proxy)
    OURS_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/proxy"
fi
[ -x "$OURS_BIN" ] || { echo "no proxy binary at $OURS_BIN" >&2; exit 1; }

read -r B1 B2 PORT_OURS PORT_NGINX <<< "$(free_ports 4)"
SID1=$(printf '%s' "127.0.0.1:$B1" | md5sum | cut -d' ' -f1)
COOKIE="route=$SID1"

BACKEND_CPU="taskset -c 1" start_backend_nginx "$B1" "$B2"

# Ours: bench/common.sh's sticky config (insert, indirect), its listener h2c.
ours_conf "$PORT_OURS" "$B1" "$B2" | sed "s|listen 127.0.0.1:$PORT_OURS;|listen 127.0.0.1:$PORT_OURS http2;|" \
    > "$WORK/ours.conf"
grep -q "http2;" "$WORK/ours.conf" || { echo "ours.conf has no http2 listener" >&2; exit 1; }

mkdir -p "$WORK/nginx"
nginx_hash_conf "$WORK/nginx" "$PORT_NGINX" "$B1" "$B2" " http2" > "$WORK/nginx/nginx.conf"

taskset -c 0 "$OURS_BIN" -c "$WORK/ours.conf" &
OURS_PID=$!
PIDS+=("$OURS_PID")
taskset -c 0 nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGX_PID=$!
PIDS+=("$NGX_PID")
wait_port "$PORT_OURS"
wait_port "$PORT_NGINX"

TCK=$(getconf CLK_TCK)
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# run_one NAME PID PORT: one h2load run, one result line.
run_one() {
    local name=$1 pid=$2 port=$3 log="$WORK/$1.reqlog"
    local u0 s0 u1 s1 out
    read -r u0 s0 < <(cpu_ticks "$pid")
    out=$(taskset -c 1 h2load -n "$REQUESTS" -c 10 -m 10 -H "cookie: $COOKIE" \
        --log-file="$log" "http://127.0.0.1:$port/" 2>&1)
    read -r u1 s1 < <(cpu_ticks "$pid")
    local done2xx rps
    done2xx=$(echo "$out" | awk '/^status codes:/ { print $3 }')
    rps=$(echo "$out" | awk '/^finished in/ { print $4 }')
    if [ "${done2xx:-0}" != "$REQUESTS" ]; then
        echo "$name: only ${done2xx:-0} of $REQUESTS requests got a 2xx:" >&2
        echo "$out" | grep -E 'requests:|status codes:' >&2
        exit 1
    fi
    # The log's third column is the request time in microseconds.
    local p50 p99
    read -r p50 p99 < <(awk '{ print $3 }' "$log" | sort -n | awk '
        { v[NR] = $1 } END { print v[int(NR * 0.50) + 1], v[int(NR * 0.99) + 1] }')
    awk -v name="$name" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v n="$REQUESTS" \
        -v u="$((u1 - u0))" -v s="$((s1 - s0))" -v t="$TCK" -v hwm="$(hwm_kb "$pid")" 'BEGIN {
        usr = u * 1e6 / t / n; sys = s * 1e6 / t / n
        printf "%-6s %10.0f %8d %8d %8.2f %8.2f %8.2f %8d\n", name, rps, p50, p99, usr, sys, usr + sys, hwm }'
}

# Warm-up: connections to the backends, caches; and the cookie really pins.
for port in "$PORT_OURS" "$PORT_NGINX"; do
    body=$(curl -sS --http2-prior-knowledge -H "Cookie: $COOKIE" "http://127.0.0.1:$port/")
    [ "$body" = "backend 1" ] || { echo "port $port: the cookie led to '$body'" >&2; exit 1; }
    taskset -c 1 h2load -n 20000 -c 10 -m 10 -H "cookie: $COOKIE" "http://127.0.0.1:$port/" >/dev/null
done

RESULTS="$WORK/results.txt"
: > "$RESULTS"
echo "h2load -n $REQUESTS -c 10 -m 10, sticky hit, h2c; ours: $("$OURS_BIN" -v 2>&1 | head -n1); $(nginx -v 2>&1)"
printf '%-6s %10s %8s %8s %8s %8s %8s %8s\n' proxy req/s p50_us p99_us usr_us sys_us tot_us hwm_kB
for round in $(seq 1 "$ROUNDS"); do
    echo "# round $round"
    if [ $((round % 2)) = 1 ]; then order=(ours nginx); else order=(nginx ours); fi
    for who in "${order[@]}"; do
        if [ "$who" = ours ]; then
            run_one ours "$OURS_PID" "$PORT_OURS"
        else
            run_one nginx "$NGX_PID" "$PORT_NGINX"
        fi | tee -a "$RESULTS"
    done
done
echo "# medians over $ROUNDS round(s): proxy req/s p50_us p99_us usr_us sys_us tot_us"
for who in ours nginx; do
    printf '%-6s' "$who"
    for col in 2 3 4 5 6 7; do
        awk -v w="$who" -v c="$col" '$1 == w { print $c }' "$RESULTS" | sort -g |
            awk '{ v[NR] = $1 } END { printf " %10.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
    done
    echo
done
awk '$1 == "ours" { o += $7; no++ } $1 == "nginx" { g += $7; ng++ }
    END { if (no && ng) printf "CPU per request, ours/nginx (means): %.2f\n", (o / no) / (g / ng) }' "$RESULTS"

stop_all() {
    kill "$OURS_PID" "$NGX_PID" 2>/dev/null || true
    wait "$OURS_PID" 2>/dev/null || true
    wait "$NGX_PID" 2>/dev/null || true
}

if [ "$IDLE_N" != 0 ]; then
    stop_all
    echo
    PROTO=h2c OURS_BIN="$OURS_BIN" "$ROOT/bench/idle_memory.sh" "$IDLE_N"
fi
