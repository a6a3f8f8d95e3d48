/**
 * One owner of an RS-485 bus. Every request from every meter (or unit) on the line goes through
 * one queue and reaches the wire one at a time, over modbus-serial's ModbusRTU on serialport.
 *
 * Failure handling, from what was measured on this machine (DESIGN.md):
 * - an `error` listener is attached to the client and to its link from the moment they exist;
 * - after an I/O error or a close the client is thrown away and the next request opens a new
 *   SerialPort + ModbusRTU (a broken modbus-serial client does not recover);
 * - requests queued before a close are failed (PORT), never sent later on a reopened port; the
 *   link refuses writes on a closed port, so serialport cannot queue one for its next open;
 * - per-request timeout, retries with exponential backoff for TIMEOUT, CRC and PORT;
 * - before each request the line must have been silent for 3.5 character times (the Modbus RTU
 *   inter-frame gap; 1.75 ms above 19200 baud), and what came in meanwhile is thrown away: a
 *   request sent right after a reply could otherwise meet a repeat of that reply;
 * - modbus-serial errors are mapped to MeterError codes without matching message text: the link
 *   checks the reply CRC itself, timeouts carry errno ETIMEDOUT, exceptions a modbusCode.
 */
import ModbusSerial from "modbus-serial";
import { SerialPort } from "serialport";
import { MeterError } from "../ports.js";
import { type LinkCounters, newLinkCounters, RtuLink, type SerialLike } from "./link.js";

export type Parity = "none" | "even" | "odd";

export interface SerialSettings {
  path: string;
  baudRate: number;
  parity: Parity;
  stopBits: 1 | 2;
  dataBits: 7 | 8;
}

export interface BusOptions extends Partial<Omit<SerialSettings, "path">> {
  path: string;
  /** Reply deadline of one attempt, ms. */
  timeoutMs?: number;
  /** Further attempts after a TIMEOUT, CRC or PORT failure. */
  retries?: number;
  /** Wait before the first retry, ms; doubles on each further one. */
  backoffMs?: number;
  /** Opens the serial device (default: serialport's SerialPort). Tests pass a fake. */
  openSerial?: (settings: SerialSettings) => SerialLike;
  /** Waits (default: setTimeout). */
  sleep?: (ms: number) => Promise<void>;
  /** Monotonic ms for the inter-frame silence (default: performance.now). */
  now?: () => number;
}

/**
 * The Modbus RTU inter-frame silence, ms: 3.5 character times (start bit, data bits, parity bit,
 * stop bits), fixed at 1.75 ms above 19200 baud (Modbus over serial line V1.02, 2.5.1.1).
 */
export function interFrameMs(s: Omit<SerialSettings, "path">): number {
  if (s.baudRate > 19_200) return 1.75;
  return 3.5 * charTimeMs(s);
}

/** One character on the wire, ms: start bit, data bits, parity bit, stop bits. */
export function charTimeMs(s: Omit<SerialSettings, "path">): number {
  const bits = 1 + s.dataBits + (s.parity === "none" ? 0 : 1) + s.stopBits;
  return (bits * 1000) / s.baudRate;
}

export interface BusCounters {
  requests: number;
  /** Replies whose CRC did not match. */
  rxCrcErrors: number;
  timeouts: number;
  exceptions: number;
  portErrors: number;
  /** Replies with the right CRC but the wrong shape (length, unit, function). */
  badFrames: number;
  retries: number;
  /** Clients opened (the first open included). */
  opens: number;
  bytesTx: number;
  bytesRx: number;
  /** Writes the link refused because its port was closed (should stay 0). */
  writesDropped: number;
  rxDiscarded: number;
  /** Well-formed replies that answered another request (a repeat, a late reply), skipped. */
  strayFrames: number;
}

/** What a meter adapter needs from the bus. */
export interface RegisterReader {
  readRegisters(unit: number, fc: 3 | 4, address: number, count: number): Promise<number[]>;
}

interface Client {
  modbus: ModbusRTU;
  link: RtuLink;
  /** Rejects the request on the wire, if any, when the port goes away. */
  abort?: (e: MeterError) => void;
}

// modbus-serial is CommonJS: under NodeNext its default import is module.exports, whose `default`
// is the ModbusRTU class itself.
const ModbusRTU = ModbusSerial.default;
type ModbusRTU = InstanceType<typeof ModbusRTU>;

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function defaultOpenSerial(s: SerialSettings): SerialLike {
  return new SerialPort({
    path: s.path,
    baudRate: s.baudRate,
    parity: s.parity,
    stopBits: s.stopBits,
    dataBits: s.dataBits,
    autoOpen: false,
  });
}

function errnoOf(e: unknown): string | undefined {
  if (typeof e === "object" && e !== null) {
    const r = e as { errno?: unknown; code?: unknown };
    if (typeof r.errno === "string") return r.errno;
    if (typeof r.code === "string") return r.code;
  }
  return undefined;
}

function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === "object" && e !== null && typeof (e as { message?: unknown }).message === "string") {
    return (e as { message: string }).message;
  }
  return String(e);
}

export class ModbusBus implements RegisterReader {
  private readonly settings: SerialSettings;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly openSerial: (s: SerialSettings) => SerialLike;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly silenceMs: number;
  private readonly link: LinkCounters = newLinkCounters();
  private readonly c = {
    requests: 0,
    timeouts: 0,
    exceptions: 0,
    portErrors: 0,
    badFrames: 0,
    retries: 0,
    opens: 0,
  };
  private client: Client | null = null;
  /** Bumped whenever the port goes away: requests queued under an older generation are failed. */
  private generation = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(opts: BusOptions) {
    this.settings = {
      path: opts.path,
      baudRate: opts.baudRate ?? 9600,
      parity: opts.parity ?? "none",
      stopBits: opts.stopBits ?? 1,
      dataBits: opts.dataBits ?? 8,
    };
    this.timeoutMs = opts.timeoutMs ?? 500;
    this.retries = opts.retries ?? 1;
    this.backoffMs = opts.backoffMs ?? 50;
    this.openSerial = opts.openSerial ?? defaultOpenSerial;
    this.sleep = opts.sleep ?? defaultSleep;
    this.now = opts.now ?? (() => performance.now());
    this.silenceMs = interFrameMs(this.settings);
  }

  get path(): string {
    return this.settings.path;
  }

  counters(): BusCounters {
    return {
      ...this.c,
      rxCrcErrors: this.link.rxCrcErrors,
      bytesTx: this.link.bytesTx,
      bytesRx: this.link.bytesRx,
      writesDropped: this.link.writesDropped,
      rxDiscarded: this.link.rxDiscarded,
      strayFrames: this.link.strayFrames,
    };
  }

  /** Queues one FC03/FC04 read; resolves with the registers or rejects with MeterError. */
  readRegisters(unit: number, fc: 3 | 4, address: number, count: number): Promise<number[]> {
    if (this.closed) return Promise.reject(new MeterError("CLOSED", "the meter bus is closed"));
    const gen = this.generation;
    const run = async (): Promise<number[]> => {
      if (this.closed) throw new MeterError("CLOSED", "the meter bus is closed");
      if (gen !== this.generation) {
        throw new MeterError("PORT", `${this.settings.path}: port closed while the request was queued`);
      }
      return this.withRetries(unit, fc, address, count);
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Fails everything queued (CLOSED) and closes the port. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    const c = this.client;
    this.client = null;
    c?.abort?.(new MeterError("CLOSED", "the meter bus is closed"));
    await this.tail;
    if (c) await this.shut(c);
  }

  private async withRetries(unit: number, fc: 3 | 4, address: number, count: number): Promise<number[]> {
    let attempt = 0;
    for (;;) {
      try {
        return await this.once(unit, fc, address, count);
      } catch (e) {
        const err = e instanceof MeterError ? e : new MeterError("PORT", messageOf(e));
        const retryable = err.code === "TIMEOUT" || err.code === "CRC" || err.code === "PORT";
        if (!retryable || attempt >= this.retries || this.closed) throw err;
        this.c.retries++;
        await this.sleep(this.backoffMs * 2 ** attempt);
        attempt++;
        if (this.closed) throw new MeterError("CLOSED", "the meter bus is closed");
      }
    }
  }

  private async once(unit: number, fc: 3 | 4, address: number, count: number): Promise<number[]> {
    const client = await this.ensureClient();
    await this.quiet(client);
    if (this.closed) throw new MeterError("CLOSED", "the meter bus is closed");
    if (this.client !== client) throw new MeterError("PORT", `${this.settings.path}: port closed`);
    this.c.requests++;
    client.modbus.setID(unit);
    client.modbus.setTimeout(this.timeoutMs);
    return await new Promise<number[]>((resolve, reject) => {
      let settled = false;
      const done = (f: () => void) => {
        if (settled) return;
        settled = true;
        client.abort = undefined;
        client.link.idle();
        f();
      };
      client.abort = (e) => done(() => reject(e));
      const call =
        fc === 3
          ? client.modbus.readHoldingRegisters(address, count)
          : client.modbus.readInputRegisters(address, count);
      call.then(
        (r: { data: number[] }) => done(() => resolve(r.data)),
        (e: unknown) => done(() => reject(this.classify(e, client))),
      );
    });
  }

  /**
   * Waits until the line has been silent for the inter-frame gap; bytes coming in restart it. The
   * time left is measured again after each wait (a timer can fire up to a millisecond early).
   */
  private async quiet(client: Client): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const left = client.link.lastRxAt + this.silenceMs - this.now();
      if (!(left > 0)) return;
      await this.sleep(left);
    }
  }

  private classify(e: unknown, client: Client): MeterError {
    const modbusCode = (e as { modbusCode?: unknown } | null)?.modbusCode;
    if (typeof modbusCode === "number") {
      this.c.exceptions++;
      return new MeterError("EXCEPTION", `modbus exception ${modbusCode}`, { modbusCode });
    }
    if (errnoOf(e) === "ETIMEDOUT") {
      this.c.timeouts++;
      return new MeterError("TIMEOUT", `no reply within ${this.timeoutMs} ms`);
    }
    if (client.link.crcFailed) return new MeterError("CRC", "reply failed its CRC check");
    if (!client.link.isOpen || errnoOf(e) === "ECONNREFUSED") {
      this.c.portErrors++;
      this.drop(client);
      return new MeterError("PORT", `${this.settings.path}: ${messageOf(e)}`);
    }
    // A reply with a good CRC but the wrong length, unit or function: a garbled frame.
    this.c.badFrames++;
    return new MeterError("CRC", `bad reply frame: ${messageOf(e)}`);
  }

  private async ensureClient(): Promise<Client> {
    if (this.client?.link.isOpen) return this.client;
    if (this.client) this.drop(this.client);
    const gen = this.generation;
    let serial: SerialLike;
    try {
      serial = this.openSerial(this.settings);
    } catch (e) {
      this.c.portErrors++;
      throw new MeterError("PORT", `${this.settings.path}: ${messageOf(e)}`);
    }
    const link = new RtuLink(serial, this.link, this.now);
    const modbus = new ModbusRTU(link);
    const client: Client = { modbus, link };
    // Listeners first, so that no error or close can go unheard (an unheard error kills the process).
    link.on("error", (e: unknown) => this.onPortFault(client, e));
    link.on("close", () => this.onPortFault(client, undefined));
    modbus.on("error", (e: unknown) => this.onPortFault(client, e));
    this.c.opens++;
    try {
      await new Promise<void>((resolve, reject) =>
        modbus.open((err: Error | null) => (err ? reject(err) : resolve())),
      );
    } catch (e) {
      this.c.portErrors++;
      await this.shut(client);
      throw new MeterError("PORT", `${this.settings.path}: open failed: ${messageOf(e)}`);
    }
    if (this.closed || gen !== this.generation) {
      await this.shut(client);
      throw new MeterError(this.closed ? "CLOSED" : "PORT", `${this.settings.path}: closed while opening`);
    }
    this.client = client;
    return client;
  }

  /** The port reported an error or went away: forget the client and fail what waits on it. */
  private onPortFault(client: Client, e: unknown): void {
    if (this.client !== client) return;
    this.c.portErrors++;
    this.drop(client);
    client.abort?.(
      new MeterError("PORT", `${this.settings.path}: ${e === undefined ? "port closed" : messageOf(e)}`),
    );
  }

  private drop(client: Client): void {
    if (this.client === client) {
      this.client = null;
      this.generation++;
    }
    void this.shut(client);
  }

  private shut(client: Client): Promise<void> {
    return new Promise<void>((resolve) => {
      try {
        client.link.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
