#!/usr/bin/env bash
# HTTP/2 checked from outside Rust: curl (libcurl + nghttp2) and h2load
# (nghttp2) talk to the proxy over h2c by prior knowledge and over TLS with
# ALPN h2, and the sticky cookie is set and honoured over HTTP/2.
# The proxy serves its own two "backends" (server blocks with `return 200`) on
# other ports of the same configuration; the access log records which one
# answered each request. Certificates are made here with openssl.
#
# Usage: tests/http2_external.sh PROXY_BINARY
# Exits 0 after "skipped: ..." when curl, h2load, openssl or python3 is
# missing, or curl has no HTTP/2.
set -euo pipefail

PROXY=${1:?usage: tests/http2_external.sh PROXY_BINARY}
for tool in curl h2load openssl python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "skipped: $tool is not installed"
        exit 0
    fi
done
if ! curl -V | grep -q HTTP2; then
    echo "skipped: this curl has no HTTP/2"
    exit 0
fi

WORK=$(mktemp -d /tmp/sticky-h2-ext.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    [ -s "$WORK/proxy.log" ] && tail -n 5 "$WORK/proxy.log" >&2
    exit 1
}

cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=h2 test CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=www.h2.test" -keyout site.key -out site.csr 2>/dev/null
printf 'subjectAltName=DNS:www.h2.test\n' > san.ext
openssl x509 -req -in site.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile san.ext -out site.pem 2>/dev/null

read -r PLAIN TLS B1 B2 <<< "$(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"

cat > proxy.conf <<CONF
error_log $WORK/proxy.log info;
events { worker_connections 256; }
http {
    log_format up '\$server_protocol \$http2 \$upstream_addr \$status';
    upstream app {
        session_sticky cookie=route mode=insert;
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
    }
    server {
        listen 127.0.0.1:$PLAIN http2;
        access_log $WORK/access.log up;
        location / { proxy_pass http://app; }
    }
    server {
        listen 127.0.0.1:$TLS ssl http2;
        server_name www.h2.test;
        ssl_certificate site.pem;
        ssl_certificate_key site.key;
        access_log $WORK/access.log up;
        location / { proxy_pass http://app; }
    }
    server { listen 127.0.0.1:$B1; access_log off; location / { return 200 "backend one\n"; } }
    server { listen 127.0.0.1:$B2; access_log off; location / { return 200 "backend two\n"; } }
}
CONF
"$PROXY" -c "$WORK/proxy.conf" 2>> proxy.log &
PID=$!
for port in "$PLAIN" "$TLS" "$B1" "$B2"; do
    for _ in $(seq 1 100); do
        (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
done

H2C="http://127.0.0.1:$PLAIN/"
URL="https://www.h2.test:$TLS/"
RESOLVE="www.h2.test:$TLS:127.0.0.1"

# h2c by prior knowledge: HTTP/2, a sticky cookie set.
curl -sS --http2-prior-knowledge -D head.txt -o body.txt "$H2C" || fail "curl h2c"
grep -q '^HTTP/2 200' head.txt || fail "h2c status: $(head -1 head.txt)"
cookie=$(sed -n 's/^set-cookie: \(route=[^;]*\).*/\1/ip' head.txt | tr -d '\r')
[ -n "$cookie" ] || fail "no route cookie over h2c: $(cat head.txt)"
first=$(cat body.txt)
echo "ok: curl --http2-prior-knowledge: HTTP/2 200, $first, Set-Cookie $cookie"

# The cookie is honoured over h2c: every request goes to the same backend.
for _ in 1 2 3 4 5 6; do
    body=$(curl -sS --http2-prior-knowledge -H "Cookie: a=1; $cookie; b=2" "$H2C") \
        || fail "curl h2c with the cookie"
    [ "$body" = "$first" ] || fail "cookie $cookie went to '$body', not '$first'"
done
echo "ok: the sticky cookie is honoured over h2c (6 requests to $first)"

# HTTP/1.1 on the same port still works.
curl -sS --http1.1 -D head1.txt -o /dev/null "$H2C" || fail "HTTP/1.1 on the h2c port"
grep -q '^HTTP/1.1 200' head1.txt || fail "HTTP/1.1 on the h2c port: $(head -1 head1.txt)"
echo "ok: HTTP/1.1 still served on the h2c port"

# TLS with ALPN h2: HTTP/2, the certificate verified, the cookie honoured.
curl -sS --http2 --cacert ca.pem --resolve "$RESOLVE" -D head2.txt -o body2.txt \
    -H "Cookie: $cookie" "$URL" || fail "curl --http2 over TLS"
grep -q '^HTTP/2 200' head2.txt || fail "ALPN h2 status: $(head -1 head2.txt)"
[ "$(cat body2.txt)" = "$first" ] || fail "TLS h2 with $cookie went to $(cat body2.txt)"
if grep -qi '^set-cookie: route=' head2.txt; then
    fail "a valid cookie was replaced over TLS h2: $(grep -i set-cookie head2.txt)"
fi
echo "ok: curl --http2 --cacert: ALPN h2, HTTP/2 200, cookie honoured ($first)"

# curl asking for HTTP/1.1 over TLS still gets it (ALPN offers both).
curl -sS --http1.1 --cacert ca.pem --resolve "$RESOLVE" -D head3.txt -o /dev/null "$URL" \
    || fail "HTTP/1.1 over TLS"
grep -q '^HTTP/1.1 200' head3.txt || fail "ALPN http/1.1: $(head -1 head3.txt)"
echo "ok: ALPN http/1.1 still served on the TLS port"

# h2load: 10 connections x 10 streams with the cookie, h2c and TLS; every
# request a 200, all from the cookie's backend.
: > access.log
h2load -n 2000 -c 10 -m 10 -H "cookie: $cookie" "$H2C" > load.txt 2>&1 || true
grep -q 'requests: 2000 total, 2000 started, 2000 done, 2000 succeeded' load.txt \
    || fail "h2load h2c: $(grep -E 'requests:|status codes:' load.txt)"
h2load -n 1000 -c 10 -m 10 -H "cookie: $cookie" "$URL" --connect-to "127.0.0.1:$TLS" \
    > load2.txt 2>&1 || true
grep -q 'requests: 1000 total, 1000 started, 1000 done, 1000 succeeded' load2.txt \
    || fail "h2load TLS: $(grep -E 'requests:|status codes:|Application protocol' load2.txt)"
grep -q 'Application protocol: h2' load2.txt || fail "h2load TLS did not negotiate h2"
sleep 0.5
lines=$(wc -l < access.log)
[ "$lines" -ge 3000 ] || fail "access log has $lines lines, expected 3000"
distinct=$(awk '{ print $3 }' access.log | sort -u | wc -l)
[ "$distinct" = 1 ] || fail "h2load requests went to $distinct backends: $(awk '{ print $3 }' access.log | sort | uniq -c)"
h2c=$(grep -c '^HTTP/2.0 h2c ' access.log || true)
h2=$(grep -c '^HTTP/2.0 h2 ' access.log || true)
if [ "$h2c" != 2000 ] || [ "$h2" != 1000 ]; then fail "\$http2 h2c=$h2c h2=$h2: $(sort access.log | uniq -c | head)"; fi
echo "ok: h2load 10 connections x 10 streams: 2000 h2c + 1000 h2 (TLS) requests, all 200, all to $(awk 'NR==1 { print $3 }' access.log)"
echo "all external HTTP/2 checks passed"
