#!/usr/bin/env bash
# TLS checked from outside Rust: curl (--cacert) and openssl s_client talk to
# the proxy, so a TLS stack that is not ours (OpenSSL) shakes hands with it.
# Certificates are made here with openssl; nothing is installed.
#
# Usage: tests/tls_external.sh PROXY_BINARY
# Exits 0 after "skipped: ..." when curl, openssl or python3 is missing.
set -euo pipefail

PROXY=${1:?usage: tests/tls_external.sh PROXY_BINARY}
for tool in curl openssl python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "skipped: $tool is not installed"
        exit 0
    fi
done

WORK=$(mktemp -d /tmp/sticky-tls-ext.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=ext test CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=www.ext.test" -keyout site.key -out site.csr 2>/dev/null
printf 'subjectAltName=DNS:www.ext.test\n' > san.ext
openssl x509 -req -in site.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile san.ext -out site.pem 2>/dev/null

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > proxy.conf <<CONF
events { worker_connections 64; }
http {
    server {
        listen 127.0.0.1:$PORT ssl;
        server_name www.ext.test;
        ssl_certificate site.pem;
        ssl_certificate_key site.key;
        location / {
            return 200 "proto=\$ssl_protocol cipher=\$ssl_cipher sni=\$ssl_server_name scheme=\$scheme\n";
        }
    }
}
CONF
"$PROXY" -c "$WORK/proxy.conf" 2> proxy.log &
PID=$!
for _ in $(seq 1 100); do
    (echo > /dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
    sleep 0.1
done

URL="https://www.ext.test:$PORT/"
RESOLVE="www.ext.test:$PORT:127.0.0.1"

body=$(curl -sS --cacert ca.pem --resolve "$RESOLVE" "$URL") || fail "curl over TLS"
case "$body" in
    *"proto=TLSv1.3 cipher=TLS_"*"sni=www.ext.test scheme=https"*) ;;
    *) fail "curl TLS 1.3 body: $body" ;;
esac
echo "ok: curl --cacert, TLS 1.3: $body"

body=$(curl -sS --cacert ca.pem --resolve "$RESOLVE" --tlsv1.2 --tls-max 1.2 "$URL") \
    || fail "curl TLS 1.2"
case "$body" in
    *"proto=TLSv1.2 cipher=ECDHE-ECDSA-"*) ;;
    *) fail "curl TLS 1.2 body: $body" ;;
esac
echo "ok: curl TLS 1.2: $body"

if curl -sS --resolve "$RESOLVE" "$URL" >/dev/null 2>&1; then
    fail "curl accepted the certificate without --cacert"
fi
echo "ok: an unknown CA is refused by curl"

plain=$(curl -sS "http://127.0.0.1:$PORT/" -w '\n%{http_code}') || fail "plain HTTP"
case "$plain" in
    *"The plain HTTP request was sent to HTTPS port"*400) ;;
    *) fail "plain HTTP on the TLS port: $plain" ;;
esac
echo "ok: plain HTTP on the TLS port gets 400"

# openssl s_client: a full handshake that saves the session, then a resumed one.
printf 'GET / HTTP/1.1\r\nHost: www.ext.test\r\nConnection: close\r\n\r\n' > req.txt
openssl s_client -connect "127.0.0.1:$PORT" -servername www.ext.test -CAfile ca.pem \
    -tls1_3 -sess_out sess.pem -ign_eof < req.txt > first.txt 2>&1 || true
grep -q "Verify return code: 0 (ok)" first.txt || fail "s_client verify: $(tail -5 first.txt)"
grep -q "proto=TLSv1.3" first.txt || fail "s_client request: $(tail -5 first.txt)"
openssl s_client -connect "127.0.0.1:$PORT" -servername www.ext.test -CAfile ca.pem \
    -tls1_3 -sess_in sess.pem -ign_eof < req.txt > second.txt 2>&1 || true
grep -q "^Reused" second.txt || fail "s_client resumption: $(grep -E '^(New|Reused)' second.txt)"
echo "ok: openssl s_client verified, then resumed the session"

if openssl s_client -connect "127.0.0.1:$PORT" -servername www.ext.test -tls1_1 \
    < /dev/null > old.txt 2>&1 && grep -q "Protocol  *: TLSv1.1" old.txt; then
    fail "TLS 1.1 was accepted"
fi
echo "ok: TLS 1.1 is refused"
echo "all external TLS checks passed"
