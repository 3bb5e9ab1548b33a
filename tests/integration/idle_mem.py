#!/usr/bin/env python3
"""Memory per idle keep-alive connection of a process, from its VmRSS (Linux).

  idle_mem.py PID PORT N PATH

Opens N connections to 127.0.0.1:PORT, sends one GET PATH on each and reads the answer,
keeps them open and idle for 3 s, and prints one JSON object: base, loaded and after (VmRSS in KiB
before, with the N idle connections, and after they closed and 5 s) and
per_conn_kib ((loaded - base) / N).
"""
import json
import socket
import sys
import time


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_answer(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            raise EOFError("closed before the answer")
        buf += b
    head, _, body = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    while len(body) < n:
        body += s.recv(65536)


def main():
    pid, port, n, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    req = ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode()
    # Warm up: the first attested handshake, the allocator's first arenas.
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(req)
        read_answer(s)
        s.close()
    time.sleep(0.5)
    base = rss_kib(pid)
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        conns.append(s)
    for s in conns:
        s.sendall(req)
    for s in conns:
        read_answer(s)
    time.sleep(3.0)
    loaded = rss_kib(pid)
    for s in conns:
        s.close()
    time.sleep(5.0)
    after = rss_kib(pid)
    print(json.dumps({"base": base, "loaded": loaded, "after": after,
                      "per_conn_kib": round((loaded - base) / n, 1)}))


if __name__ == "__main__":
    main()
