# shellcheck shell=bash
# Shared by the bench scripts (sourced, not run): a work folder removed on exit,
# processes started with their PID in PIDS stopped on exit, `need CMD PKG` to
# install a Debian package when a command is missing, `free_ports N` and
# `wait_port PORT`, `cpu_ticks PID`, `text_page FILE` (100 KB of text).
# The caller sets WORK_PREFIX before sourcing (e.g. /tmp/sticky-bench).

WORK=$(mktemp -d "${WORK_PREFIX:-/tmp/bench}.XXXXXX")
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    # A server that ignores SIGTERM (seen once with nginx 1.22 in
    # `master_process off`) must not hang the script: SIGKILL after 5 s.
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

need() {
    command -v "$1" >/dev/null 2>&1 && return
    echo "installing $2" >&2
    sudo -n true 2>/dev/null && SUDO=sudo || SUDO=
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$2"
}

# N free TCP ports on 127.0.0.1, all distinct (bound by the kernel, then released).
free_ports() {
    python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}

# Waits up to 10 s for something to listen on 127.0.0.1:PORT.
wait_port() {
    for _ in $(seq 1 100); do
        (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 never opened" >&2
    exit 1
}

# utime+stime of PID in ticks: "user system"
cpu_ticks() {
    awk '{ print $14, $15 }' "/proc/$1/stat"
}

# The five *_temp_path lines every nginx config here needs (nginx writes its
# temporary files under DIR instead of its compiled-in prefix).
nginx_temp_paths() {
    local t
    for t in client_body proxy fastcgi uwsgi scgi; do echo "    ${t}_temp_path $1;"; done
}

# The start of an nginx config run in the foreground as one process, its pid,
# error log and temporary files under DIR, up to and including `http {` and
# `access_log off;` (the caller adds its http-level lines and the closing `}`):
# nginx_conf_head DIR.
nginx_conf_head() {
    cat <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log error;
events { worker_connections 4096; }
http {
    access_log off;
$(nginx_temp_paths "$1")
EOF
}

# 100 KB of text that compresses like a page (varied lines, not one byte),
# the same bytes on every call: text_page FILE.
text_page() {
    python3 -c '
import random
random.seed(1)
words = "proxy sticky session cookie upstream backend server location header value request response".split()
out = []
while sum(len(l) for l in out) < 102400:
    out.append(" ".join(random.choice(words) for _ in range(12)) + " %d\n" % random.randrange(10**6))
print("".join(out)[:102400], end="")' > "$1"
}

# The nginx config of the two backends (one worker, `return 200`) on ports B1
# and B2, its files under DIR: backends_conf DIR B1 B2.
backends_conf() {
    cat <<EOF
$(nginx_conf_head "$1")
    keepalive_requests 100000;
    server { listen 127.0.0.1:$2; location / { return 200 "backend one\n"; } }
    server { listen 127.0.0.1:$3; location / { return 200 "backend two\n"; } }
}
EOF
}

# The sticky upstream `app` (insert, indirect) over B1 and B2:
# sticky_upstream B1 B2.
sticky_upstream() {
    cat <<EOF
    upstream app {
        session_sticky cookie=route mode=insert option=indirect;
        server 127.0.0.1:$1;
        server 127.0.0.1:$2;
        keepalive 1024;
    }
EOF
}

# Our config in front of them (sticky insert, indirect), listening on PORT:
# ours_conf PORT B1 B2.
ours_conf() {
    cat <<EOF
worker_processes 1;
error_log stderr error;
events { worker_connections 4096; }
http {
$(sticky_upstream "$2" "$3")
    server {
        listen 127.0.0.1:$1;
        keepalive_requests 100000;
        location / { proxy_pass http://app; }
    }
}
EOF
}

# nginx as the sticky proxy's counterpart (`hash $cookie_route` over the two
# backends, keep-alive upstream), its files under DIR, listening on PORT with
# LISTEN_OPT after the address (e.g. " http2"; may be empty):
# nginx_hash_conf DIR PORT B1 B2 [LISTEN_OPT].
nginx_hash_conf() {
    cat <<EOF
$(nginx_conf_head "$1")
    upstream app {
        hash \$cookie_route;
        server 127.0.0.1:$3;
        server 127.0.0.1:$4;
        keepalive 1024;
    }
    server {
        listen 127.0.0.1:$2${5:-};
        keepalive_requests 100000;
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }
    }
}
EOF
}

# A plain proxy in front of one backend (no sticky: `proxy_pass` to a
# keep-alive upstream, client keepalive_requests left at its default), listening
# on PORT, with EXTRA (server-level directives, may be empty) in its server
# block: plain_conf PORT B [EXTRA]. (The config of docs/performance.md's
# `callgrind_request.sh` figures.)
plain_conf() {
    cat <<EOF
worker_processes 1;
error_log stderr error;
events { worker_connections 1024; }
http {
    upstream app { server 127.0.0.1:$2; keepalive 32; }
    server { listen 127.0.0.1:$1; ${3:-} location / { proxy_pass http://app; } }
}
EOF
}

# Files from ROOT (`sendfile on`, keep-alive), listening on PORT: the 1 KB
# case of bench/static.sh for one server alone: static_conf PORT ROOT [DIRECTIVES].
static_conf() {
    cat <<EOF
worker_processes 1;
error_log stderr error;
events { worker_connections 1024; }
http {
    server { listen 127.0.0.1:$1; keepalive_requests 100000; sendfile on; root $2; ${3:-} }
}
EOF
}

# Starts one nginx backend (1 worker, `return 200 "backend N"`, no access log)
# listening on each 127.0.0.1:PORT given, under $WORK/backend, pinned with
# the taskset prefix in $BACKEND_CPU (e.g. "taskset -c 1"; empty: none).
start_backend_nginx() {
    mkdir -p "$WORK/backend"
    {
        nginx_conf_head "$WORK/backend"
        echo "    keepalive_requests 1000000;"
        local n=0 port
        for port in "$@"; do
            n=$((n + 1))
            echo "    server { listen 127.0.0.1:$port; location / { return 200 \"backend $n\\n\"; } }"
        done
        echo "}"
    } > "$WORK/backend/nginx.conf"
    ${BACKEND_CPU:-} nginx -c "$WORK/backend/nginx.conf" -p "$WORK/backend" &
    PIDS+=($!)
    for port in "$@"; do wait_port "$port"; done
}
