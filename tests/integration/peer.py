#!/usr/bin/env python3
"""Small test peers for the integration tests (127.0.0.1 only, standard library only).

  peer.py tcp-server PORT DIR     binary upstream for TCP mode (see handle_tcp)
  peer.py tcp-client PORT CMD     the app side of the same protocol; exits 0 when all checks pass
  peer.py ws-server PORT          an HTTP server that upgrades to a raw echo tunnel
  peer.py ws-client PORT          upgrades through the pair and checks the echo both ways
  peer.py http-server PORT        HTTP/1.1 upstream with 204, 304 and HEAD answers
  peer.py stale-relay PORT TO     TCP relay that closes a connection reused after 3 s quiet
  peer.py bad-server PORT         HTTP/1.1 upstream whose answers to some paths are invalid
  peer.py raw PORT HEXBYTES       sends the bytes, half-closes, prints what came back (repr)
"""
import hashlib
import os
import socket
import sys
import threading

BANNER = bytes(range(256)) * 400  # every byte value, 100 KiB


def recv_all(s):
    out = bytearray()
    while True:
        b = s.recv(65536)
        if not b:
            return bytes(out)
        out += b


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise EOFError("EOF after %d of %d bytes" % (len(out), n))
        out += b
    return bytes(out)


def xform(data):
    return bytes(b ^ 0xA5 for b in data)


def handle_tcp(conn, out_dir):
    """First byte chooses the half-close direction.
    'E': read to EOF (the app half-closed), answer sha256 + the data XOR 0xA5, then close.
    'B': send BANNER and half-close first, then read to EOF and write the sha256 to a file."""
    with open(os.path.join(out_dir, "conns"), "a") as f:
        f.write("accepted\n")
    with conn:
        cmd = recv_exact(conn, 1)
        if cmd == b"E":
            data = recv_all(conn)
            conn.sendall(hashlib.sha256(data).digest() + xform(data))
            conn.shutdown(socket.SHUT_WR)
        elif cmd == b"B":
            conn.sendall(BANNER)
            conn.shutdown(socket.SHUT_WR)
            data = recv_all(conn)
            tmp = os.path.join(out_dir, "sink.tmp")
            with open(tmp, "w") as f:
                f.write(hashlib.sha256(data).hexdigest())
            os.rename(tmp, os.path.join(out_dir, "sink.sha256"))


def tcp_client(port, cmd):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    payload = os.urandom(1 << 20)
    if cmd == "E":
        s.sendall(b"E" + payload)
        s.shutdown(socket.SHUT_WR)  # the app's FIN must reach the upstream as EOF
        got = recv_all(s)
        assert got[:32] == hashlib.sha256(payload).digest(), "upstream saw other bytes"
        assert got[32:] == xform(payload), "answer differs (%d bytes)" % (len(got) - 32)
    else:
        s.sendall(b"B")
        banner = recv_all(s)  # EOF here while our side stays open
        assert banner == BANNER, "banner differs (%d bytes)" % len(banner)
        s.sendall(payload)  # still allowed after the upstream half-closed
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b""
        print(hashlib.sha256(payload).hexdigest())
    s.close()


def serve(port, handler, *args):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(128)
    print("listening", flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=handler, args=(conn,) + args, daemon=True).start()


def read_head(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(1)
        if not b:
            raise EOFError("EOF in head")
        buf += b
    return buf.decode("latin-1")


def handle_ws(conn):
    """Answers 101 to a request with Upgrade, then echoes raw bytes XOR 0x5A until EOF."""
    with conn:
        head = read_head(conn)
        if "upgrade: websocket" not in head.lower():
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n"
                     b"hello-from-upstream")
        while True:
            b = conn.recv(65536)
            if not b:
                break
            conn.sendall(bytes(x ^ 0x5A for x in b))
        conn.shutdown(socket.SHUT_WR)


def ws_client(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = read_head(s)
    assert head.startswith("HTTP/1.1 101"), head
    assert "upgrade: websocket" in head.lower(), head
    assert recv_exact(s, 19) == b"hello-from-upstream"
    for size in (1, 1000, 300000):
        data = os.urandom(size)
        s.sendall(data)
        assert recv_exact(s, size) == bytes(x ^ 0x5A for x in data), size
    s.shutdown(socket.SHUT_WR)
    assert recv_all(s) == b""
    s.close()


def http_server(port):
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_HEAD(self):
            self.send_response(200)
            self.send_header("Content-Length", "5000")
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()

        def do_GET(self):
            if self.path == "/204":
                self.send_response(204)
                self.end_headers()
            elif self.path == "/304":
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.send_header("Content-Length", "1234")
                self.end_headers()
            else:
                body = ("ok " + self.path).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("listening", flush=True)
    srv.serve_forever()


def stale_relay(port, to_port):
    """Relays bytes to 127.0.0.1:to_port; when the client side sends after the connection
    was quiet for 3 s, closes both sides instead: a server that closed an idle keep-alive
    connection just as the client reused it."""
    import select
    import time

    def relay(a):
        b = socket.create_connection(("127.0.0.1", to_port))
        last = time.monotonic()
        try:
            while True:
                r, _, _ = select.select([a, b], [], [])
                for x in r:
                    data = x.recv(65536)
                    if x is a and data and time.monotonic() - last > 3.0:
                        print("dropped a reused connection", flush=True)
                        return
                    if not data:
                        return
                    (b if x is a else a).sendall(data)
                    last = time.monotonic()
        finally:
            a.close()
            b.close()

    serve(port, relay)


BAD_ANSWERS = {
    # Content-Length with Transfer-Encoding: a smuggling vector no proxy may pass on.
    "/clte": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"5\r\nhello\r\n0\r\n\r\n",
    # A body after the answer to HEAD: the bytes are the start of no response.
    "HEAD /headbody": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
}


def handle_bad(conn):
    """Answers each request head; bodies are not expected (GET and HEAD only)."""
    with conn:
        while True:
            try:
                head = read_head(conn)
            except EOFError:
                return
            method, path = head.split(" ")[:2]
            ans = BAD_ANSWERS.get(method + " " + path) or BAD_ANSWERS.get(path)
            if ans is None:
                body = ("ok " + path).encode()
                ans = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
                if method != "HEAD":
                    ans += body
            conn.sendall(ans)


def raw(port, hexbytes):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(bytes.fromhex(hexbytes))
    s.shutdown(socket.SHUT_WR)
    try:
        out = recv_all(s)
    except ConnectionResetError:
        out = b"<reset>"
    print(repr(out))


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "tcp-server":
        serve(port, handle_tcp, sys.argv[3])
    elif mode == "tcp-client":
        tcp_client(port, sys.argv[3])
    elif mode == "ws-server":
        serve(port, handle_ws)
    elif mode == "ws-client":
        ws_client(port)
    elif mode == "http-server":
        http_server(port)
    elif mode == "stale-relay":
        stale_relay(port, int(sys.argv[3]))
    elif mode == "bad-server":
        serve(port, handle_bad)
    elif mode == "raw":
        raw(port, sys.argv[3])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
