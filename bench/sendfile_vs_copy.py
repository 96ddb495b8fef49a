#!/usr/bin/env python3
"""sendfile(2) against pread+send of a 1 MiB file to a loopback TCP socket: the
sending thread's user and system CPU per MiB (issue 18: the case for sendfile in
the connection loop). Usage: taskset -c 0 bench/sendfile_vs_copy.py"""
import os, socket, threading, time, resource
data = os.urandom(1 << 20)
path = "/tmp/sf_bench_%d.bin" % os.getpid()
open(path, "wb").write(data)
N = 1500
def sink(conn, total):
    got = 0
    while got < total:
        b = conn.recv(1 << 20)
        if not b: break
        got += len(b)
def run(mode):
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
    c = socket.create_connection(srv.getsockname()); s, _ = srv.accept()
    t = threading.Thread(target=sink, args=(s, N * len(data))); t.start()
    fd = os.open(path, os.O_RDONLY)
    r0 = resource.getrusage(resource.RUSAGE_THREAD)
    for _ in range(N):
        off = 0
        if mode == "sendfile":
            while off < len(data):
                off += os.sendfile(c.fileno(), fd, off, len(data) - off)
        else:
            while off < len(data):
                buf = os.pread(fd, 65536, off)
                c.sendall(buf)
                off += len(buf)
    r1 = resource.getrusage(resource.RUSAGE_THREAD)
    c.shutdown(socket.SHUT_WR); t.join(); os.close(fd); c.close(); s.close(); srv.close()
    u = (r1.ru_utime - r0.ru_utime) / N * 1e6; sy = (r1.ru_stime - r0.ru_stime) / N * 1e6
    print(f"{mode:10} usr {u:7.1f} us  sys {sy:7.1f} us  per 1 MiB")
for m in ["readwrite", "sendfile", "readwrite", "sendfile"]:
    run(m)
os.remove(path)
