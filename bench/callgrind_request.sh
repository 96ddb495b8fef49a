#!/usr/bin/env bash
# Instructions per request of a proxy build under callgrind: one nginx backend
# (`return 200`), the proxy with a plain `proxy_pass` location to a keep-alive
# upstream, a warm-up, then instrumentation on for `wrk -t1 -c16 -d8s`; the
# program's instructions are divided by the requests wrk completed.
#
# Usage: bench/callgrind_request.sh BIN TAG ["SERVER-LEVEL DIRECTIVES"]
# Needs: valgrind, nginx, wrk, curl.
set -euo pipefail
BIN=$1; TAG=$2; EXTRA=${3:-}
W=/tmp/sticky-callgrind/$TAG; rm -rf "$W"; mkdir -p "$W/b"
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
B=$(port); P=$(port)
cat > "$W/b/nginx.conf" <<C
daemon off; master_process off; worker_processes 1; pid $W/b/nginx.pid; error_log $W/b/error.log error;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 100000;
client_body_temp_path $W/b; proxy_temp_path $W/b; fastcgi_temp_path $W/b; uwsgi_temp_path $W/b; scgi_temp_path $W/b;
server { listen 127.0.0.1:$B; location / { return 200 "backend\n"; } } }
C
nginx -p "$W/b" -c "$W/b/nginx.conf" & NG=$!
cat > "$W/proxy.conf" <<C
events { worker_connections 1024; }
http { upstream app { server 127.0.0.1:$B; keepalive 32; }
server { listen 127.0.0.1:$P; $EXTRA location / { proxy_pass http://app; } } }
C
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$W/cg.out" "$BIN" -c "$W/proxy.conf" 2>"$W/vg.log" & PX=$!
sleep 3
curl -s "http://127.0.0.1:$P/" >/dev/null
wrk -t1 -c16 -d2s "http://127.0.0.1:$P/" >/dev/null
callgrind_control -i on $PX >/dev/null
wrk -t1 -c16 -d8s "http://127.0.0.1:$P/" > "$W/wrk.txt"
callgrind_control -i off $PX >/dev/null
callgrind_control -d $PX >/dev/null
sleep 1
kill $PX; wait $PX 2>/dev/null || true
kill $NG; wait $NG 2>/dev/null || true
REQS=$(grep -oE '^ *[0-9]+ requests' "$W/wrk.txt" | grep -oE '[0-9]+')
IR=$(for f in "$W"/cg.out*; do callgrind_annotate "$f" 2>/dev/null | grep -E 'PROGRAM TOTALS' | grep -oE '^[0-9,]+' | tr -d ,; done | sort -n | tail -1)
echo "$TAG requests=$REQS Ir=$IR per_request=$(( IR / REQS ))"
