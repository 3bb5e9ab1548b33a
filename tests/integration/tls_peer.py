"""Raw TLS to ccgate-server's port for integration tests (standard library only).

The tests that use it are about HTTP on the attested channel, not about attestation, so the
server's certificate is not verified here; ALPN offers http/1.1 as ccgate-client does.
"""
import socket
import ssl


def connect(port, timeout=20):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=timeout))


def read_all(s):
    """Everything until the peer closes."""
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            return data
        data += b
