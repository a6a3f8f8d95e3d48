#!/usr/bin/python3
"""An independent Modbus RTU energy-meter slave on pymodbus (Debian python3-pymodbus: 3.0 on
Debian 12, 3.8 on Debian 13; both server APIs are handled below).

Serves the register image of one meter model, built here from the manufacturers' tables
independently of the TypeScript register maps, on a serial device (a pty end):

    /usr/bin/python3 slave.py --port PATH --model sdm630|sdm120|abb-b23|em340 --unit N \
        --values '{"voltageV":..,"currentA":..,"powerW":..,"energyImportWh":..}' --fault-file PATH

The fault file holds one word, read on every reply: "none", "crc" (flip the last CRC byte) or
"silent" (send nothing). Prints "ready" on stdout once the port is open.
"""
import argparse
import asyncio
import json
import struct

import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSparseDataBlock,
)

try:  # pymodbus >= 3.10
    from pymodbus.datastore import ModbusDeviceContext as UnitContext
except ImportError:
    from pymodbus.datastore import ModbusSlaveContext as UnitContext

try:  # pymodbus >= 3.7: framers by name, packets traced through trace_packet
    from pymodbus.framer import FramerType

    NEW_API = True
except ImportError:  # pymodbus 3.0: framer classes, response_manipulator
    from pymodbus.transaction import ModbusRtuFramer

    NEW_API = False


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def float_words(value: float) -> list:
    """IEEE-754 float32, high word first (Eastron)."""
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


def be_words(raw: int, n: int) -> list:
    """An unsigned/two's-complement integer over n registers, most significant word first (ABB)."""
    raw &= (1 << (16 * n)) - 1
    return [(raw >> (16 * (n - 1 - i))) & 0xFFFF for i in range(n)]


def lsw_int32(raw: int) -> list:
    """INT32 with the least significant word first (Carlo Gavazzi)."""
    raw &= 0xFFFFFFFF
    return [raw & 0xFFFF, raw >> 16]


def image(model: str, v: dict) -> dict:
    """{(fc, address): [words]} for the model's four values."""
    if model in ("sdm630", "sdm120"):
        power_at = 0x0034 if model == "sdm630" else 0x000C
        return {
            (4, 0x0000): float_words(v["voltageV"]),
            (4, 0x0006): float_words(v["currentA"]),
            (4, power_at): float_words(v["powerW"]),
            (4, 0x0048): float_words(v["energyImportWh"] / 1000.0),  # kWh
        }
    if model == "abb-b23":
        return {
            (3, 0x5B00): be_words(round(v["voltageV"] * 10), 2),  # 0.1 V
            (3, 0x5B0C): be_words(round(v["currentA"] * 100), 2),  # 0.01 A
            (3, 0x5B14): be_words(round(v["powerW"] * 100), 2),  # 0.01 W, signed
            (3, 0x5000): be_words(round(v["energyImportWh"] / 10), 4),  # 0.01 kWh
        }
    if model == "em340":
        return {
            (4, 0x0000): lsw_int32(round(v["voltageV"] * 10)),  # 0.1 V
            (4, 0x000C): lsw_int32(round(v["currentA"] * 1000)),  # mA
            (4, 0x0028): lsw_int32(round(v["powerW"] * 10)),  # 0.1 W
            (4, 0x0034): lsw_int32(round(v["energyImportWh"] / 100)),  # 0.1 kWh
        }
    raise SystemExit(f"unknown model {model}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--unit", type=int, default=1)
    ap.add_argument("--values", required=True)
    ap.add_argument("--fault-file", required=True)
    ap.add_argument("--modules-out", help="write the files of every loaded module here once ready")
    args = ap.parse_args()

    words = image(args.model, json.loads(args.values))
    # pymodbus 3.0 maps protocol address a to block address a with zero_mode; from 3.7 on the
    # unit context always reads block address a + 1.
    shift = 1 if NEW_API else 0
    ir = ModbusSequentialDataBlock(0, [0] * 0x101)
    if args.model == "abb-b23":
        hr = ModbusSparseDataBlock({0x5000 + shift: [0] * 0x10, 0x5B00 + shift: [0] * 0x40})
    else:
        hr = ModbusSequentialDataBlock(0, [0] * 0x101)
    for (fc, address), regs in words.items():
        (hr if fc == 3 else ir).setValues(address + shift, regs)
    if NEW_API:
        store = UnitContext(ir=ir, hr=hr)
    else:
        store = UnitContext(ir=ir, hr=hr, zero_mode=True)
    try:
        context = ModbusServerContext(slaves={args.unit: store}, single=False)
    except TypeError:  # pymodbus >= 3.10
        context = ModbusServerContext(devices={args.unit: store}, single=False)

    def fault_now() -> str:
        with open(args.fault_file, encoding="ascii") as f:
            return f.read().strip()

    def trace_packet(sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        fault = fault_now()
        if fault == "silent":
            return b""
        if fault == "crc":
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data

    def manipulate(response):
        fault = fault_now()
        if fault == "silent":
            return b"", True
        if fault == "crc":
            body = struct.pack(">BB", response.unit_id, response.function_code) + response.encode()
            frame = body + struct.pack("<H", crc16(body) ^ 0xFF00)
            return frame, True
        return response, False

    def ready() -> None:
        if args.modules_out:  # written before "ready": a reader waits for that word
            files = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())} - {""})
            with open(args.modules_out, "w", encoding="utf-8") as f:
                json.dump(files, f)
        print("ready", flush=True)

    async def run_new() -> None:
        from pymodbus.server import ModbusSerialServer

        server = ModbusSerialServer(
            context,
            framer=FramerType.RTU,
            port=args.port,
            baudrate=9600,
            trace_packet=trace_packet,
        )
        await server.serve_forever(background=True)
        if server.transport is None:  # 3.8 logs a failed open and carries on
            raise SystemExit(f"cannot open {args.port}")
        ready()
        await server.serving

    async def run() -> None:
        from pymodbus.server import StartAsyncSerialServer

        server = await StartAsyncSerialServer(
            context=context,
            framer=ModbusRtuFramer,
            port=args.port,
            baudrate=9600,
            defer_start=True,
            response_manipulator=manipulate,
        )
        await server.start()
        ready()
        await server.serve_forever()

    asyncio.run(run_new() if NEW_API else run())


if __name__ == "__main__":
    main()
