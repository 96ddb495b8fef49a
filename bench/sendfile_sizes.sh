#!/usr/bin/env bash
# sendfile(2) against reading the file, by file size: the measurement behind
# the 4 KiB threshold of src/downstream/sendfile.rs (WITH_HEAD). One proxy,
# one worker, on core 0, with two servers on the same files: `sendfile on`
# (which reads bodies of at most 4 KiB into the head's buffer) and `sendfile
# off` (which reads every body); wrk -t1 -c16 on core 1 for SECONDS per size
# and server. CPU per request is the proxy's utime+stime over the run
# (/proc/PID/stat) divided by the requests done.
#
# Usage: bench/sendfile_sizes.sh BIN [ROUNDS] [SECONDS] [SIZES_KB...]
#   defaults: 2 rounds, 2 s, sizes 1 4 8 12 16 32 64.
# Needs: wrk, taskset, python3.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BIN [ROUNDS] [SECONDS] [SIZES_KB...]" >&2; exit 2; }
BIN=$(realpath "$1")
ROUNDS=${2:-2}
SECS=${3:-2}
shift $(($# > 3 ? 3 : $#))
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1 4 8 12 16 32 64)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK_PREFIX=/tmp/sticky-sendfile-sizes
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"
need wrk wrk

read -r ON OFF <<< "$(free_ports 2)"
mkdir -p "$WORK/www"
for k in "${SIZES[@]}"; do head -c $((k * 1024)) /dev/urandom > "$WORK/www/$k.bin"; done
cat > "$WORK/proxy.conf" <<EOF
worker_processes 1;
error_log stderr error;
events { worker_connections 1024; }
http {
    server { listen 127.0.0.1:$ON; keepalive_requests 100000; sendfile on; root $WORK/www; }
    server { listen 127.0.0.1:$OFF; keepalive_requests 100000; sendfile off; root $WORK/www; }
}
EOF
taskset -c 0 "$BIN" -c "$WORK/proxy.conf" &
PID=$!
PIDS+=($PID)
wait_port "$ON"
wait_port "$OFF"
TCK=$(getconf CLK_TCK)
printf '%-6s %-9s %8s %8s %8s\n' size_kb sendfile usr_us sys_us tot_us
for round in $(seq 1 "$ROUNDS"); do
    for k in "${SIZES[@]}"; do
        for server in "on $ON" "off $OFF"; do
            read -r mode port <<< "$server"
            read -r u0 s0 < <(cpu_ticks "$PID")
            n=$(taskset -c 1 wrk -t1 -c16 -d"${SECS}s" "http://127.0.0.1:$port/$k.bin" |
                awk '/requests in/ { print $1 }')
            read -r u1 s1 < <(cpu_ticks "$PID")
            awk -v k="$k" -v m="$mode" -v a="$u0" -v b="$u1" -v c="$s0" -v d="$s1" -v n="$n" -v t="$TCK" \
                'BEGIN { u = (b - a) * 1e6 / t / n; s = (d - c) * 1e6 / t / n;
                         printf "%-6s %-9s %8.2f %8.2f %8.2f\n", k, m, u, s, u + s }'
        done
    done
done
