#!/usr/bin/env bash
# Static files and gzip, CPU per request: sticky-proxy against nginx with one
# worker (issue 18, item 5). Each server runs alone on core 0 (taskset), wrk
# and the gzip backend on core 1. Cases, keep-alive, CONNS connections:
#   file1k  a 1 KB file            file1m  a 1 MB file
#   gzip1   a 100 KB text response from a backend, proxied and gzipped at level 1
#   gzip6   the same at level 6
# CPU per request is the server's utime+stime over the run (/proc/PID/stat)
# divided by the requests wrk completed.
#
# Usage: bench/static.sh [DURATION_S] [CONNS]   (defaults 5 16)
#   PROXY_BIN=path  use this binary instead of building target/release/proxy
#   SENDFILE=on|off `sendfile` for both servers (default on, nginx's stock
#                   nginx.conf); NOPUSH=on adds `tcp_nopush on` to both
#   OPEN_FILE_CACHE="max=1000 inactive=20s" `open_file_cache` for both servers
#                   (default off, nginx's default)
#   CASES="file1m"  only these cases (default: file1k file1m gzip1 gzip6)
#   BASE_BIN=path   also measure this build of ours ("base", e.g. main before
#                   a change) in the same run, with the same configuration
#   ROUNDS=N        measure each case N times, the servers taking turns in
#                   each round (on a shared machine the load drifts within
#                   seconds: turns spread it over all servers alike), then
#                   print each server's median per case, and the median of
#                   its per-round ratio to nginx (paired: the servers of a
#                   round ran within seconds of each other) (default 1)
set -euo pipefail
DURATION=${1:-5}
CONNS=${2:-16}
SENDFILE=${SENDFILE:-on}
NOPUSH=${NOPUSH:-off}
OPEN_FILE_CACHE=${OPEN_FILE_CACHE:-off}
CASES=${CASES:-file1k file1m gzip1 gzip6}
ROUNDS=${ROUNDS:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK_PREFIX=/tmp/sticky-static-bench
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

need wrk wrk
need nginx nginx
if [ -z "${PROXY_BIN:-}" ]; then
    echo "building sticky-proxy (release)" >&2
    (cd "$ROOT" && cargo build --release --quiet --bin proxy)
    PROXY_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/proxy"
fi

read -r BACKEND PORT_OURS PORT_NGINX PORT_BASE <<< "$(free_ports 4)"
mkdir -p "$WORK/www" "$WORK/backend" "$WORK/nginx" "$WORK/tmp"
head -c 1024 /dev/urandom > "$WORK/www/1k.bin"
head -c 1048576 /dev/urandom > "$WORK/www/1m.bin"
text_page "$WORK/backend/page.txt"

cat > "$WORK/backend/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1;
error_log $WORK/backend/error.log error; pid $WORK/backend/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
$(nginx_temp_paths "$WORK/tmp")
    server { listen 127.0.0.1:$BACKEND; keepalive_requests 100000;
             default_type text/plain; root $WORK/backend; }
}
EOF

# One server body for both: files from www, /gz1/ and /gz6/ proxied and gzipped.
server_body() {
    cat <<EOF
        keepalive_requests 100000;
        sendfile $SENDFILE; tcp_nopush $NOPUSH; open_file_cache $OPEN_FILE_CACHE;
        root $WORK/www;
        location /gz1/ { gzip on; gzip_types text/plain; gzip_comp_level 1;
                         proxy_http_version 1.1; proxy_set_header Connection "";
                         proxy_pass http://gzb/; }
        location /gz6/ { gzip on; gzip_types text/plain; gzip_comp_level 6;
                         proxy_http_version 1.1; proxy_set_header Connection "";
                         proxy_pass http://gzb/; }
EOF
}

cat > "$WORK/ours.conf" <<EOF
worker_processes 1;
error_log stderr error;
events { worker_connections 4096; }
http {
    upstream gzb { server 127.0.0.1:$BACKEND; keepalive 64; }
    server {
        listen 127.0.0.1:$PORT_OURS;
$(server_body)
    }
}
EOF

cat > "$WORK/nginx/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1;
error_log $WORK/nginx/error.log error; pid $WORK/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
$(nginx_temp_paths "$WORK/tmp")
    upstream gzb { server 127.0.0.1:$BACKEND; keepalive 64; }
    server {
        listen 127.0.0.1:$PORT_NGINX;
$(server_body)
    }
}
EOF

taskset -c 1 nginx -c "$WORK/backend/nginx.conf" -p "$WORK/backend" &
PIDS+=($!)
taskset -c 0 "$PROXY_BIN" -c "$WORK/ours.conf" 2>"$WORK/ours.log" &
OURS_PID=$!; PIDS+=($OURS_PID)
taskset -c 0 nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX_PID=$!; PIDS+=($NGINX_PID)
for p in "$BACKEND" "$PORT_OURS" "$PORT_NGINX"; do wait_port "$p"; done
if [ -n "${BASE_BIN:-}" ]; then
    sed "s/127.0.0.1:$PORT_OURS;/127.0.0.1:$PORT_BASE;/" "$WORK/ours.conf" > "$WORK/base.conf"
    taskset -c 0 "$BASE_BIN" -c "$WORK/base.conf" 2>"$WORK/base.log" &
    BASE_PID=$!; PIDS+=("$BASE_PID")
    wait_port "$PORT_BASE"
fi

# Both answer the same bytes (gzip decoded) before anything is measured.
for path in /1k.bin /1m.bin /gz1/page.txt /gz6/page.txt; do
    a=$(curl -s --compressed "http://127.0.0.1:$PORT_OURS$path" | md5sum)
    b=$(curl -s --compressed "http://127.0.0.1:$PORT_NGINX$path" | md5sum)
    [ "$a" = "$b" ] || { echo "different answers for $path" >&2; exit 1; }
done

TCK=$(getconf CLK_TCK)
echo "sendfile $SENDFILE, tcp_nopush $NOPUSH, open_file_cache $OPEN_FILE_CACHE, $CONNS connections, ${DURATION}s per case"
printf '%-6s %-7s %5s %10s %10s %9s %9s %9s\n' server case conns req/s MB/s usr_us sys_us tot_us
run_one() {
    local name=$1 pid=$2 port=$3 case=$4 path=$5
    local hdr=()
    case $case in gzip*) hdr=(-H "Accept-Encoding: gzip") ;; esac
    # Warm-up: connections to the backend, page cache.
    taskset -c 1 wrk -t1 -c "$CONNS" -d 1s "${hdr[@]}" "http://127.0.0.1:$port$path" >/dev/null
    read -r u0 s0 < <(cpu_ticks "$pid")
    local out
    out=$(taskset -c 1 wrk -t1 -c "$CONNS" -d "${DURATION}s" "${hdr[@]}" "http://127.0.0.1:$port$path")
    read -r u1 s1 < <(cpu_ticks "$pid")
    local reqs rps mbs usr sys
    reqs=$(echo "$out" | awk '/requests in/ { print $1 }')
    rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    mbs=$(echo "$out" | awk '/Transfer\/sec/ { v = $2 + 0; if ($2 ~ /GB/) v *= 1024; if ($2 ~ /KB/) v /= 1024; printf "%.1f", v }')
    usr=$(awk -v a="$u0" -v b="$u1" -v n="$reqs" -v t="$TCK" 'BEGIN { printf "%.1f", (b - a) * 1e6 / t / n }')
    sys=$(awk -v a="$s0" -v b="$s1" -v n="$reqs" -v t="$TCK" 'BEGIN { printf "%.1f", (b - a) * 1e6 / t / n }')
    local tot
    tot=$(awk -v a="$usr" -v b="$sys" 'BEGIN { printf "%.1f", a + b }')
    printf '%-6s %-7s %5s %10s %10s %9s %9s %9s\n' "$name" "$case" "$CONNS" "$rps" "$mbs" "$usr" "$sys" "$tot"
    echo "$name $case $usr $sys $tot ${round:-1}" >> "$WORK/results"
    echo "$out" | awk '/Non-2xx|Socket errors/ { print "    (" $0 ")" }'
}
for c in "file1k /1k.bin" "file1m /1m.bin" "gzip1 /gz1/page.txt" "gzip6 /gz6/page.txt"; do
    read -r case path <<< "$c"
    case " $CASES " in *" $case "*) ;; *) continue ;; esac
    for round in $(seq 1 "$ROUNDS"); do
        # Each round starts with the next server: none always runs first.
        servers=(ours nginx)
        [ -z "${BASE_BIN:-}" ] || servers=(base ours nginx)
        for i in $(seq 0 $((${#servers[@]} - 1))); do
            name=${servers[$(((i + round - 1) % ${#servers[@]}))]}
            case $name in
                base) run_one base "$BASE_PID" "$PORT_BASE" "$case" "$path" ;;
                ours) run_one ours "$OURS_PID" "$PORT_OURS" "$case" "$path" ;;
                nginx) run_one nginx "$NGINX_PID" "$PORT_NGINX" "$case" "$path" ;;
            esac
        done
    done
done
if [ "$ROUNDS" -gt 1 ]; then
    echo "median of $ROUNDS rounds (µs per request):"
    printf '%-6s %-7s %9s %9s %9s %12s\n' server case usr_us sys_us tot_us tot/nginx
    python3 - "$WORK/results" <<'PY'
import statistics, sys
rows, by_round = {}, {}
for line in open(sys.argv[1]):
    name, case, usr, sys_, tot, rnd = line.split()
    rows.setdefault((case, name), []).append((float(usr), float(sys_), float(tot)))
    by_round[(case, rnd, name)] = float(tot)
for (case, name), v in rows.items():
    med = [statistics.median(x[i] for x in v) for i in range(3)]
    ratios = [t / by_round[(c, r, "nginx")] for (c, r, n), t in by_round.items()
              if c == case and n == name and by_round.get((c, r, "nginx"))]
    ratio = "%.2f" % statistics.median(ratios) if ratios else "-"
    print("%-6s %-7s %9.1f %9.1f %9.1f %12s" % (name, case, *med, ratio))
PY
fi
