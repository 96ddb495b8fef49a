#!/usr/bin/env python3
"""Idle keep-alive clients for bench/idle_memory.sh (stdlib only).

    idle_clients.py PORT N READY_FILE [h2c]

With `h2c`, each connection speaks HTTP/2 by prior knowledge (the preface,
SETTINGS, one `GET /` stream, frames written and read here by hand) instead
of HTTP/1.1; a 200 is the one-byte indexed `:status: 200` (static table
entry 8), as nginx and hyper's h2 encode it.

Opens N connections to 127.0.0.1:PORT (at most CONCURRENCY connecting at a time),
sends `GET / HTTP/1.1` on each, reads the whole response and checks it is a 200
that keeps the connection open. Then it holds every connection idle and writes
READY_FILE (atomically) with one line: "ok=K of=N".

While holding:
  SIGUSR1  sends a second request on every held connection, counts the 200s
           (proves the server kept all of them during the measurement), writes
           "alive=K of=N" to READY_FILE + ".alive" and exits.
  SIGTERM  closes everything and exits.
Exit status: 0 when every step succeeded for all N connections, 1 otherwise.
"""
import asyncio
import os
import signal
import sys

CONCURRENCY = 128
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
TIMEOUT = 30.0


async def exchange(reader, writer):
    """One request and its full response; True on a keep-alive 200."""
    writer.write(REQUEST)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ")
    length = None
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and "close" in value:
            close = True
    if length is None:
        return False  # `return 200 "ok\n"` always has a Content-Length
    await asyncio.wait_for(reader.readexactly(length), TIMEOUT)
    return len(status) >= 2 and status[0] == "HTTP/1.1" and status[1] == "200" and not close


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(kind, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def h2_literal(name, value):
    """A literal header field without indexing, new name, no Huffman (both < 127 bytes)."""
    return bytes([0, len(name)]) + name + bytes([len(value)]) + value


H2_GET = b"".join(h2_literal(n, v) for n, v in [
    (b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"x")])


class H2Conn:
    """One HTTP/2 connection: the client's next stream id and its SETTINGS ack state."""

    def __init__(self):
        self.next_stream = 1


async def h2_exchange(reader, writer, state):
    """One GET on a new stream and its whole response; True on a 200."""
    stream = state.next_stream
    state.next_stream += 2
    writer.write(h2_frame(0x1, 0x5, stream, H2_GET))  # HEADERS, END_STREAM | END_HEADERS
    await writer.drain()
    status_ok = False
    while True:
        head = await asyncio.wait_for(reader.readexactly(9), TIMEOUT)
        length = int.from_bytes(head[:3], "big")
        kind, flags = head[3], head[4]
        sid = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
        payload = await asyncio.wait_for(reader.readexactly(length), TIMEOUT) if length else b""
        if kind == 0x4 and not flags & 0x1:  # SETTINGS: acknowledge
            writer.write(h2_frame(0x4, 0x1, 0))
        elif kind == 0x7:  # GOAWAY
            return False
        elif kind == 0x3 and sid == stream:  # RST_STREAM
            return False
        elif kind == 0x1 and sid == stream:  # HEADERS (no padding or priority from servers here)
            status_ok = payload[:1] == b"\x88"
            if flags & 0x1:
                return status_ok
        elif kind == 0x0 and sid == stream and flags & 0x1:  # DATA, END_STREAM
            return status_ok


async def open_one(port, sem, conns, errors):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), TIMEOUT)
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors.append(f"connect: {e!r}")
            return
        try:
            if MODE == "h2c":
                writer.write(H2_PREFACE + h2_frame(0x4, 0, 0))
                conn = (reader, writer, H2Conn())
            else:
                conn = (reader, writer)
            if await EXCHANGE(*conn):
                conns.append(conn)
                return
            errors.append("not a keep-alive 200")
        except Exception as e:  # noqa: BLE001
            errors.append(f"request: {e!r}")
        writer.close()


async def check_alive(conn):
    try:
        return await EXCHANGE(*conn)
    except Exception:  # noqa: BLE001
        return False


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.rename(tmp, path)


async def main():
    port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    sem = asyncio.Semaphore(CONCURRENCY)
    conns, errors = [], []
    await asyncio.gather(*(open_one(port, sem, conns, errors) for _ in range(n)))
    if errors:
        kinds = {}
        for e in errors:
            kinds[e] = kinds.get(e, 0) + 1
        for e, c in sorted(kinds.items(), key=lambda kv: -kv[1])[:5]:
            print(f"idle_clients: {c} x {e}", file=sys.stderr)

    loop = asyncio.get_running_loop()
    what = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, lambda: what.done() or what.set_result("check"))
    loop.add_signal_handler(signal.SIGTERM, lambda: what.done() or what.set_result("stop"))
    write_atomic(ready, f"ok={len(conns)} of={n}")

    status = 0 if len(conns) == n else 1
    if await what == "check":
        sem = asyncio.Semaphore(CONCURRENCY)

        async def limited(c):
            async with sem:
                return await check_alive(c)

        alive = sum(await asyncio.gather(*(limited(c) for c in conns)))
        write_atomic(ready + ".alive", f"alive={alive} of={n}")
        if alive != n:
            status = 1
    for c in conns:
        c[1].close()
    return status


MODE = sys.argv[4] if len(sys.argv) > 4 else "http1"
EXCHANGE = h2_exchange if MODE == "h2c" else exchange

if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
