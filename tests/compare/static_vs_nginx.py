#!/usr/bin/env python3
"""Sends the same requests to sticky-proxy and to nginx, both serving the same
document tree with the same configuration, and compares the answers: status,
Content-Type, Content-Range, Content-Encoding, Location (port aside), Vary,
and the body (decoded when compressed, multipart boundaries normalized).

Cases: try_files order and fallbacks and its directory test (`$uri/`,
`/b$uri/`, `/`), alias in a regex location with captures, index with and
without the trailing slash, Range edge cases (unit case, too short), autoindex
listings (links escaped, short sizes, POST), the escaped trailing-slash
redirect, `error_page` files (plain, `=200`, `=`) with Range and conditions,
charset_types, the Content-Type of `return`, and gzip_proxied decisions on a
backend's Cache-Control/Expires/ETag/Last-Modified.

Usage: tests/compare/static_vs_nginx.py [PROXY_BIN]   (default: target/debug/proxy
under $CARGO_TARGET_DIR or ./target). Skips (exit 0) with a message when nginx
is not installed. Exit 1 on any difference not listed in KNOWN_DIFFERENCES.
"""
import gzip, http.client, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

KNOWN_DIFFERENCES = {
    # nginx serves /img../x from the sibling directory; we refuse it (docs/static.md).
    "/nos../secret.txt",
}


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"port {port} never opened")


def request(port, path, headers, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path, headers={"Host": "localhost", **headers})
    r = c.getresponse()
    body = r.read()
    h = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    if h.get("content-encoding") == "gzip" and body:
        body = gzip.decompress(body)
    ct = h.get("content-type", "")
    m = re.search(r"boundary=(\S+)", ct)
    if m:
        body = body.replace(m.group(1).encode(), b"B")
        ct = ct.replace(m.group(1), "B")
    loc = re.sub(r":\d+/", ":PORT/", h.get("location", ""))
    facts = {
        "status": r.status,
        "content-type": ct,
        "content-range": h.get("content-range"),
        "content-encoding": h.get("content-encoding"),
        "location": loc,
        "vary": h.get("vary"),
        "last-modified": "last-modified" in h,
        # A server-made error page's body names the server (they differ); a
        # page from a file (error_page) is compared.
        "body": None if r.status >= 300 and b"<hr><center>" in body else body,
    }
    return facts


def main():
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx:
        print("SKIP: nginx is not installed (apt-get install -y nginx)")
        return 0
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    proxy = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "debug", "proxy")
    if not os.path.exists(proxy):
        sys.exit(f"no proxy binary at {proxy} (cargo build first)")
    work = tempfile.mkdtemp(prefix="sp-compare-")
    procs = []
    try:
        d = os.path.join(work, "www")
        files = {
            "index.html": b"<h1>root index</h1>",
            "a.html": b"A page",
            "f.txt": b"0123456789",
            "dir/index.html": b"dir index",
            "dir2/other.htm": b"other",
            "noindex/x.txt": b"x",
            "fallback.html": b"the fallback",
            "pics/a.png": b"PNG",
            "secret.txt": b"secret",
            "v2/app.js": b"js v2",
            "file/x.txt": b"x",
            "app/x.txt": b"x",
            "list/q\"on<x>&.txt": b"1",
            "list/big.bin": b"\0" * 10752,
            "list/sub/s.txt": b"s",
            "d<x>/index.html": b"escaped dir",
            "ep/404.html": b"custom not found",
            "b/a2/d/f.txt": b"f",
        }
        for p, data in files.items():
            full = os.path.join(d, p)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(data)
        backend, ours, ref = free_ports(3)
        text = "x" * 2000
        server_body = f"""
        root {d};
        types {{ text/html html; text/plain txt; application/javascript js; image/png png; }}
        default_type application/octet-stream;
        gzip on; gzip_types text/plain; gzip_vary on;
        location /t/ {{ try_files $uri $uri.html $uri/ /fallback.html; }}
        location /code/ {{ try_files $uri =404; }}
        location /img/ {{ alias {d}/pics/; }}
        location /nos {{ alias {d}/pics; }}
        location ~ ^/assets/(v\\d+)/(.+)$ {{ alias {d}/$1/$2; }}
        location /dir2/ {{ index other.htm; }}
        location /file/ {{ try_files $uri =404; }}
        location /app/ {{ try_files $uri @app; }}
        location @app {{ return 200 "app $uri"; }}
        location /list/ {{ autoindex on; autoindex_exact_size off; }}
        location /ep/ {{ error_page 404 /ep/404.html; }}
        location /ep2/ {{ error_page 404 =200 /ep/404.html; }}
        location /ep3/ {{ error_page 404 = /ep/404.html; }}
        location /a2/ {{ try_files /b$uri/ =418; }}
        location /slash/ {{ try_files / =418; }}
        location /r/ {{ return 200 "typed"; }}
        location /r0/ {{ return 200; }}
        location /r4/ {{ return 404 "nf"; }}
        location /cs/ {{ alias {d}/; charset utf-8; charset_types text/plain; }}
        location /p/ {{ proxy_pass http://127.0.0.1:{backend}/; }}
        location /pany/ {{ gzip_proxied any; proxy_pass http://127.0.0.1:{backend}/; }}
        location /pnc/ {{ gzip_proxied no-cache no-store private expired; proxy_pass http://127.0.0.1:{backend}/; }}
        location /plm/ {{ gzip_proxied no_last_modified no_etag; proxy_pass http://127.0.0.1:{backend}/; }}
        """
        temp = "".join(f"  {t}_temp_path {work}/tmp;\n" for t in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"])
        os.makedirs(f"{work}/tmp", exist_ok=True)
        os.makedirs(f"{work}/logs", exist_ok=True)
        backend_locs = f"""
            location /plain {{ return 200 "{text}"; }}
            location /nc {{ add_header Cache-Control no-cache; return 200 "{text}"; }}
            location /pub {{ add_header Cache-Control public; return 200 "{text}"; }}
            location /exp {{ add_header Expires "Thu, 01 Jan 1970 00:00:01 GMT"; return 200 "{text}"; }}
            location /fut {{ add_header Expires "Fri, 01 Jan 2100 00:00:00 GMT"; return 200 "{text}"; }}
            location /lm {{ add_header Last-Modified "Thu, 01 Jan 1970 00:00:01 GMT"; return 200 "{text}"; }}
            location /et {{ add_header ETag '"v1"'; return 200 "{text}"; }}
        """
        nginx_conf = f"""daemon off; master_process off; worker_processes 1;
error_log {work}/logs/error.log error; pid {work}/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log off;
{temp}
  default_type text/plain;
  server {{ listen 127.0.0.1:{backend}; {backend_locs} }}
  server {{ listen 127.0.0.1:{ref}; {server_body} }}
}}
"""
        ours_conf = f"""events {{ worker_connections 256; }}
http {{
  server {{ listen 127.0.0.1:{ours}; {server_body} }}
}}
"""
        with open(f"{work}/nginx.conf", "w") as f:
            f.write(nginx_conf)
        with open(f"{work}/ours.conf", "w") as f:
            f.write(ours_conf)
        procs.append(subprocess.Popen([nginx, "-c", f"{work}/nginx.conf", "-p", work], stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([proxy, "-c", f"{work}/ours.conf"], stderr=open(f"{work}/ours.log", "w")))
        for p in (backend, ours, ref):
            wait_port(p)
        gz = {"Accept-Encoding": "gzip"}
        via = {"Accept-Encoding": "gzip", "Via": "1.1 cdn"}
        cases = [
            ("/t/a.html", {}), ("/t/a", {}), ("/t/dir", {}), ("/t/nothing", {}),
            ("/code/none", {}), ("/img/a.png", {}), ("/nos/a.png", {}), ("/nos../secret.txt", {}),
            ("/assets/v2/app.js", {}), ("/assets/v3/app.js", {}),
            ("/", {}), ("/dir/", {}), ("/dir", {}), ("/dir?x=1", {}), ("/dir2/", {}), ("/noindex/", {}),
            ("/missing/", {}), ("/missing", {}),
            ("/f.txt", {"Range": "bytes=2-4"}), ("/f.txt", {"Range": "bytes=-3"}),
            ("/f.txt", {"Range": "bytes=5-"}), ("/f.txt", {"Range": "bytes=0-0,-1"}),
            ("/f.txt", {"Range": "bytes=10-"}), ("/f.txt", {"Range": "bytes=2-100"}),
            ("/f.txt", {"Range": "bytes=5-2"}), ("/f.txt", {"Range": "items=0-1"}),
            ("/f.txt", {"Range": "bytes=0-1,3-4,20-30"}), ("/f.txt", {"Range": "bytes=-0"}),
            ("/f.txt", gz), ("/f.txt", {"Accept-Encoding": "gzip;q=0"}), ("/missing", gz), ("/noindex/", gz),
            ("/f.txt", {**gz, "Range": "bytes=1-2"}), ("/t/dir", gz),
            ("/p/plain", gz), ("/p/plain", via), ("/pany/plain", via),
            ("/pnc/nc", via), ("/pnc/pub", via), ("/pnc/exp", via), ("/pnc/fut", via), ("/pnc/plain", via),
            ("/plm/plain", via), ("/plm/lm", via), ("/plm/et", via),
            ("/file/", {}), ("/app/", {}), ("/list/", {}), ("/list/", {}, "POST"), ("/d%3Cx%3E", {}),
            ("/ep/nope", {}), ("/ep/nope", {"Range": "bytes=0-3"}), ("/ep/nope", {"If-Match": '"zzz"'}),
            ("/cs/a.html", {}), ("/cs/f.txt", {}),
            ("/f.txt", {"Range": "bytes="}), ("/f.txt", {"Range": "Bytes=0-1"}), ("/f.txt", {"Range": "BYTES=-2"}),
            ("/ep2/nope", {"Range": "bytes=0-3"}), ("/ep3/nope", {"Range": "bytes=0-3"}),
            ("/a2/d", {}), ("/a2/d?x=1", {}), ("/slash/x", {}),
            ("/r/x.js", {}), ("/r/x", {}), ("/r0/x.js", {}), ("/r4/x.js", {}),
        ]
        diffs = 0
        for path, headers, *method in cases:
            a = request(ours, path, headers, *method)
            b = request(ref, path, headers, *method)
            same = a == b
            mark = "same" if same else ("known" if path in KNOWN_DIFFERENCES else "DIFF")
            if not same:
                print(f"{mark:5} {path} {headers}\n      ours:  {a}\n      nginx: {b}")
                if mark == "DIFF":
                    diffs += 1
            else:
                print(f"same  {path} {headers} -> {a['status']}")
        print(f"{len(cases) - diffs} same or known, {diffs} different")
        return 1 if diffs else 0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
