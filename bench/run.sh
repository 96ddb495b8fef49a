#!/usr/bin/env bash
# Load comparison: sticky-proxy vs nginx (hash $cookie_route) vs HAProxy
# (cookie SRV insert indirect), all in front of the same two nginx backends.
#
# Each proxy runs alone on core 0 (taskset); wrk and the backends share core 1.
# For every proxy, case (sticky hit / new session) and connection count, wrk runs
# DURATION seconds; the proxy's CPU time comes from /proc/PID/stat (utime, stime)
# before and after, its peak RSS from VmHWM. Rounds alternate the proxies.
#
# Usage: bench/run.sh [ROUNDS] [DURATION_SECONDS] [CONNECTIONS...]
#   defaults: 2 rounds, 8 s, 64 and 512 connections.
#   PROXY_BIN=path  measure this build of ours (e.g. bench/pgo.sh's) instead
#   of building target/release/proxy.
#   BASELINE_BIN=path/to/other/proxy adds a fourth proxy, "base": that build on
#   the same configuration, to compare two builds of ours in one run (A/B).
# Needs: nginx, haproxy, wrk, taskset (installed with apt-get when missing).
set -euo pipefail

ROUNDS=${1:-2}
DURATION=${2:-8}
shift $(( $# > 2 ? 2 : $# )) || true
CONNS=("$@")
[ ${#CONNS[@]} -eq 0 ] && CONNS=(64 512)

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK_PREFIX=/tmp/sticky-bench
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

need nginx nginx
need haproxy haproxy
need wrk wrk
need taskset util-linux

if [ "$(nproc)" -lt 2 ]; then
    echo "needs at least 2 cores" >&2
    exit 1
fi

read -r B1 B2 PORT_OURS PORT_NGINX PORT_HAP PORT_BASE <<< "$(free_ports 6)"

if [ -n "${PROXY_BIN:-}" ]; then
    OURS_BIN=$(realpath "$PROXY_BIN")
else
    echo "building sticky-proxy (release)" >&2
    (cd "$ROOT" && cargo build --release --quiet --bin proxy)
    OURS_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/proxy"
fi

# --- backends: one nginx, one worker, on core 1 ---------------------------------
mkdir -p "$WORK/backend" "$WORK/nginx" "$WORK/haproxy"
backends_conf "$WORK/backend" "$B1" "$B2" > "$WORK/backend/nginx.conf"
taskset -c 1 nginx -c "$WORK/backend/nginx.conf" -p "$WORK/backend" &
PIDS+=($!)

# --- the three proxies, each on core 0 ------------------------------------------
ours_conf "$PORT_OURS" "$B1" "$B2" > "$WORK/ours.conf"

nginx_hash_conf "$WORK/nginx" "$PORT_NGINX" "$B1" "$B2" > "$WORK/nginx/nginx.conf"

cat > "$WORK/haproxy/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8192
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always
frontend fe
    bind 127.0.0.1:$PORT_HAP
    default_backend be
backend be
    balance roundrobin
    cookie SRV insert indirect nocache
    server s1 127.0.0.1:$B1 cookie s1
    server s2 127.0.0.1:$B2 cookie s2
EOF

taskset -c 0 "$OURS_BIN" -c "$WORK/ours.conf" 2>"$WORK/ours.log" &
OURS_PID=$!; PIDS+=($OURS_PID)
if [ -n "${BASELINE_BIN:-}" ]; then
    sed "s/127.0.0.1:$PORT_OURS;/127.0.0.1:$PORT_BASE;/" "$WORK/ours.conf" > "$WORK/base.conf"
    taskset -c 0 "$BASELINE_BIN" -c "$WORK/base.conf" 2>"$WORK/base.log" &
    BASE_PID=$!; PIDS+=($BASE_PID)
    wait_port "$PORT_BASE"
fi
taskset -c 0 nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX_PID=$!; PIDS+=($NGINX_PID)
taskset -c 0 haproxy -db -f "$WORK/haproxy/haproxy.cfg" &
HAP_PID=$!; PIDS+=($HAP_PID)

for p in "$B1" "$B2" "$PORT_OURS" "$PORT_NGINX" "$PORT_HAP"; do wait_port "$p"; done

SID1=$(printf '%s' "127.0.0.1:$B1" | md5sum | cut -d' ' -f1)
TCK=$(getconf CLK_TCK)

hwm_kb() {
    awk '/VmHWM/ { print $2 }' "/proc/$1/status"
}

# wrk's "Latency" percentile line value in microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") print n; else if (u == "ms") print n * 1000;
        else if (u == "s") print n * 1000000; else print n }'
}

printf '%-6s %-8s %5s %10s %9s %9s %8s %8s %8s %8s\n' \
    proxy case conns req/s p50_us p99_us usr_us sys_us tot_us hwm_kB
RESULTS="$WORK/results.txt"
: > "$RESULTS"

run_one() {
    local name=$1 pid=$2 port=$3 case=$4 conns=$5 cookie=$6
    local args=(-t1 -c "$conns" -d "${DURATION}s" --latency)
    [ -n "$cookie" ] && args+=(-H "Cookie: $cookie")
    read -r u0 s0 < <(cpu_ticks "$pid")
    local out
    out=$(taskset -c 1 wrk "${args[@]}" "http://127.0.0.1:$port/")
    read -r u1 s1 < <(cpu_ticks "$pid")
    local reqs rps p50 p99 errs
    reqs=$(echo "$out" | awk '/requests in/ { print $1 }')
    rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    p50=$(to_us "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
    p99=$(to_us "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ { print }')
    local usr sys
    usr=$(awk -v a="$u0" -v b="$u1" -v n="$reqs" -v t="$TCK" 'BEGIN { printf "%.2f", (b - a) * 1e6 / t / n }')
    sys=$(awk -v a="$s0" -v b="$s1" -v n="$reqs" -v t="$TCK" 'BEGIN { printf "%.2f", (b - a) * 1e6 / t / n }')
    local tot
    tot=$(awk -v a="$usr" -v b="$sys" 'BEGIN { printf "%.2f", a + b }')
    local line
    line=$(printf '%-6s %-8s %5s %10s %9.0f %9.0f %8s %8s %8s %8s' \
        "$name" "$case" "$conns" "$rps" "$p50" "$p99" "$usr" "$sys" "$tot" "$(hwm_kb "$pid")")
    echo "$line"
    echo "$line" >> "$RESULTS"
    [ -n "$errs" ] && echo "    ($name: $errs)"
    return 0
}

# Warm up every proxy (connections to the backends, caches).
for port in "$PORT_OURS" "$PORT_NGINX" "$PORT_HAP" ${BASELINE_BIN:+"$PORT_BASE"}; do
    taskset -c 1 wrk -t1 -c 64 -d 2s "http://127.0.0.1:$port/" >/dev/null
done

PROXIES=(ours nginx hap)
[ -n "${BASELINE_BIN:-}" ] && PROXIES=(ours base nginx hap)
for round in $(seq 1 "$ROUNDS"); do
    echo "# round $round" >&2
    for conns in "${CONNS[@]}"; do
        for case in hit new; do
            if [ "$case" = hit ]; then
                c_ours="route=$SID1"; c_nginx="route=$SID1"; c_hap="SRV=s1"
            else
                c_ours=""; c_nginx=""; c_hap=""
            fi
            # The order rotates each round, so that a drift of the machine's
            # speed does not favour whoever runs first.
            n=${#PROXIES[@]}
            for i in $(seq 0 $((n - 1))); do
                case ${PROXIES[$(( (i + round) % n ))]} in
                    ours) run_one ours "$OURS_PID" "$PORT_OURS" "$case" "$conns" "$c_ours" ;;
                    base) run_one base "$BASE_PID" "$PORT_BASE" "$case" "$conns" "$c_ours" ;;
                    nginx) run_one nginx "$NGINX_PID" "$PORT_NGINX" "$case" "$conns" "$c_nginx" ;;
                    hap) run_one hap "$HAP_PID" "$PORT_HAP" "$case" "$conns" "$c_hap" ;;
                esac
            done
        done
    done
done

echo
echo "# means over $ROUNDS round(s): proxy case conns req/s p50_us p99_us usr_us sys_us tot_us"
awk '{ k = $1 " " $2 " " $3; n[k]++; for (i = 4; i <= 9; i++) s[k, i] += $i }
     END { for (k in n) { printf "%-20s", k; for (i = 4; i <= 9; i++) printf " %10.2f", s[k, i] / n[k]; print "" } }' \
    "$RESULTS" | sort

# Medians resist the odd run in which the whole machine was faster or slower
# (on a shared VM, system CPU per request can halve for one run).
echo
echo "# medians over $ROUNDS round(s): proxy case conns req/s p50_us p99_us usr_us sys_us tot_us"
awk '{ k = $1 " " $2 " " $3; c = ++n[k]; for (i = 4; i <= 9; i++) v[k, i, c] = $i }
     END {
         for (k in n) {
             printf "%-20s", k
             for (i = 4; i <= 9; i++) {
                 m = n[k]
                 for (a = 1; a <= m; a++) w[a] = v[k, i, a]
                 for (a = 2; a <= m; a++) { x = w[a]; b = a - 1; while (b >= 1 && w[b] > x) { w[b + 1] = w[b]; b-- } w[b + 1] = x }
                 med = (m % 2) ? w[(m + 1) / 2] : (w[m / 2] + w[m / 2 + 1]) / 2
                 printf " %10.2f", med
             }
             print ""
         }
     }' "$RESULTS" | sort
