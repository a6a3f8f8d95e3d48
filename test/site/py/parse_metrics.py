"""Parses a Prometheus text exposition from stdin with prometheus_client's own parser (an
independent, real client) and prints its families as JSON: {name: {type, samples: [...]}}.
A text the parser refuses exits 3 with the parser's message. NaN and infinities (valid in the
exposition, e.g. an event-loop figure before its first measurement) are printed as strings."""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

try:
    out = {}
    for fam in text_string_to_metric_families(sys.stdin.read()):
        out[fam.name] = {
            "type": fam.type,
            "samples": [{"name": s.name, "labels": s.labels, "value": s.value if math.isfinite(s.value) else str(s.value)} for s in fam.samples],
        }
except Exception as e:  # noqa: BLE001 - any parse failure is the answer
    print(f"unparsable exposition: {e}", file=sys.stderr)
    sys.exit(3)
json.dump(out, sys.stdout)
