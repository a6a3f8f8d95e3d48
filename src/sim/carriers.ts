/**
 * The simulated carriers of the default run: a vehicle device (telematics box) and an owner's
 * phone, each on its own BLE controller, each running the SDK's carrier client over noble. They
 * receive the code and V from the platform (the SDK issuer) the way §4 of the protocol says.
 */
import { NobleCentral } from "../hw/ble/central.js";
import type { BleController } from "../hw/ble/errors.js";
import type { Status } from "../protocol/messages.js";
// Simulated carriers run on Node: node:crypto for their proofs (the SDK's forge default is for
// runtimes without it).
import { nodeSuite } from "../protocol/node-suite.js";
import { type CarrierOutcome, stop, unlock } from "../sdk/carrier.js";
import type { IssuedCode } from "../sdk/issuer.js";
import type { CarrierLink } from "../sdk/transport.js";

export type CarrierKind = "vehicle" | "mobile";

export class SimCarrier {
  readonly #central: NobleCentral;
  #link: CarrierLink | undefined;
  #statusAbort: AbortController | undefined;
  #code: IssuedCode | undefined;
  /** Set while the device is online and awake: the platform then hands it the code. */
  inAcquisitionState = true;

  constructor(
    readonly name: string,
    readonly kind: CarrierKind,
    controller: BleController,
  ) {
    this.#central = new NobleCentral({ controller });
  }

  /** The platform's delivery of a code (over its own secure channel). */
  receive(code: IssuedCode): void {
    this.#code = code;
  }

  async unlock(onStatus: (s: Status) => void, timeoutMs = 15_000): Promise<CarrierOutcome> {
    const code = this.#code;
    if (!code) throw new Error(`${this.name} holds no code`);
    this.#link = await this.#central.connect(code.pileId, { timeoutMs });
    this.#statusAbort = new AbortController();
    return unlock(this.#link, {
      code: code.code,
      verifySecret: code.verifySecret,
      pileId: code.pileId,
      timeoutMs,
      onStatus,
      signal: this.#statusAbort.signal,
      suite: nodeSuite,
    });
  }

  /** STOP over the same connection (a new HELLO for the same code, then STOP). */
  async stop(onStatus: (s: Status) => void, timeoutMs = 15_000): Promise<CarrierOutcome> {
    const code = this.#code;
    if (!code || !this.#link) throw new Error(`${this.name} has no session`);
    this.#statusAbort?.abort();
    return stop(this.#link, {
      codeId: code.codeId,
      keyId: code.keyId,
      verifySecret: code.verifySecret,
      pileId: code.pileId,
      timeoutMs,
      onStatus,
      suite: nodeSuite,
    });
  }

  async close(): Promise<void> {
    this.#statusAbort?.abort();
    await this.#link?.close().catch(() => undefined);
    this.#link = undefined;
    await this.#central.close().catch(() => undefined);
  }
}
