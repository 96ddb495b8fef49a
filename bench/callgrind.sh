#!/usr/bin/env bash
# Instructions per request of one build of ours, counted by callgrind (exact,
# user space only, robust on a shared machine where timings are not): the
# method of docs/performance.md, "Where the CPU goes".
#
# The proxy (ours_conf: sticky insert, indirect, keepalive to the backends) runs
# under `valgrind --tool=callgrind --cache-sim=yes --instr-atstart=no` on core
# 0, in front of the two nginx backends of bench/run.sh on core 1. After a 2 s
# warm-up with instrumentation off, it is switched on (`callgrind_control -i
# on`), `wrk -t1 -c CONNS -d SECONDS` runs, and the totals (instructions, L1
# instruction and data misses) are divided by the requests wrk completed (which
# may miss up to CONNS requests in flight: to compare two builds closely, keep
# the profiles and divide by the calls of a once-per-request function, e.g.
# `route::normalize_host`, as docs/performance.md does).
#
# Usage: bench/callgrind.sh BIN [CASE] [CONNS] [SECONDS]
#   BIN: the proxy binary (a release build); CASE: hit (every request carries
#   backend one's cookie, the default) or new (no cookie: a Set-Cookie on every
#   response); CONNS: 16; SECONDS: 8.
#   CALLGRIND_KEEP=FILE keeps callgrind's profile there (for callgrind_annotate:
#   per-function costs of two builds compared call by call).
# Needs: valgrind, nginx, wrk, taskset (installed with apt-get when missing).
set -euo pipefail

BIN=$(realpath "$1")
CASE=${2:-hit}
CONNS=${3:-16}
SECONDS_RUN=${4:-8}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK_PREFIX=/tmp/sticky-callgrind
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

need valgrind valgrind
need nginx nginx
need wrk wrk
need taskset util-linux

read -r B1 B2 PORT <<< "$(free_ports 3)"
mkdir -p "$WORK/backend"
backends_conf "$WORK/backend" "$B1" "$B2" > "$WORK/backend/nginx.conf"
taskset -c 1 nginx -c "$WORK/backend/nginx.conf" -p "$WORK/backend" &
PIDS+=($!)
ours_conf "$PORT" "$B1" "$B2" > "$WORK/ours.conf"
taskset -c 0 valgrind --tool=callgrind --cache-sim=yes --instr-atstart=no \
    --callgrind-out-file="$WORK/callgrind.out" \
    "$BIN" -c "$WORK/ours.conf" 2>"$WORK/valgrind.log" &
PROXY=$!
PIDS+=($PROXY)
for p in "$B1" "$B2"; do wait_port "$p"; done
# The proxy starts slowly under valgrind.
for _ in $(seq 1 30); do
    (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 1
done
wait_port "$PORT"

args=(-t1 -c "$CONNS")
if [ "$CASE" = hit ]; then
    SID1=$(printf '%s' "127.0.0.1:$B1" | md5sum | cut -d' ' -f1)
    args+=(-H "Cookie: route=$SID1")
fi
taskset -c 1 wrk "${args[@]}" -d 2s "http://127.0.0.1:$PORT/" >/dev/null
callgrind_control -i on "$PROXY" >/dev/null
out=$(taskset -c 1 wrk "${args[@]}" -d "${SECONDS_RUN}s" "http://127.0.0.1:$PORT/")
callgrind_control -i off "$PROXY" >/dev/null
callgrind_control -d "$PROXY" >/dev/null
# The dump is written asynchronously.
for _ in $(seq 1 60); do
    grep -qs '^totals:' "$WORK"/callgrind.out.* && break
    sleep 0.5
done
reqs=$(echo "$out" | awk '/requests in/ { print $1 }')
echo "$out" | awk '/Non-2xx|Socket errors/' >&2
# Totals per event (named by the `events:` line), summed over the dumps.
cat "$WORK"/callgrind.out.* | awk -v n="$reqs" -v c="$CASE" '
    /^events:/ { for (i = 2; i <= NF; i++) name[i] = $i }
    /^totals:/ { for (i = 2; i <= NF; i++) s[name[i]] += $i }
    END {
        printf "case %s, %d requests: %.0f instructions, %.0f L1i misses, %.0f L1d misses per request\n",
            c, n, s["Ir"] / n, s["I1mr"] / n, (s["D1mr"] + s["D1mw"]) / n
    }'
if [ -n "${CALLGRIND_KEEP:-}" ]; then
    cp "$(ls "$WORK"/callgrind.out.* | head -1)" "$CALLGRIND_KEEP"
fi
