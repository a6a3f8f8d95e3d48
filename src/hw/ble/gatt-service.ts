/**
 * The pile's GATT service (PROTOCOL.md §3) as bleno objects: Info (read, one snapshot per read
 * sequence), Control (write, answered before the handler runs) and Event (notify). The
 * peripheral (peripheral.ts) owns the connections; this file only maps bleno's callbacks to them.
 */
import type { Bleno, Characteristic as BlenoCharacteristic, ConnectionHandle } from "@stoprocent/bleno";
import type { BleConnection, BleHandlers } from "../ports.js";
import { CONTROL_UUID, compactUuid, EVENT_UUID, INFO_UUID, SERVICE_UUID } from "./gatt.js";

const RESULT_SUCCESS = 0x00;
const RESULT_INVALID_OFFSET = 0x07;
const RESULT_ATTR_NOT_LONG = 0x0b;
const RESULT_UNLIKELY_ERROR = 0x0e;

/** What the service keeps on a connection. */
export interface ServedConn extends BleConnection {
  notifyFn: ((data: Buffer) => void) | undefined;
  infoSnapshot: Uint8Array | undefined;
  knownMtu: number;
}

/** What the service needs from the peripheral. */
export interface ServiceHost<C extends ServedConn> {
  /** The connection of `handle`, created if bleno's accept was missed. */
  conn(handle: ConnectionHandle): C;
  /** The connection of `handle` if there is one. */
  existing(handle: ConnectionHandle): C | undefined;
  /** Runs a handler, catching (and counting) what it throws. */
  call(what: string, fn: () => void): void;
  handlers(): BleHandlers | undefined;
}

/** The primary service with its three characteristics, on `bleno`. */
export function pileService<C extends ServedConn>(bleno: Bleno, host: ServiceHost<C>) {
  const info = new bleno.Characteristic({
    uuid: compactUuid(INFO_UUID),
    properties: ["read"],
    onReadRequest: (handle, offset, cb) => {
      const conn = host.conn(handle);
      if (offset === 0 || conn.infoSnapshot === undefined) {
        let v: Uint8Array | undefined;
        host.call("info", () => {
          v = host.handlers()?.info();
        });
        if (v === undefined) return cb(RESULT_UNLIKELY_ERROR);
        conn.infoSnapshot = v;
      }
      const snap = conn.infoSnapshot;
      if (offset > snap.length) return cb(RESULT_INVALID_OFFSET);
      cb(RESULT_SUCCESS, Buffer.from(snap.subarray(offset)));
    },
  });
  const control = new bleno.Characteristic({
    uuid: compactUuid(CONTROL_UUID),
    properties: ["write"],
    onWriteRequest: (handle, data, offset, _withoutResponse, cb) => {
      if (offset !== 0) return cb(RESULT_ATTR_NOT_LONG);
      cb(RESULT_SUCCESS); // answer first: the handler's notifications follow the write response
      const conn = host.conn(handle);
      const copy = new Uint8Array(data);
      host.call("write", () => host.handlers()?.write(conn, copy));
    },
  });
  const event = new bleno.Characteristic({
    uuid: compactUuid(EVENT_UUID),
    properties: ["notify"],
    onSubscribe: (handle, maxValueSize, update) => {
      const conn = host.conn(handle);
      conn.knownMtu = Math.max(conn.knownMtu, maxValueSize + 3);
      conn.notifyFn = update as (data: Buffer) => void;
    },
    onUnsubscribe: (handle) => {
      const conn = host.existing(handle);
      if (conn) conn.notifyFn = undefined;
    },
  });
  return new bleno.PrimaryService({
    uuid: compactUuid(SERVICE_UUID),
    characteristics: [info, control, event] as BlenoCharacteristic[],
  });
}
