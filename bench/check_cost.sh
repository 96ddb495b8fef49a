#!/usr/bin/env bash
# Cost of active health checks: sticky-proxy's `check` vs HAProxy's `check`,
# 1,000 peers checked every second, no traffic, in the same run.
#
# One nginx (1 worker, `return 200`) listens on 20 ports of 127.0.0.1 on core 1;
# it is the checked backend of every case. Each case starts one proxy on core 0
# with an upstream/backend of 1,000 servers spread over those 20 ports, lets it
# warm up, then samples utime and stime of the whole process from
# /proc/PID/stat over SECONDS and prints them as % of one core. Cases alternate
# within each round; the summary gives the mean per case and ours/HAProxy.
#
# Cases:
#   ours tcp      check interval=1000 rise=2 fall=5 timeout=1000 type=tcp
#   ours http     ... type=http, check_http_send "HEAD / HTTP/1.0\r\n\r\n"
#   ours http-ka  ... type=http, HTTP/1.1 keep-alive request, check_keepalive_requests 1000
#   hap  tcp      server ... check inter 1s rise 2 fall 5
#   hap  http     option httpchk HEAD /, http-check expect status 200
#   base *        the same as ours with the binary in $BASELINE (if set), e.g. a
#                 build of an older commit
#   floor tcp     a python loop making the same 1,000 connects + resets per
#                 second (20 batches of 50, as the checks' time slots), bare:
#                 its system time is the kernel's share of a tcp check on this
#                 machine (its user time is the interpreter's, not comparable)
#
# Usage: bench/check_cost.sh [ROUNDS] [SECONDS] [WARMUP_SECONDS]
#   defaults: 3 rounds, 10 s samples, 4 s warm-up.
# Needs: nginx, haproxy, taskset, curl (installed with apt-get when missing).
set -euo pipefail

ROUNDS=${1:-3}
SECONDS_SAMPLE=${2:-10}
WARMUP=${3:-4}
PEERS=1000
PORTS=20

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK_PREFIX=/tmp/check-cost
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

need nginx nginx
need haproxy haproxy
need taskset util-linux
need curl curl

if [ "$(nproc)" -lt 2 ]; then
    echo "needs at least 2 cores" >&2
    exit 1
fi

read -r -a ALL_PORTS <<< "$(free_ports $((PORTS + 2)))"
BACKEND_PORTS=("${ALL_PORTS[@]:0:$PORTS}")
PROXY_PORT=${ALL_PORTS[$PORTS]}
STATUS_PORT=${ALL_PORTS[$((PORTS + 1))]}

echo "building sticky-proxy (release)" >&2
(cd "$ROOT" && cargo build --release --quiet --bin proxy)
OURS_BIN="$ROOT/target/release/proxy"

# --- the checked backends: one nginx worker on core 1 -----------------------------
mkdir -p "$WORK/backend"
{
    echo "daemon off; master_process off; worker_processes 1;"
    echo "pid $WORK/backend/nginx.pid; error_log $WORK/backend/error.log error;"
    echo "worker_rlimit_nofile 8192;"
    echo "events { worker_connections 8192; }"
    echo "http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s;"
    nginx_temp_paths "$WORK/backend"
    for p in "${BACKEND_PORTS[@]}"; do
        echo "  server { listen 127.0.0.1:$p; location / { return 200 \"ok\n\"; } }"
    done
    echo "}"
} > "$WORK/backend/nginx.conf"
taskset -c 1 nginx -c "$WORK/backend/nginx.conf" -p "$WORK/backend" &
PIDS+=($!)

for p in "${BACKEND_PORTS[@]}"; do wait_port "$p"; done

# --- configurations -----------------------------------------------------------------
servers_ours() {
    for i in $(seq 0 $((PEERS - 1))); do
        echo "        server 127.0.0.1:${BACKEND_PORTS[$((i % PORTS))]};"
    done
}
servers_hap() {
    for i in $(seq 0 $((PEERS - 1))); do
        echo "    server s$i 127.0.0.1:${BACKEND_PORTS[$((i % PORTS))]} check inter 1s rise 2 fall 5"
    done
}

ours_conf() { # KIND -> file
    local kind=$1 file="$WORK/ours-$1.conf" type=tcp extra=""
    case $kind in
        http) type=http
              extra='check_http_send "HEAD / HTTP/1.0\r\n\r\n"; check_http_expect_alive http_2xx;' ;;
        http-ka) type=http
              extra='check_http_send "HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"; check_http_expect_alive http_2xx; check_keepalive_requests 1000;' ;;
    esac
    cat > "$file" <<EOF
worker_processes 1;
worker_rlimit_nofile 8192;
error_log stderr error;
events { worker_connections 1024; }
http {
    upstream big {
$(servers_ours)
        check interval=1000 rise=2 fall=5 timeout=1000 type=$type;
        $extra
    }
    server {
        listen 127.0.0.1:$PROXY_PORT;
        location / { proxy_pass http://big; }
    }
    server {
        listen 127.0.0.1:$STATUS_PORT;
        location /status { check_status csv; access_log off; }
    }
}
EOF
    echo "$file"
}

hap_conf() { # KIND -> file
    local kind=$1 file="$WORK/hap-$1.cfg" opts=""
    [ "$kind" = http ] && opts=$'    option httpchk HEAD /\n    http-check expect status 200'
    cat > "$file" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout check 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:$PROXY_PORT
    default_backend be
listen stats
    bind 127.0.0.1:$STATUS_PORT
    stats enable
    stats uri /status
backend be
$opts
$(servers_hap)
EOF
    echo "$file"
}

# Number of peers shown up by the proxy's status page.
peers_up() { # PROXY
    if [ "$1" = hap ]; then
        curl -fsS "http://127.0.0.1:$STATUS_PORT/status;csv" | grep -c '^be,s[0-9]*,.*,UP,' || true
    else
        curl -fsS "http://127.0.0.1:$STATUS_PORT/status" | grep -c ',up,' || true
    fi
}

TCK=$(getconf CLK_TCK)
RESULTS="$WORK/results.txt"
: > "$RESULTS"

run_case() { # PROXY KIND
    local proxy=$1 kind=$2 pid
    case $proxy in
        ours) "$OURS_BIN" -t -q -c "$(ours_conf "$kind")"
              taskset -c 0 "$OURS_BIN" -c "$WORK/ours-$kind.conf" 2>"$WORK/ours.log" &
              pid=$! ;;
        base) taskset -c 0 "$BASELINE" -c "$(ours_conf "$kind")" 2>"$WORK/base.log" &
              pid=$! ;;
        floor) python3 - "${BACKEND_PORTS[@]}" <<'PY' &
import socket, struct, sys, time
ports = [int(p) for p in sys.argv[1:]]
linger = struct.pack("ii", 1, 0)
t, i = time.monotonic(), 0
while True:
    for _ in range(50):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        s.connect(("127.0.0.1", ports[i % len(ports)]))
        s.close()
        i += 1
    t += 0.05
    time.sleep(max(0.0, t - time.monotonic()))
PY
              pid=$!
              taskset -p -c 0 "$pid" >/dev/null ;;
        hap)  haproxy -c -q -f "$(hap_conf "$kind")"
              taskset -c 0 haproxy -db -f "$WORK/hap-$kind.cfg" 2>"$WORK/hap.log" &
              pid=$! ;;
    esac
    PIDS+=($pid)
    [ "$proxy" = floor ] || wait_port "$STATUS_PORT"
    sleep "$WARMUP"
    local u0 s0 u1 s1 t0 t1
    read -r u0 s0 < <(awk '{ print $14, $15 }' "/proc/$pid/stat")
    t0=$(date +%s.%N)
    sleep "$SECONDS_SAMPLE"
    read -r u1 s1 < <(awk '{ print $14, $15 }' "/proc/$pid/stat")
    t1=$(date +%s.%N)
    local up=0
    [ "$proxy" = floor ] || up=$(peers_up "$proxy")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    local line
    line=$(awk -v p="$proxy" -v k="$kind" -v u0="$u0" -v u1="$u1" -v s0="$s0" -v s1="$s1" \
        -v t0="$t0" -v t1="$t1" -v tck="$TCK" -v up="$up" 'BEGIN {
            wall = t1 - t0; u = (u1 - u0) / tck * 100 / wall; s = (s1 - s0) / tck * 100 / wall;
            printf "%-5s %-8s %7.2f %7.2f %7.2f %6d\n", p, k, u, s, u + s, up }')
    echo "$line"
    echo "$line" >> "$RESULTS"
}

CASES=("ours tcp" "hap tcp" "ours http" "hap http" "ours http-ka" "floor tcp")
if [ -n "${BASELINE:-}" ]; then
    CASES+=("base tcp" "base http")
fi

echo "# $PEERS peers at 1 s, ${SECONDS_SAMPLE} s samples after ${WARMUP} s warm-up, $ROUNDS round(s)"
printf '%-5s %-8s %7s %7s %7s %6s\n' proxy check user% sys% total% up
for round in $(seq 1 "$ROUNDS"); do
    echo "# round $round" >&2
    for c in "${CASES[@]}"; do
        # shellcheck disable=SC2086
        run_case $c
    done
done

echo
echo "# means over $ROUNDS round(s), % of one core"
awk '{ k = $1 " " $2; n[k]++; u[k] += $3; s[k] += $4; t[k] += $5 }
     END {
         for (k in n) printf "%-14s user %5.2f  sys %5.2f  total %5.2f\n", k, u[k] / n[k], s[k] / n[k], t[k] / n[k]
         split("tcp http", kinds, " ")
         for (i = 1; i <= 2; i++) {
             h = "hap " kinds[i]; o = "ours " kinds[i]
             if (n[h] && n[o] && t[h] > 0) printf "ratio ours/hap %-5s %.2f\n", kinds[i], (t[o] / n[o]) / (t[h] / n[h])
         }
         h = "hap http"; o = "ours http-ka"
         if (n[h] && n[o] && t[h] > 0) printf "ratio ours http-ka / hap http %.2f\n", (t[o] / n[o]) / (t[h] / n[h])
     }' "$RESULTS" | sort
