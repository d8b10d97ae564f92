#!/usr/bin/env python3
"""Prints vectors.json: expected values of re6st's encodings, computed with
the Python standard library from the definitions in the protocol notes
(packed integers, CN of a prefix, network of a CA serial, the HMAC-SHA1
hash chain of registry calls)."""
import base64
import hashlib
import hmac
import json


def pack_integer(i):
    for n in range(8):
        span = 32 << 8 * n
        if i < span:
            return (i + n * span).to_bytes(8, "big")[7 - n:]
        i -= span
    raise OverflowError


def chain(secret, paths, bodies):
    steps = []
    key = secret
    for path, body in zip(paths, bodies):
        request_mac = hmac.new(key, path.encode(), hashlib.sha1).digest()
        response_key = hashlib.sha1(key).digest()
        response_mac = hmac.new(response_key, body.encode(), hashlib.sha1).digest()
        steps.append({
            "key": key.hex(),
            "path": path,
            "request_mac": base64.b64encode(request_mac).decode(),
            "body": body,
            "response_mac": base64.b64encode(response_mac).decode(),
        })
        key = hashlib.sha1(response_key).digest()
    return steps


integers = [0, 1, 31, 32, 33, 300, 8223, 8224, 2**21 + 8223, 2**21 + 8224, 2**40, 2**60]
prefixes = ["", "0", "1", "0000000000000001", "0000000000000010", "111", "0" * 64 + "1", "1" * 80]
print(json.dumps({
    "packed_integers": [{"value": i, "hex": pack_integer(i).hex()} for i in integers],
    "common_names": [{"prefix": p, "cn": "%u/%u" % (int(p, 2) if p else 0, len(p))} for p in prefixes],
    "ca_serial": {"hex": "120010db80042", "network": bin(0x120010db80042)[3:]},
    "hmac_chain": chain(b"0123456789abcdefghij",
                        ["/getNetworkConfig?cn=0000000000000001", "/renewCertificate?cn=0000000000000001",
                         "/getBootstrapPeer?cn=0000000000000001"],
                        ["config body", "", "peer"]),
}, indent=1))
