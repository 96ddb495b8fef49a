#!/usr/bin/env bash
# A profile-guided (PGO) release build of the proxy: the build to ship, and
# the one docs/performance.md measures as "pgo".
#
# 1. An instrumented release build (`-Cprofile-generate`) in its own target
#    folder (TARGET_DIR/pgo-gen).
# 2. A training run of that build on 127.0.0.1, one worker: the request paths
#    a sticky-session front end spends its time on, each for TRAIN_S seconds
#    of wrk (16 connections, keep-alive): a 1 KB and a 1 MB file (`root`,
#    `sendfile on`), `index`, a 404, a 100 KB proxied text gzipped at levels 1
#    and 6, session_sticky with and without the cookie (two nginx backends),
#    a plain `proxy_pass`, HTTPS (keep-alive requests, full and resumed
#    handshakes), and, when h2load is installed, the sticky location over
#    HTTP/2 (h2c and TLS). The proxy is stopped with SIGQUIT, so its exit writes
#    the counts.
# 3. The counts merged with `llvm-profdata` (LLVM_PROFDATA, else the
#    toolchain's `llvm-tools` component, else the newest `llvm-profdata-N` on
#    PATH, else Debian's llvm-19 is installed: its merge reads the raw profiles
#    of rustc's LLVM 22), and the release build made with `-Cprofile-use`
#    (TARGET_DIR/pgo) and copied to OUT.
#
# Code no training request runs (the rarer directives, error paths) is
# compiled as cold (for size, as PGO does with code it never saw run): the
# figures of docs/performance.md are of the paths above.
#
# Usage: bench/pgo.sh [OUT]   (default: TARGET_DIR/pgo/proxy)
#   TARGET_DIR  the folder for both builds (default: target)
#   TRAIN_S     seconds of wrk per training case (default 3)
# Needs: cargo, python3, nginx, wrk, curl, openssl, llvm-profdata (installed
# with apt-get when missing); h2load (nghttp2-client) is used when installed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=$(realpath -m "${TARGET_DIR:-$ROOT/target}")
TRAIN_S=${TRAIN_S:-3}
OUT=${1:-$TARGET_DIR/pgo/proxy}
# With `--target`, RUSTFLAGS reach the proxy's own code and its dependencies,
# not the build scripts and proc macros (which would write profiles too).
HOST=$(rustc -vV | awk '/^host:/ { print $2 }')
WORK_PREFIX=/tmp/sticky-pgo
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

need wrk wrk
need nginx nginx
need curl curl
need openssl openssl

# The merge tool: an llvm-profdata that reads the raw profile format of
# rustc's LLVM (checked on the first merge below, which fails clearly if not).
find_profdata() {
    if [ -n "${LLVM_PROFDATA:-}" ]; then
        echo "$LLVM_PROFDATA"
        return
    fi
    local tool
    tool=$(find "$(rustc --print sysroot)/lib/rustlib" -name llvm-profdata -type f 2>/dev/null | head -n1)
    if [ -n "$tool" ]; then
        echo "$tool"
        return
    fi
    # Debian's llvm-profdata-N, N >= 19 (older ones cannot read the raw
    # profiles of LLVM 22).
    tool=$(compgen -c llvm-profdata- | awk -F- '$3 >= 19' | sort -t- -k3 -n | tail -n1)
    if [ -z "$tool" ]; then
        need llvm-profdata-19 llvm-19 >&2
        tool=llvm-profdata-19
    fi
    command -v "$tool"
}
PROFDATA=$(find_profdata)
echo "merging with $PROFDATA" >&2

# A fixed folder, so that the instrumented build is reused while the code
# is unchanged (its RUSTFLAGS name it); emptied before each training run.
PROFILES="$TARGET_DIR/pgo-gen/profiles"
echo "building the instrumented proxy" >&2
(cd "$ROOT" && RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$PROFILES" \
    CARGO_TARGET_DIR="$TARGET_DIR/pgo-gen" cargo build --release --quiet --bin proxy --target "$HOST")
TRAINEE="$TARGET_DIR/pgo-gen/$HOST/release/proxy"
rm -rf "$PROFILES"
mkdir -p "$PROFILES"

read -r PORT H2PORT TLSPORT B1 B2 <<< "$(free_ports 5)"
mkdir -p "$WORK/www/dir" "$WORK/backend"
head -c 1024 /dev/urandom > "$WORK/www/1k.bin"
head -c 1048576 /dev/urandom > "$WORK/www/1m.bin"
echo "<html><body>index</body></html>" > "$WORK/www/dir/index.html"
text_page "$WORK/backend/page.txt"

# Two backends: `return 200` for the sticky and plain cases, the page for gzip.
{
    nginx_conf_head "$WORK/backend"
    cat <<EOF
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$B1; default_type text/plain; root $WORK/backend;
             location / { return 200 "backend one\n"; } location /page.txt { } }
    server { listen 127.0.0.1:$B2; location / { return 200 "backend two\n"; } }
}
EOF
} > "$WORK/backend/nginx.conf"
nginx -c "$WORK/backend/nginx.conf" -p "$WORK/backend" &
PIDS+=($!)

# HTTPS (HTTP/1.1 and HTTP/2 by ALPN) with an ECDSA certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=pgo.test" -keyout "$WORK/ec.key" -out "$WORK/ec.pem" 2>/dev/null
# HTTP/2 (h2c, prior knowledge) on a port of its own, when h2load can drive it.
H2_SERVER=
if command -v h2load >/dev/null 2>&1; then
    H2_SERVER="server { listen 127.0.0.1:$H2PORT; http2 on; keepalive_requests 100000; location /app/ { proxy_pass http://app; } }"
fi
cat > "$WORK/trainee.conf" <<EOF
worker_processes 1;
error_log stderr error;
events { worker_connections 4096; }
http {
$(sticky_upstream "$B1" "$B2")
    upstream one { server 127.0.0.1:$B1; keepalive 64; }
    server {
        listen 127.0.0.1:$PORT;
        keepalive_requests 100000;
        sendfile on;
        root $WORK/www;
        location /app/ { proxy_pass http://app; }
        location /plain/ { proxy_pass http://one; }
        location /gz1/ { gzip on; gzip_types text/plain; gzip_comp_level 1;
                         proxy_pass http://one/; }
        location /gz6/ { gzip on; gzip_types text/plain; gzip_comp_level 6;
                         proxy_pass http://one/; }
    }
    server {
        listen 127.0.0.1:$TLSPORT ssl;
        http2 on;
        ssl_certificate $WORK/ec.pem;
        ssl_certificate_key $WORK/ec.key;
        keepalive_requests 100000;
        root $WORK/www;
        location /app/ { proxy_pass http://app; }
    }
    $H2_SERVER
}
EOF
"$TRAINEE" -t -c "$WORK/trainee.conf"
"$TRAINEE" -c "$WORK/trainee.conf" 2>"$WORK/trainee.log" &
TRAINEE_PID=$!
PIDS+=($TRAINEE_PID)
for p in "$PORT" "$TLSPORT" "$B1" "$B2"; do wait_port "$p"; done

# The sticky cookie of backend one, as a browser pinned to it sends it.
COOKIE=$(curl -s -D - -o /dev/null "http://127.0.0.1:$PORT/app/" |
    awk -F'[: ;]+' 'tolower($1) == "set-cookie" && !c { c = $2 } END { print c }' || true)
[ -n "$COOKIE" ] || { echo "no sticky cookie from the trainee" >&2; exit 1; }

train() {
    echo "training: $*" >&2
    local out
    out=$(wrk -t1 -c 16 -d "${TRAIN_S}s" "$@")
    echo "$out" | awk '/Requests\/sec|Non-2xx|Socket errors/ { print "  " $0 }' >&2
}
train "http://127.0.0.1:$PORT/1k.bin"
train "http://127.0.0.1:$PORT/1m.bin"
train "http://127.0.0.1:$PORT/dir/"
train "http://127.0.0.1:$PORT/missing"
train -H "Accept-Encoding: gzip" "http://127.0.0.1:$PORT/gz1/page.txt"
train -H "Accept-Encoding: gzip" "http://127.0.0.1:$PORT/gz6/page.txt"
train -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT/app/"
train "http://127.0.0.1:$PORT/app/"
train "http://127.0.0.1:$PORT/plain/"
train -H "Cookie: $COOKIE" "https://127.0.0.1:$TLSPORT/app/"
train "https://127.0.0.1:$TLSPORT/1k.bin"
# New TLS connections: full handshakes, then resumed ones.
echo "training: TLS handshakes" >&2
timeout $((TRAIN_S + 5)) openssl s_time -connect "127.0.0.1:$TLSPORT" -new -time "$TRAIN_S" >/dev/null 2>&1 || true
timeout $((TRAIN_S + 5)) openssl s_time -connect "127.0.0.1:$TLSPORT" -reuse -time "$TRAIN_S" >/dev/null 2>&1 || true
if [ -n "$H2_SERVER" ]; then
    wait_port "$H2PORT"
    echo "training: h2load (h2c) /app/" >&2
    h2load -c 16 -m 10 -D "$TRAIN_S" -H "Cookie: $COOKIE" \
        "http://127.0.0.1:$H2PORT/app/" | awk '/^finished in/ { print "  " $0 }' >&2 ||
        echo "  h2load failed: skipped" >&2
    echo "training: h2load (TLS) /app/" >&2
    h2load -c 16 -m 10 -D "$TRAIN_S" -H "Cookie: $COOKIE" \
        "https://127.0.0.1:$TLSPORT/app/" | awk '/^finished in/ { print "  " $0 }' >&2 ||
        echo "  h2load failed: skipped" >&2
fi

# A graceful stop: the instrumented build writes its counts as it exits.
kill -QUIT "$TRAINEE_PID"
wait "$TRAINEE_PID" || true
# Gone: the exit trap must not signal its PID, which may be reused by then.
KEEP=()
for pid in "${PIDS[@]}"; do [ "$pid" = "$TRAINEE_PID" ] || KEEP+=("$pid"); done
PIDS=("${KEEP[@]}")
ls "$PROFILES"/*.profraw >/dev/null 2>&1 || { echo "the trainee wrote no profile" >&2; exit 1; }
"$PROFDATA" merge -o "$WORK/merged.profdata" "$PROFILES" || {
    echo "$PROFDATA could not merge the profiles of rustc's LLVM ($(rustc -vV | awk '/^LLVM/ { print $3 }')):" \
        "set LLVM_PROFDATA to a newer llvm-profdata (Debian: apt-get install llvm-19)" >&2
    exit 1
}

echo "building the PGO proxy" >&2
(cd "$ROOT" && RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$WORK/merged.profdata" \
    CARGO_TARGET_DIR="$TARGET_DIR/pgo" cargo build --release --quiet --bin proxy --target "$HOST")
mkdir -p "$(dirname "$OUT")"
cp "$TARGET_DIR/pgo/$HOST/release/proxy" "$OUT"
echo "$OUT"
