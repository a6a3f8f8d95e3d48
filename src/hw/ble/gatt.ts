/**
 * The pile's GATT layout and advertising data (PROTOCOL.md §3). Pure: no radio here.
 */
import { fromHex } from "../../protocol/bytes.js";

export const SERVICE_UUID = "71f10001-a058-4e0e-8f3b-77abd54bc302";
export const INFO_UUID = "71f10002-a058-4e0e-8f3b-77abd54bc302";
export const CONTROL_UUID = "71f10003-a058-4e0e-8f3b-77abd54bc302";
export const EVENT_UUID = "71f10004-a058-4e0e-8f3b-77abd54bc302";

/** The UUID as bleno and noble spell it: lower-case hex, no dashes. */
export function compactUuid(uuid: string): string {
  return uuid.replace(/-/g, "").toLowerCase();
}

/** Bytes of AD payload available in one legacy advertising or scan-response packet. */
export const MAX_AD_BYTES = 31;
/** Room for a name: 31 bytes minus the AD length and type bytes. */
export const MAX_NAME_BYTES = MAX_AD_BYTES - 2;

const AD_FLAGS = 0x01;
const AD_COMPLETE_128 = 0x07;
const AD_SHORT_NAME = 0x08;
const AD_COMPLETE_NAME = 0x09;
/** LE General Discoverable, BR/EDR not supported. */
const FLAGS_LE_GENERAL = 0x06;

export function pileName(pileId: string): string {
  return `PILE-${pileId}`;
}

/**
 * The longest prefix of `name` whose UTF-8 fits in `max` bytes, cut at a character (code point)
 * boundary. `complete` tells whether nothing was cut.
 */
export function cutUtf8(name: string, max: number): { bytes: Uint8Array; complete: boolean } {
  const enc = new TextEncoder();
  const all = enc.encode(name);
  if (all.length <= max) return { bytes: all, complete: true };
  let used = 0;
  let end = 0;
  for (const ch of name) {
    const n = enc.encode(ch).length;
    if (used + n > max) break;
    used += n;
    end += ch.length;
  }
  return { bytes: enc.encode(name.slice(0, end)), complete: false };
}

export interface AdvertisingData {
  /** Flags + the 128-bit service UUID (21 bytes). */
  advertisement: Uint8Array;
  /** The local name: Complete (0x09) when it fits in 29 bytes, else Shortened (0x08). */
  scanResponse: Uint8Array;
  nameComplete: boolean;
}

/** Advertising and scan-response payloads for the pile `pileId`. */
export function buildAdvertisingData(pileId: string): AdvertisingData {
  const uuid = fromHex(compactUuid(SERVICE_UUID))!.reverse(); // little-endian on air
  const advertisement = Uint8Array.of(
    2,
    AD_FLAGS,
    FLAGS_LE_GENERAL,
    uuid.length + 1,
    AD_COMPLETE_128,
    ...uuid,
  );
  const { bytes, complete } = cutUtf8(pileName(pileId), MAX_NAME_BYTES);
  const scanResponse = new Uint8Array(bytes.length + 2);
  scanResponse[0] = bytes.length + 1;
  scanResponse[1] = complete ? AD_COMPLETE_NAME : AD_SHORT_NAME;
  scanResponse.set(bytes, 2);
  return { advertisement, scanResponse, nameComplete: complete };
}

/**
 * How an advertised local name relates to the wanted pile: `exact`, `prefix` (it may be a
 * shortened name of it: confirm by reading Info), or `other`. An absent name is a `prefix`.
 */
export function matchName(advertised: string | undefined, pileId: string): "exact" | "prefix" | "other" {
  const wanted = pileName(pileId);
  if (advertised === undefined || advertised.length === 0) return "prefix";
  if (advertised === wanted) return "exact";
  const a = new TextEncoder().encode(advertised);
  const w = new TextEncoder().encode(wanted);
  if (a.length >= w.length || a.length < MAX_NAME_BYTES - 3) return "other";
  for (let i = 0; i < a.length; i++) if (a[i] !== w[i]) return "other";
  return "prefix";
}
