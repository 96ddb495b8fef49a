#!/usr/bin/env bash
# HTTPS cost: sticky-proxy (rustls, aws-lc-rs) vs nginx (OpenSSL), each with
# one worker on core 0, in front of one nginx backend on core 1; the clients
# (wrk, openssl s_time) share core 1.
#
# (a) keep-alive HTTPS: wrk -t1 -cCONNS for DURATION s over TLS 1.3 (ECDSA
#     P-256 certificate): requests/s and the proxy's CPU per request.
# (b) full handshakes: openssl s_time -new (a new connection and a full
#     handshake each time), ECDSA P-256 and RSA 2048 certificates, TLS 1.3:
#     handshakes/s and the proxy's CPU per handshake.
# (c) resumed handshakes: openssl s_time -reuse (session resumption), TLS 1.2
#     (s_time resumes TLS 1.2 sessions reliably; both proxies have a session
#     cache and tickets).
# The proxy's CPU time is utime+stime from /proc/PID/stat before and after.
# s_time is single-threaded: for (b) and (c) the client may be the limit, so
# the CPU per handshake is the figure to compare.
#
# Usage: bench/tls.sh [ROUNDS] [DURATION_SECONDS] [CONNS]
#   defaults: 2 rounds, 8 s, 64 connections.
# Needs: nginx, wrk, openssl, taskset (installed with apt-get when missing).
set -euo pipefail

ROUNDS=${1:-2}
DURATION=${2:-8}
CONNS=${3:-64}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK_PREFIX=/tmp/sticky-tls-bench
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

need nginx nginx
need wrk wrk
need openssl openssl
need taskset util-linux

read -r B1 OURS_EC OURS_RSA NGX_EC NGX_RSA <<< "$(free_ports 5)"

OURS_BIN=${OURS_BIN:-}
if [ -z "$OURS_BIN" ]; then
    echo "building sticky-proxy (release)" >&2
    (cd "$ROOT" && cargo build --release --quiet --bin proxy)
    OURS_BIN="$ROOT/target/release/proxy"
fi

cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=bench.test" -keyout ec.key -out ec.pem 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
    -subj "/CN=bench.test" -keyout rsa.key -out rsa.pem 2>/dev/null

mkdir -p nginx
BACKEND_CPU="taskset -c 1" start_backend_nginx "$B1"

# One server per certificate type, the same TLS settings in both proxies.
tls_servers() { # $1 ec port, $2 rsa port, $3 proxy-specific location lines
    for kind in ec rsa; do
        local port=$1
        [ "$kind" = rsa ] && port=$2
        cat <<EOF
    server {
        listen 127.0.0.1:$port ssl;
        keepalive_requests 1000000;
        ssl_certificate $WORK/$kind.pem;
        ssl_certificate_key $WORK/$kind.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL$kind:10m;
        location / { $3 proxy_pass http://app; }
    }
EOF
    done
}

cat > ours.conf <<EOF
worker_processes 1;
error_log stderr error;
events { worker_connections 4096; }
http {
    upstream app { server 127.0.0.1:$B1; keepalive 1024; }
$(tls_servers "$OURS_EC" "$OURS_RSA" "")
}
EOF

cat > nginx/nginx.conf <<EOF
$(nginx_conf_head "$WORK/nginx")
    upstream app { server 127.0.0.1:$B1; keepalive 1024; }
$(tls_servers "$NGX_EC" "$NGX_RSA" 'proxy_http_version 1.1; proxy_set_header Connection "";')
}
EOF

taskset -c 0 "$OURS_BIN" -c "$WORK/ours.conf" &
OURS_PID=$!
PIDS+=($OURS_PID)
taskset -c 0 nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGX_PID=$!
PIDS+=($NGX_PID)
for p in "$OURS_EC" "$OURS_RSA" "$NGX_EC" "$NGX_RSA"; do wait_port "$p"; done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# measure NAME PID CMD...: runs CMD, prints "NAME count cpu_seconds".
measure() {
    local name=$1 pid=$2
    shift 2
    local before after out count
    before=$(cpu_ticks "$pid")
    out=$("$@" 2>&1) || true
    after=$(cpu_ticks "$pid")
    if echo "$out" | grep -q "requests in"; then
        count=$(echo "$out" | awk '/requests in/ { print $1 }')
    else
        count=$(echo "$out" | awk '/connections in [0-9.]+ real seconds/ { print $1; exit }')
    fi
    echo "$name ${count:-0} $(awk -v t=$((after - before)) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')"
}

client() { taskset -c 1 "$@"; }

results=$WORK/results
: > "$results"
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round" >&2
    for who in ours nginx; do
        if [ "$who" = ours ]; then pid=$OURS_PID ec=$OURS_EC rsa=$OURS_RSA; else pid=$NGX_PID ec=$NGX_EC rsa=$NGX_RSA; fi
        measure "$who keepalive" "$pid" client wrk -t1 -c"$CONNS" -d"${DURATION}s" \
            "https://127.0.0.1:$ec/" >> "$results"
        measure "$who full-ecdsa" "$pid" client openssl s_time -connect "127.0.0.1:$ec" \
            -new -tls1_3 -time "$DURATION" >> "$results"
        measure "$who full-rsa" "$pid" client openssl s_time -connect "127.0.0.1:$rsa" \
            -new -tls1_3 -time "$DURATION" >> "$results"
        measure "$who resumed" "$pid" client openssl s_time -connect "127.0.0.1:$ec" \
            -reuse -tls1_2 -time "$DURATION" >> "$results"
    done
done

echo
printf '%-20s %12s %12s %14s\n' case "count/s" "cpu s" "cpu us/each"
awk -v d="$DURATION" '
    { key = $1 " " $2; n[key] += $3; c[key] += $4; r[key]++ }
    END {
        for (k in n) printf "%-20s %12.0f %12.2f %14.1f\n", k, n[k] / (r[k] * d), c[k] / r[k],
            (n[k] > 0 ? c[k] * 1e6 / n[k] : 0)
    }' "$results" | sort
