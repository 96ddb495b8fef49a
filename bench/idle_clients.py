#!/usr/bin/env python3
"""Idle keep-alive clients for bench/idle_memory.sh (stdlib only).

    idle_clients.py PORT N READY_FILE

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


async def open_one(port, sem, conns, errors):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), TIMEOUT)
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors.append(f"connect: {e!r}")
            return
        try:
            if await exchange(reader, writer):
                conns.append((reader, writer))
                return
            errors.append("not a keep-alive 200")
        except Exception as e:  # noqa: BLE001
            errors.append(f"request: {e!r}")
        writer.close()


async def check_alive(conn):
    try:
        return await exchange(*conn)
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
    for _, w in conns:
        w.close()
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
