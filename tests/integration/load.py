#!/usr/bin/env python3
"""Keep-alive load for the integration tests (standard library only).

  load.py PORT CLIENTS SECONDS PATH [METHOD]

CLIENTS threads each send requests on one keep-alive connection for SECONDS (a new
connection after the server side closed one). Prints one JSON object: the count per status
and "nostatus", the requests whose head was sent and whose connection closed without any
HTTP status.
"""
import http.client
import json
import sys
import threading
import time


def worker(port, deadline, path, method, counts, lock):
    conn = None
    while time.time() < deadline:
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            body = b"x" * 10 if method == "POST" else None
            conn.request(method, path, body=body)
            r = conn.getresponse()
            r.read()
            key = str(r.status)
            if r.will_close:
                conn.close()
                conn = None
        except (http.client.HTTPException, OSError) as e:
            key = "nostatus"
            conn.close()
            conn = None
            with lock:
                counts.setdefault("errors", []).append(repr(e)[:120])
        with lock:
            counts[key] = counts.get(key, 0) + 1


def main():
    port, clients, secs, path = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    method = sys.argv[5] if len(sys.argv) > 5 else "GET"
    counts, lock = {}, threading.Lock()
    deadline = time.time() + secs
    ts = [threading.Thread(target=worker, args=(port, deadline, path, method, counts, lock))
          for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if "errors" in counts:
        counts["errors"] = sorted(set(counts["errors"]))[:5]
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
