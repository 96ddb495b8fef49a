#!/usr/bin/env bash
# Instructions per plain-HTTP request of one or more builds of the proxy,
# counted with callgrind (exact, user space only; timings on a shared VM are
# too noisy for small changes). For each binary: one nginx backend, the proxy
# under `valgrind --tool=callgrind --instr-atstart=no` with the sticky
# upstream of bench/run.sh, instrumentation on after a 2 s warm-up, then
# `wrk -t1 -c16 -dDURATION` with a sticky-hit cookie; the instruction total
# is divided by the requests wrk completed.
#
# Usage: bench/hotpath_callgrind.sh [DURATION_SECONDS] BINARY...
#   KEEP_WORK=1 keeps the work directory (callgrind.N.out per binary, for
#   callgrind_annotate).
# Needs: nginx, wrk, valgrind (installed with apt-get when missing).
set -euo pipefail

DURATION=${1:-8}
shift
[ $# -gt 0 ] || { echo "usage: $0 [DURATION] BINARY..." >&2; exit 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK_PREFIX=/tmp/sticky-callgrind
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

need nginx nginx
need wrk wrk
need valgrind valgrind

read -r B1 B2 PORT <<< "$(free_ports 3)"
start_backend_nginx "$B1" "$B2"

cat > "$WORK/proxy.conf" <<EOF
worker_processes 1;
error_log stderr error;
events { worker_connections 1024; }
http {
    upstream app {
        session_sticky cookie=route mode=insert option=indirect;
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$PORT;
        keepalive_requests 1000000;
        location / { proxy_pass http://app; }
    }
}
EOF
SID=$(printf '127.0.0.1:%s' "$B1" | md5sum | cut -d' ' -f1)

n=0
for bin in "$@"; do
    n=$((n + 1))
    out="$WORK/callgrind.$n.out"
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
        "$bin" -c "$WORK/proxy.conf" 2> "$WORK/valgrind.log" &
    vpid=$!
    wait_port "$PORT"
    wrk -t1 -c16 -d2s -H "Cookie: route=$SID" "http://127.0.0.1:$PORT/" > /dev/null
    callgrind_control -i on "$vpid" > /dev/null
    requests=$(wrk -t1 -c16 -d"${DURATION}s" -H "Cookie: route=$SID" \
        "http://127.0.0.1:$PORT/" | awk '/requests in/ { print $1 }')
    callgrind_control -i off "$vpid" > /dev/null
    kill "$vpid"
    wait "$vpid" 2>/dev/null || true
    total=$(awk '/^totals:/ { print $2; exit }' "$out")
    awk -v b="$bin" -v t="$total" -v r="$requests" \
        'BEGIN { printf "%s: %d requests, %.0f instructions per request\n", b, r, t / r }'
done
