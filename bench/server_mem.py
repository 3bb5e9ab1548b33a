#!/usr/bin/env python3
"""Resident memory of ccgate-server per idle connection, and after a burst.

   bench/server_mem.py [--bin DIR] [--n N]

Starts ccgate-mock-worker and ccgate-server (sim TEE) on 127.0.0.1, reads the server's VmRSS,
opens N TLS connections that each complete one keep-alive GET (so both legs and the TLS
buffers have been used), reads VmRSS again while they are held idle, closes them all, and
reads VmRSS once more after a second. Prints KiB per idle connection and what was returned.
Measure the release build (build/release/bin), not ASan.
"""
import argparse, os, resource, signal, socket, ssl, subprocess, sys, tempfile, time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, secs=20):
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"port {port} never opened")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "release", "bin"))
    ap.add_argument("--n", type=int, default=1000)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 3 * a.n + 100)), hard))
    tmp = tempfile.mkdtemp(prefix="ccgate-mem.")
    state = os.path.join(tmp, "state")
    subprocess.run([os.path.join(a.bin, "ccgate"), "sim-init", "--state-dir", state], check=True,
                   stdout=subprocess.DEVNULL)
    up, srv = free_port(), free_port()
    procs = []
    try:
        procs.append(subprocess.Popen([os.path.join(a.bin, "ccgate-mock-worker"), "--listen", f"127.0.0.1:{up}"],
                                      stderr=subprocess.DEVNULL))
        wait_port(up)
        server = subprocess.Popen([os.path.join(a.bin, "ccgate-server"), "--listen", f"127.0.0.1:{srv}",
                                   "--upstream", f"127.0.0.1:{up}", "--tee", "sim", "--state-dir", state,
                                   "--max-connections", str(a.n + 10)], stderr=subprocess.DEVNULL)
        procs.append(server)
        wait_port(srv)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])

        def one():
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv), timeout=10))
            s.sendall(b"GET /bytes/1024 HTTP/1.1\r\nHost: up\r\n\r\n")
            got = b""
            while b"\r\n\r\n" not in got or len(got.split(b"\r\n\r\n", 1)[1]) < 1024:
                chunk = s.recv(65536)
                if not chunk:
                    sys.exit("server closed early")
                got += chunk
            return s

        one().close()  # warm-up: the certificate, the loop's buffers
        time.sleep(0.5)
        base = rss_kib(server.pid)
        conns = [one() for _ in range(a.n)]
        time.sleep(1)
        held = rss_kib(server.pid)
        for s in conns:
            s.close()
        time.sleep(1.5)
        after = rss_kib(server.pid)
        print(f"ccgate-server: base {base} KiB, {a.n} idle connections {held} KiB "
              f"= {(held - base) / a.n:.1f} KiB per connection; after closing them {after} KiB "
              f"({held - after} KiB returned, {after - base} KiB kept)")
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
