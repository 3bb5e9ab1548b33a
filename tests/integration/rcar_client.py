#!/usr/bin/python3
"""An independent RCAR 0.4.0 client (Trustee's KBS protocol), written from the protocol
description with python3-jwcrypto for JOSE, to check ccgate-kbs from outside.

  rcar_client.py URL RESOURCE KEYTYPE(EC|RSA) SIM_EVIDENCE_CMD... [-- options]

Prints one JSON object: the status of each step, the token's claims, the released plaintext.
Options (environment): RCAR_STEPS=auth,attest,resource (default), RCAR_BEARER=1 to fetch the
resource with the token instead of the cookie, RCAR_NONCE=<value> to send another nonce,
RCAR_REPEAT=attest|resource to send that request twice (the second result is reported),
RCAR_ATTEST_BODY=FILE to send a recorded attestation instead, RCAR_TEE and
RCAR_EVIDENCE_FILE to send recorded evidence of another TEE, RCAR_VERSION to claim another
protocol version, RCAR_ATTEST_HANGUP=fin|rst to send the attestation and leave without
reading its answer (half-close, or reset), then fetch the resource with the cookie.
"""
import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from jwcrypto import jwe, jwk

HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def jcs(obj):
    # RFC 8785 for what this protocol carries (ASCII names, strings, integers).
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def call(url, method, path, cookie=None, body=None, bearer=None):
    req = urllib.request.Request(url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if cookie:
        req.add_header("Cookie", cookie)
    if bearer:
        req.add_header("Authorization", "Bearer " + bearer)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.headers.get("Set-Cookie"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Set-Cookie"), e.read().decode()


def hangup(url, path, cookie, body, how):
    # The request on a raw socket, then gone: FIN (the answer is still sent) or RST.
    host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
    data = json.dumps(body).encode()
    s = socket.create_connection((host, port), timeout=20)
    s.sendall(b"POST %s HTTP/1.1\r\nHost: kbs\r\nCookie: %s\r\nContent-Type: application/json"
              b"\r\nContent-Length: %d\r\n\r\n" % (path.encode(), cookie.encode(), len(data))
              + data)
    if how == "rst":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        return None
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while (d := s.recv(65536)):
        answer += d
    s.close()
    return answer.split(b" ")[1].decode() if answer else "none"


def resource_call(url, resource, cookie, bearer):
    # Retried while the session's evidence is still being verified (after a hangup).
    for _ in range(200):
        st, _, body = call(url, "GET", "/kbs/v0/resource/" + resource,
                           cookie=None if bearer else cookie, bearer=bearer)
        if st != 401 or json.loads(body)["type"] != "ccgate-kbs/session.verifying":
            break
        time.sleep(0.05)
    return st, body


def main():
    url, resource, kty = sys.argv[1], sys.argv[2], sys.argv[3]
    evidence_cmd = sys.argv[4:]
    out = {}
    st, setc, body = call(url, "POST", "/kbs/v0/auth", body={
        "version": os.environ.get("RCAR_VERSION", "0.4.0"),
        "tee": os.environ.get("RCAR_TEE", "ccgate-sim"),
        "extra-params": {"supported-hash-algorithms": ["sha384", "sha256"]}})
    out["auth"] = st
    if st != 200:
        out["auth_body"] = json.loads(body)
        print(json.dumps(out))
        return
    cookie = setc.split(";")[0]
    chal = json.loads(body)
    nonce, alg = chal["nonce"], chal["extra-params"]["selected-hash-algorithm"]
    assert len(base64.b64decode(nonce, validate=True)) == 32
    key = jwk.JWK.generate(kty="EC", crv="P-256") if kty == "EC" else \
        jwk.JWK.generate(kty="RSA", size=3072)
    pub = json.loads(key.export_public())
    h = HASHES[alg](jcs({"tee-pubkey": pub, "nonce": nonce,
                         "additional-evidence": ""}).encode()).digest()
    rd = (h + bytes(64 - len(h))).hex()
    if os.environ.get("RCAR_EVIDENCE_FILE"):  # recorded evidence (another TEE's)
        primary = json.load(open(os.environ["RCAR_EVIDENCE_FILE"]))
    else:
        primary = json.loads(subprocess.check_output(evidence_cmd + [rd]))
    attest_body = {"runtime-data": {"nonce": os.environ.get("RCAR_NONCE", nonce),
                                    "tee-pubkey": pub},
                   "tee-evidence": {"primary_evidence": primary, "additional_evidence": ""}}
    if os.environ.get("RCAR_ATTEST_BODY"):  # replay a recorded attestation
        attest_body = json.load(open(os.environ["RCAR_ATTEST_BODY"]))
    out["attest_request"] = attest_body
    out["cookie"] = cookie
    bearer = None
    if os.environ.get("RCAR_ATTEST_HANGUP"):
        out["attest"] = hangup(url, "/kbs/v0/attest", cookie, attest_body,
                               os.environ["RCAR_ATTEST_HANGUP"])
    else:
        times = 2 if os.environ.get("RCAR_REPEAT") == "attest" else 1
        for _ in range(times):
            st, _, body = call(url, "POST", "/kbs/v0/attest", cookie=cookie, body=attest_body)
        out["attest"] = st
        out["attest_body"] = json.loads(body)
        if st != 200:
            print(json.dumps(out))
            return
        token = out["attest_body"]["token"]
        payload = token.split(".")[1]
        out["claims"] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        bearer = token if os.environ.get("RCAR_BEARER") else None
    times = 2 if os.environ.get("RCAR_REPEAT") == "resource" else 1
    for _ in range(times):
        st, body = resource_call(url, resource, cookie, bearer)
    out["resource"] = st
    if st == 200:
        e = jwe.JWE()
        e.allowed_algs = ["ECDH-ES+A256KW", "RSA-OAEP-256", "A256GCM"]
        e.deserialize(body, key=key)
        out["protected"] = json.loads(base64.urlsafe_b64decode(
            json.loads(body)["protected"] + "=="))
        out["plaintext"] = e.payload.decode()
    else:
        out["resource_body"] = json.loads(body)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
