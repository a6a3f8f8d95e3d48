"""Checks OCMF records with pyocmf (an independent parser and verifier).

Reads JSON lines {"record": "...", "publicKey": "<hex DER>"} on stdin and answers each with
{"valid": bool} or {"error": "..."} (a record that does not parse or verify).
"""

import json
import sys

from pyocmf import OCMF

for line in sys.stdin:
    req = json.loads(line)
    try:
        rec = OCMF.from_string(req["record"])
        out = {"valid": bool(rec.verify_signature(req["publicKey"])), "pagination": str(rec.payload.PG)}
    except Exception as e:  # noqa: BLE001 - reported to the test
        out = {"error": f"{type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
