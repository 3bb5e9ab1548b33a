#!/usr/bin/python3
"""Independent JOSE peer for the interop tests, on Debian's python3-jwcrypto.

  jwcrypto_peer.py genkey EC|RSA PRIV.jwk PUB.jwk
  jwcrypto_peer.py encrypt PUB.jwk TEXT          prints a flattened JWE (JSON)
  jwcrypto_peer.py decrypt PRIV.jwk JWE.json     prints the plaintext
  jwcrypto_peer.py verify PUB.jwk TOKEN          prints the claims of an ES256 JWT
  jwcrypto_peer.py sign PRIV.jwk CLAIMS_JSON     prints an ES256 JWT
"""
import json
import sys

from jwcrypto import jwe, jwk, jwt

ALG = {"EC": "ECDH-ES+A256KW", "RSA": "RSA-OAEP-256"}


def load(path):
    with open(path) as f:
        return jwk.JWK.from_json(f.read())


def main(argv):
    cmd = argv[1]
    if cmd == "genkey":
        k = jwk.JWK.generate(kty="EC", crv="P-256") if argv[2] == "EC" else \
            jwk.JWK.generate(kty="RSA", size=3072)
        open(argv[3], "w").write(k.export_private())
        open(argv[4], "w").write(k.export_public())
    elif cmd == "encrypt":
        k = load(argv[2])
        e = jwe.JWE(argv[3].encode(), protected=json.dumps(
            {"alg": ALG[k["kty"]], "enc": "A256GCM"}))
        e.add_recipient(k)
        print(e.serialize(compact=False))
    elif cmd == "decrypt":
        k = load(argv[2])
        e = jwe.JWE()
        e.allowed_algs = list(ALG.values()) + ["A256GCM"]
        e.deserialize(open(argv[3]).read(), key=k)
        sys.stdout.write(e.payload.decode())
    elif cmd == "verify":
        k = load(argv[2])
        t = jwt.JWT(jwt=argv[3], key=k, algs=["ES256"])
        print(t.claims)
    elif cmd == "sign":
        k = load(argv[2])
        t = jwt.JWT(header={"alg": "ES256", "typ": "JWT"}, claims=json.loads(argv[3]))
        t.make_signed_token(k)
        print(t.serialize())
    else:
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
