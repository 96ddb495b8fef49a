#!/usr/bin/env bash
# Instructions per request of a proxy build under callgrind: one nginx backend
# (`return 200`), the proxy with a plain `proxy_pass` location to a keep-alive
# upstream, a warm-up, then instrumentation on for `wrk -t1 -c16 -d8s`; the
# program's instructions are divided by the requests wrk completed.
#
# Usage: bench/callgrind_request.sh BIN TAG ["SERVER-LEVEL DIRECTIVES"]
# Prints: TAG requests=N Ir=TOTAL per_request=IR/N
# Needs: valgrind, nginx, wrk, curl (installed with apt-get when missing).
set -euo pipefail
BIN=$1; TAG=$2; EXTRA=${3:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK_PREFIX=/tmp/sticky-callgrind
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
need valgrind valgrind
need nginx nginx
need wrk wrk
need curl curl
read -r B P <<< "$(free_ports 2)"
mkdir -p "$WORK/b"
cat > "$WORK/b/nginx.conf" <<C
daemon off; master_process off; worker_processes 1;
pid $WORK/b/nginx.pid; error_log $WORK/b/error.log error;
events { worker_connections 1024; }
http {
    access_log off; keepalive_requests 100000;
$(nginx_temp_paths "$WORK/b")
    server { listen 127.0.0.1:$B; location / { return 200 "backend\n"; } }
}
C
nginx -p "$WORK/b" -c "$WORK/b/nginx.conf" & PIDS+=($!)
cat > "$WORK/proxy.conf" <<C
events { worker_connections 1024; }
http {
    upstream app { server 127.0.0.1:$B; keepalive 32; }
    server { listen 127.0.0.1:$P; $EXTRA location / { proxy_pass http://app; } }
}
C
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.out" \
    "$BIN" -c "$WORK/proxy.conf" 2>"$WORK/valgrind.log" & PX=$!
PIDS+=("$PX")
wait_port "$P"
curl -s "http://127.0.0.1:$P/" >/dev/null
wrk -t1 -c16 -d2s "http://127.0.0.1:$P/" >/dev/null
callgrind_control -i on "$PX" >/dev/null
wrk -t1 -c16 -d8s "http://127.0.0.1:$P/" > "$WORK/wrk.txt"
callgrind_control -i off "$PX" >/dev/null
callgrind_control -d "$PX" >/dev/null
REQS=$(grep -oE '^ *[0-9]+ requests' "$WORK/wrk.txt" | grep -oE '[0-9]+')
IR=$(for f in "$WORK"/cg.out*; do
    callgrind_annotate "$f" 2>/dev/null | grep -E 'PROGRAM TOTALS' | grep -oE '^[0-9,]+' | tr -d ,
done | sort -n | tail -1)
echo "$TAG requests=$REQS Ir=$IR per_request=$(( IR / REQS ))"
