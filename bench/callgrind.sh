#!/usr/bin/env bash
# Instructions per request of one build of ours, counted by callgrind (exact,
# user space only, robust on a shared machine where timings are not): the
# method of docs/performance.md, "Where the CPU goes". The one script that does
# this measurement; bench/callgrind_request.sh and bench/hotpath_callgrind.sh
# are thin wrappers around it that keep their older interfaces and output.
#
# The proxy runs under `valgrind --tool=callgrind --cache-sim=yes
# --instr-atstart=no` on core 0, in front of nginx backends (one worker,
# `return 200`) on core 1. After a 2 s warm-up with instrumentation off, it is
# switched on (`callgrind_control -i on`), `wrk -t1 -c CONNS -d SECONDS` runs,
# and the totals (instructions, L1 instruction and data misses) are divided by
# the requests wrk completed (which may miss up to CONNS requests in flight: to
# compare two builds closely, keep the profiles and divide by the calls of a
# once-per-request function, e.g. `route::normalize_host`, as
# docs/performance.md does).
#
# Usage: bench/callgrind.sh BIN [CASE] [CONNS] [SECONDS]
#   BIN: the proxy binary (a release build); CASE:
#     hit   (the default) ours_conf (sticky insert, indirect, two backends),
#           every request carries backend one's cookie;
#     new   the same config, no cookie: a Set-Cookie on every response;
#     plain plain_conf: a `proxy_pass` location to one keep-alive backend, no
#           sticky, no cookie; CALLGRIND_SERVER="DIRECTIVES;" adds server-level
#           directives to its server block;
#     file1k a 1 KB static file (`root`, `sendfile on`, the file of
#           bench/static.sh), no backend; CALLGRIND_SERVER adds server-level
#           directives here too (e.g. "open_file_cache max=1000;");
#   BIN `nginx`: nginx itself on file1k, with the same file and directives.
#   CONNS: 16; SECONDS: 8.
#   CALLGRIND_KEEP=FILE keeps callgrind's profile there (for callgrind_annotate:
#   per-function costs of two builds compared call by call); KEEP_WORK=1 keeps
#   the whole work folder (its path is printed on stderr).
#   CALLGRIND_TAG=TAG prints `TAG requests=N Ir=TOTAL per_request=IR/N`
#   instead of the line `case CASE, N requests: ... per request`.
# Several builds: one run each, e.g.
#   for b in BASE_BIN NEW_BIN; do bench/callgrind.sh "$b" hit 16 8; done
# (bench/hotpath_callgrind.sh does that loop).
# Needs: valgrind, nginx, wrk, taskset (installed with apt-get when missing).
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 BIN|nginx [hit|new|plain|file1k] [CONNS] [SECONDS]" >&2; exit 2; }
# `nginx` for BIN measures nginx itself (one worker, file1k only): the
# reference of docs/performance.md's instructions per file response.
if [ "$1" = nginx ]; then
    BIN=$(command -v nginx) || { echo "$0: nginx is not installed" >&2; exit 2; }
    NGINX_REF=1
else
    BIN=$(realpath "$1")
    NGINX_REF=
fi
CASE=${2:-hit}
CONNS=${3:-16}
SECONDS_RUN=${4:-8}
case "$CASE" in
    hit | new | plain | file1k) ;;
    *) echo "$0: CASE is hit, new, plain or file1k, not '$CASE'" >&2; exit 2 ;;
esac
if [ -n "$NGINX_REF" ] && [ "$CASE" != file1k ]; then
    echo "$0: nginx itself is measured on file1k only" >&2; exit 2
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK_PREFIX=/tmp/sticky-callgrind
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
[ -z "${KEEP_WORK:-}" ] || echo "work folder: $WORK" >&2

need valgrind valgrind
need nginx nginx
need wrk wrk
need taskset util-linux

read -r B1 B2 PORT <<< "$(free_ports 3)"
URL_PATH=/
if [ "$CASE" = file1k ]; then
    mkdir -p "$WORK/www"
    head -c 1024 /dev/urandom > "$WORK/www/1k.bin"
    static_conf "$PORT" "$WORK/www" "${CALLGRIND_SERVER:-}" > "$WORK/ours.conf"
    URL_PATH=/1k.bin
    if [ -n "$NGINX_REF" ]; then
        mkdir -p "$WORK/nginx"
        {
            nginx_conf_head "$WORK/nginx"
            echo "    server { listen 127.0.0.1:$PORT; keepalive_requests 100000; sendfile on; root $WORK/www; ${CALLGRIND_SERVER:-} }"
            echo "}"
        } > "$WORK/nginx/nginx.conf"
    fi
elif [ "$CASE" = plain ]; then
    BACKEND_CPU="taskset -c 1" start_backend_nginx "$B1"
    plain_conf "$PORT" "$B1" "${CALLGRIND_SERVER:-}" > "$WORK/ours.conf"
else
    BACKEND_CPU="taskset -c 1" start_backend_nginx "$B1" "$B2"
    ours_conf "$PORT" "$B1" "$B2" > "$WORK/ours.conf"
fi
if [ -n "$NGINX_REF" ]; then
    SERVER_ARGS=(-c "$WORK/nginx/nginx.conf" -p "$WORK/nginx")
else
    SERVER_ARGS=(-c "$WORK/ours.conf")
fi
taskset -c 0 valgrind --tool=callgrind --cache-sim=yes --instr-atstart=no \
    --callgrind-out-file="$WORK/callgrind.out" \
    "$BIN" "${SERVER_ARGS[@]}" 2>"$WORK/valgrind.log" &
PROXY=$!
PIDS+=("$PROXY")
# The proxy starts slowly under valgrind.
for _ in $(seq 1 30); do
    (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$PROXY" 2>/dev/null || { cat "$WORK/valgrind.log" >&2; exit 1; }
    sleep 1
done
wait_port "$PORT"

args=(-t1 -c "$CONNS")
if [ "$CASE" = hit ]; then
    SID1=$(printf '%s' "127.0.0.1:$B1" | md5sum | cut -d' ' -f1)
    args+=(-H "Cookie: route=$SID1")
fi
taskset -c 1 wrk "${args[@]}" -d 2s "http://127.0.0.1:$PORT$URL_PATH" >/dev/null
callgrind_control -i on "$PROXY" >/dev/null
out=$(taskset -c 1 wrk "${args[@]}" -d "${SECONDS_RUN}s" "http://127.0.0.1:$PORT$URL_PATH")
callgrind_control -i off "$PROXY" >/dev/null
callgrind_control -d "$PROXY" >/dev/null
# The dump is written asynchronously.
for _ in $(seq 1 60); do
    grep -qs '^totals:' "$WORK"/callgrind.out.* && break
    sleep 0.5
done
reqs=$(echo "$out" | awk '/requests in/ { print $1 }')
echo "$out" | awk '/Non-2xx|Socket errors/' >&2
[ "${reqs:-0}" -gt 0 ] || { echo "$0: wrk completed no request" >&2; echo "$out" >&2; exit 1; }
# Totals per event (named by the `events:` line), summed over the dumps.
cat "$WORK"/callgrind.out.* | awk -v n="$reqs" -v c="$CASE" -v tag="${CALLGRIND_TAG:-}" '
    /^events:/ { for (i = 2; i <= NF; i++) name[i] = $i }
    /^totals:/ { for (i = 2; i <= NF; i++) s[name[i]] += $i }
    END {
        if (tag != "")
            printf "%s requests=%d Ir=%.0f per_request=%d\n", tag, n, s["Ir"], int(s["Ir"] / n)
        else
            printf "case %s, %d requests: %.0f instructions, %.0f L1i misses, %.0f L1d misses per request\n",
                c, n, s["Ir"] / n, s["I1mr"] / n, (s["D1mr"] + s["D1mw"]) / n
    }'
if [ -n "${CALLGRIND_KEEP:-}" ]; then
    dumps=("$WORK"/callgrind.out.*)
    cp "${dumps[0]}" "$CALLGRIND_KEEP"
fi
