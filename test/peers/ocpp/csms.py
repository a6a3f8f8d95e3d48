"""A test OCPP 2.0.1 central system on loopback, built on the mobilityhouse `ocpp` package.

It records every frame in both directions as a JSON line on stdout ({"rec": ...}), each checked
against the OCA JSON schemas that ship inside the `ocpp` package with `jsonschema` (a validator
independent of the station's), and takes commands as JSON lines on stdin:

  {"id": 1, "call": "RequestStopTransaction", "params": {...}}   CSMS-initiated call (camelCase)
  {"id": 2, "raw": "<frame text>", "pad": n}                         a raw frame (@PAD@ -> n x's); waits for the answer
  {"id": 3, "set": {"bootStatus": "Pending", "interval": 1}}        boot answer / token verdict

and answers {"id": n, "result": ...} or {"id": n, "error": ...}. Basic auth is required with
--password (the identity is the user name). With --cert and --key it serves TLS (wss://, TLS 1.2
or later: OCPP security profile 2) with that certificate chain. With --client-ca as well it
requires a client certificate that CA signed (security profile 3): the "connected" line carries
the certificate's subject CN ("peerCN") and whether an Authorization header came ("basicAuth");
a refused handshake is a {"tlsRefused": reason} line. Without --password nothing else is asked.
"""

import argparse
import asyncio
import asyncio.sslproto
import dataclasses
import json
import os
import ssl
import sys
from datetime import datetime, timezone

import jsonschema
import ocpp
import websockets
from ocpp.charge_point import camel_to_snake_case, remove_nones, snake_to_camel_case
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action
from websockets.asyncio.server import basic_auth, serve

SCHEMAS = os.path.join(os.path.dirname(ocpp.__file__), "v201", "schemas")
settings = {"bootStatus": "Accepted", "interval": 300, "tokenStatus": None}
current = {"cp": None, "ws": None}
pending_raw = {}
_schema_cache = {}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def schema_errors(action, kind, payload):
    name = f"{action}{kind}.json"
    if name not in _schema_cache:
        path = os.path.join(SCHEMAS, name)
        if not os.path.exists(path):
            return [f"no schema {name}"]
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        _schema_cache[name] = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return [e.message for e in _schema_cache[name].iter_errors(payload)]


class Recorder:
    """Wraps the websocket: records and schema-checks every frame."""

    def __init__(self, ws):
        self.ws = ws
        self.actions = {}  # message id -> action, for results

    def record(self, direction, text):
        rec = {"dir": direction, "size": len(text)}
        try:
            frame = json.loads(text)
        except ValueError:
            rec["frame"] = None
            emit({"rec": rec})
            return
        rec["frame"] = frame if len(text) < 100_000 else "<large>"
        errors = None
        if isinstance(frame, list) and len(frame) >= 3:
            if frame[0] == 2 and len(frame) == 4:
                self.actions[frame[1]] = frame[2]
                errors = schema_errors(frame[2], "Request", frame[3])
            elif frame[0] == 3 and frame[1] in self.actions:
                errors = schema_errors(self.actions.pop(frame[1]), "Response", frame[2])
            elif frame[0] == 4:
                self.actions.pop(frame[1], None)
                errors = []
        rec["schemaErrors"] = errors
        emit({"rec": rec})

    async def recv(self):
        while True:
            text = await self.ws.recv()
            self.record("in", text)
            try:
                frame = json.loads(text)
            except ValueError:
                return text
            if isinstance(frame, list) and len(frame) > 1 and frame[1] in pending_raw:
                pending_raw.pop(frame[1]).set_result(frame)
                continue
            return text

    async def send(self, text):
        self.record("out", text)
        await self.ws.send(text)


class Csms(ChargePoint):
    @on(Action.boot_notification)
    def on_boot(self, **kw):
        now = datetime.now(timezone.utc).isoformat()
        return call_result.BootNotification(current_time=now, interval=settings["interval"], status=settings["bootStatus"])

    @on(Action.heartbeat)
    def on_heartbeat(self, **kw):
        return call_result.Heartbeat(current_time=datetime.now(timezone.utc).isoformat())

    @on(Action.status_notification)
    def on_status(self, **kw):
        return call_result.StatusNotification()

    @on(Action.notify_event)
    def on_notify_event(self, **kw):
        return call_result.NotifyEvent()

    @on(Action.security_event_notification)
    def on_security_event(self, **kw):
        return call_result.SecurityEventNotification()

    @on(Action.transaction_event)
    def on_tx(self, **kw):
        if settings["tokenStatus"] and kw.get("id_token"):
            return call_result.TransactionEvent(id_token_info={"status": settings["tokenStatus"]})
        return call_result.TransactionEvent()


async def do_call(cmd):
    cp = current["cp"]
    if cp is None:
        return {"error": "no station connected"}
    action = cmd["call"]
    payload = getattr(call, action)(**camel_to_snake_case(cmd.get("params", {})))
    try:
        res = await cp.call(payload, suppress=False)
    except Exception as e:  # noqa: BLE001 - reported to the test
        return {"error": f"{type(e).__name__}: {e}"}
    return {"result": remove_nones(snake_to_camel_case(dataclasses.asdict(res)))}


async def do_raw(cmd):
    rec = current["ws"]
    if rec is None:
        return {"error": "no station connected"}
    text = cmd["raw"].replace("@PAD@", "x" * cmd.get("pad", 0))
    try:
        frame_id = json.loads(text)[1]
    except Exception:  # noqa: BLE001 - a frame that is not JSON: no answer to wait for
        frame_id = None
    fut = asyncio.get_running_loop().create_future()
    if isinstance(frame_id, str):
        pending_raw[frame_id] = fut
    try:
        await rec.send(text)
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    if not isinstance(frame_id, str):
        return {"result": None}
    try:
        return {"result": await asyncio.wait_for(fut, cmd.get("timeout", 5))}
    except asyncio.TimeoutError:
        pending_raw.pop(frame_id, None)
        return {"result": None, "timeout": True}


async def commands():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        if "set" in cmd:
            settings.update(cmd["set"])
            out = {"result": settings}
        elif "call" in cmd:
            out = await do_call(cmd)
        else:
            out = await do_raw(cmd)
        emit({"id": cmd.get("id"), **out})


_handshake_complete = asyncio.sslproto.SSLProtocol._on_handshake_complete


def _refused_handshake(self, exc):
    """A failed TLS handshake: said on stdout, and OpenSSL's alert sent before the close.

    asyncio drops the connection without flushing the alert OpenSSL wrote (and only logs the
    failure in debug mode); a TLS server such as nginx sends it, so the station sees what a real
    CSMS tells it ("certificate required", "unknown CA").
    """
    if exc is not None:
        emit({"tlsRefused": getattr(exc, "reason", None) or str(exc), "verify": getattr(exc, "verify_message", None)})
        try:
            self._process_outgoing()
        except Exception:  # noqa: BLE001 - the connection is going anyway
            pass
    return _handshake_complete(self, exc)


asyncio.sslproto.SSLProtocol._on_handshake_complete = _refused_handshake


def peer_cn(ws):
    """The subject CN of the client certificate (None without TLS or without one)."""
    sslobj = ws.transport.get_extra_info("ssl_object") if ws.transport else None
    cert = sslobj.getpeercert() if sslobj else None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


async def on_connect(ws):
    ident = ws.request.path.strip("/").split("/")[-1]
    rec = Recorder(ws)
    cp = Csms(ident, rec)
    current["cp"], current["ws"] = cp, rec
    emit(
        {
            "connected": ident,
            "protocol": ws.subprotocol,
            "peerCN": peer_cn(ws),
            "basicAuth": ws.request.headers.get("Authorization") is not None,
        }
    )
    try:
        await cp.start()
    except websockets.exceptions.ConnectionClosed as e:
        emit({"disconnected": ident, "code": e.rcvd.code if e.rcvd else None})
    finally:
        if current["cp"] is cp:
            current["cp"], current["ws"] = None, None


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password")
    ap.add_argument("--boot-status", default="Accepted")
    ap.add_argument("--interval", type=int, default=300)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--client-ca", help="require a client certificate signed by this CA (PEM)")
    a = ap.parse_args()
    tls = None
    if a.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(a.cert, a.key)
        if a.client_ca:
            tls.verify_mode = ssl.CERT_REQUIRED
            tls.load_verify_locations(cafile=a.client_ca)
    settings["bootStatus"], settings["interval"] = a.boot_status, a.interval
    auth = basic_auth(realm="csms", credentials=(a.user, a.password)) if a.password is not None else None
    async with serve(
        on_connect,
        "127.0.0.1",
        a.port,
        subprotocols=["ocpp2.0.1"],
        process_request=auth,
        max_size=2**24,
        ssl=tls,
    ):
        emit({"ready": a.port})
        await commands()


if __name__ == "__main__":
    asyncio.run(main())
