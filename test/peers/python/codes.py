#!/usr/bin/python3
"""Independent peer of PROTOCOL.md v1 on python3-cryptography (Debian), for the cross tier.

Reads one JSON request per line on stdin, writes one JSON answer per line on stdout.
Binary values are hex; codes are base64url without padding; issuedAt is a decimal string.
"""
import base64
import hashlib
import hmac
import json
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CARRIERS = {0: "vehicle", 1: "mobile"}


def hkdf(ikm, salt, info, length=32):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def code_key(k):
    return hkdf(k, None, b"piled/v1 code")


def verify_secret(k, code_id):
    return hkdf(k, code_id, b"piled/v1 verify")


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def plaintext(c):
    dev = c["deviceId"].encode("utf-8")
    pile = c["pileId"].encode("utf-8")
    return (
        struct.pack(">QIIIBB", int(c["issuedAt"]), c["validFor"], c["maxEnergyWh"], c["maxDurationS"],
                    {"vehicle": 0, "mobile": 1}[c["carrier"]], len(dev))
        + dev + bytes([len(pile)]) + pile
    )


def parse_plaintext(p):
    if len(p) < 25:
        return None
    issued_at, valid_for, energy, duration, carrier, l1 = struct.unpack(">QIIIBB", p[:22])
    if not 1 <= valid_for <= 2678400 or carrier not in CARRIERS or not 1 <= l1 <= 64:
        return None
    if 22 + l1 >= len(p):
        return None
    l2 = p[22 + l1]
    if not 1 <= l2 <= 64 or 23 + l1 + l2 != len(p):
        return None
    try:
        dev = p[22:22 + l1].decode("utf-8")
        pile = p[23 + l1:].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return {"issuedAt": str(issued_at), "validFor": valid_for, "maxEnergyWh": energy, "maxDurationS": duration,
            "carrier": CARRIERS[carrier], "deviceId": dev, "pileId": pile}


def seal(req):
    k = bytes.fromhex(req["key"])
    code_id = bytes.fromhex(req["codeId"])
    nonce = bytes.fromhex(req["nonce"])
    aad = bytes([1]) + struct.pack(">I", req["keyId"]) + code_id
    ct = AESGCM(code_key(k)).encrypt(nonce, plaintext(req["claims"]), aad)
    return {"code": b64u(aad + nonce + ct)}


def open_code(req):
    k = bytes.fromhex(req["key"])
    code = unb64u(req["code"])
    if len(code) < 33 + 25 + 16 or len(code) > 33 + 151 + 16 or code[0] != 1:
        return {"ok": False, "reason": "BAD_CODE"}
    key_id = struct.unpack(">I", code[1:5])[0]
    if key_id != req["keyId"]:
        return {"ok": False, "reason": "UNKNOWN_KEY"}
    try:
        pt = AESGCM(code_key(k)).decrypt(code[21:33], code[33:], code[:21])
    except InvalidTag:
        return {"ok": False, "reason": "BAD_CODE"}
    claims = parse_plaintext(pt)
    if claims is None:
        return {"ok": False, "reason": "BAD_CODE"}
    return {"ok": True, "keyId": key_id, "codeId": code[5:21].hex(), "claims": claims}


def derive(req):
    k = bytes.fromhex(req["key"])
    return {"Kc": code_key(k).hex(), "V": verify_secret(k, bytes.fromhex(req["codeId"])).hex()}


def proofs(req):
    v = bytes.fromhex(req["V"])
    code_id = bytes.fromhex(req["codeId"])
    cn = bytes.fromhex(req["clientNonce"])
    pn = bytes.fromhex(req["pileNonce"])
    pile = req["pileId"].encode("utf-8")

    def mac(*parts):
        return hmac.new(v, b"".join(parts), hashlib.sha256).hexdigest()

    return {
        "pileProof": mac(b"piled/v1 pile", code_id, cn, pn, bytes([len(pile)]), pile),
        "deviceProof": mac(b"piled/v1 device", code_id, pn, cn),
        "stopProof": mac(b"piled/v1 stop", code_id, pn),
    }


OPS = {"seal": seal, "open": open_code, "derive": derive, "proofs": proofs}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            answer = OPS[req["op"]](req)
        except Exception as e:  # report, keep serving
            answer = {"error": type(e).__name__}
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
