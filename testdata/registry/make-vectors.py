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


def last_config(crl, registry_prefix, ipv4=None, same_country=None):
    # The keys re6st's registry puts in last_config, dumped as it dumps them.
    kw = {
        "babel_default": "max-rtt-penalty 5000 rtt-max 500 rtt-decay 125",
        "crl": crl,
        "protocol": 10,
        "registry_prefix": registry_prefix,
        "client_count": 10,
        "encrypt": False,
        "hello": 15,
        "max_clients": 20,
        "min_protocol": 1,
        "tunnel_refresh": 300,
    }
    if ipv4:
        kw["ipv4"], kw["ipv4_sublen"] = ipv4
    if same_country:
        kw["same_country"] = same_country
    return json.dumps(kw, sort_keys=True)


integers = [0, 1, 31, 32, 33, 300, 8223, 8224, 2**21 + 8223, 2**21 + 8224, 2**40, 2**60]
prefixes = ["", "0", "1", "0000000000000001", "0000000000000010", "111", "0" * 64 + "1", "1" * 80]
print(json.dumps({
    "packed_integers": [{"value": i, "hex": pack_integer(i).hex()} for i in integers],
    "common_names": [{"prefix": p, "cn": "%u/%u" % (int(p, 2) if p else 0, len(p))} for p in prefixes],
    "ca_serial": {"hex": "120010db80042", "network": bin(0x120010db80042)[3:]},
    "last_config": [
        {"crl": [], "registry_prefix": None, "json": last_config([], None)},
        {"crl": [3, 17], "registry_prefix": "0000000000000001", "ipv4": "10.42.0.0/16", "ipv4_sublen": 8,
         "same_country": ["FR", "DE"],
         "json": last_config([3, 17], "0000000000000001", ("10.42.0.0/16", 8), ["FR", "DE"])},
    ],
    "hmac_chain": chain(b"0123456789abcdefghij",
                        ["/getNetworkConfig?cn=0000000000000001", "/renewCertificate?cn=0000000000000001",
                         "/getBootstrapPeer?cn=0000000000000001"],
                        ["config body", "", "peer"]),
}, indent=1))
