/**
 * Plausibility of meter readings: what a meter of a given model can have measured. Pure: no I/O;
 * a refused reading comes back as a typed result with the reason.
 *
 * A reply can pass every framing check and still be wrong (a meter answering with the registers of
 * another request, a wrong model configured, a meter fault). A reading is refused when
 * - a value is outside the meter's range: L1 voltage outside its measuring range (these meters are
 *   powered from their measuring inputs, so a meter that answers sees its voltage), current or
 *   power above the rated maximum with a margin, energy negative or beyond the register's range;
 * - energy goes backwards from the last accepted reading;
 * - energy grew more than the power and the time allow: the larger of the two readings' power,
 *   with a margin and a slack, capped by the rated maximum power, over the time between them, plus
 *   one step of the energy register's resolution.
 */
import type { MeterReading } from "../ports.js";
import type { MeterMap, MeterModel } from "./maps.js";

export interface MeterLimits {
  phases: 1 | 3;
  /** L1-N measuring range, V. */
  minVoltageV: number;
  maxVoltageV: number;
  /** Rated maximum current per phase (Imax), A. */
  maxCurrentA: number;
  /** Largest import energy the register can hold, Wh. */
  maxEnergyWh: number;
}

/**
 * Ranges from the manufacturers' data sheets, rounded outward: SDM630 3×230/400 V 10(100) A,
 * SDM120 230 V 5(45) A, ABB B23 3×57.7–288 V 65 A, EM340 3×230/400 V 65 A. The registers display
 * up to 99,999,999.9 kWh.
 */
export const METER_LIMITS: Readonly<Record<MeterModel, MeterLimits>> = {
  sdm630: { phases: 3, minVoltageV: 100, maxVoltageV: 300, maxCurrentA: 100, maxEnergyWh: 1e11 },
  sdm120: { phases: 1, minVoltageV: 100, maxVoltageV: 300, maxCurrentA: 45, maxEnergyWh: 1e11 },
  "abb-b23": { phases: 3, minVoltageV: 50, maxVoltageV: 300, maxCurrentA: 65, maxEnergyWh: 1e11 },
  em340: { phases: 3, minVoltageV: 100, maxVoltageV: 300, maxCurrentA: 65, maxEnergyWh: 1e11 },
};

/** Over-range a meter still reports (current and power), as a factor. */
export const RANGE_MARGIN = 1.2;
/** Factor on the measured power for the energy-growth bound. */
export const POWER_MARGIN = 1.5;
/** Power added to the bound (a load stepping between two polls), as a share of the rated maximum. */
export const POWER_SLACK = 0.1;

export function ratedMaxPowerW(l: MeterLimits): number {
  return l.phases * l.maxVoltageV * l.maxCurrentA;
}

/** One step of the energy register, Wh, at `value` (float32 registers: a few units in the last place). */
export function energyResolutionWh(map: MeterMap, value: number): number {
  const e = map.fields.energyImportWh;
  if (e.type === "float32") return Math.max(1, Math.abs(value) * 2 ** -21);
  return e.mul / e.div;
}

export type Plausibility = { ok: true } | { ok: false; message: string };

function refuse(message: string): Plausibility {
  return { ok: false, message };
}

/** Checks `next` against the meter's ranges and against `last`, the last accepted reading. */
export function checkReading(
  map: MeterMap,
  limits: MeterLimits,
  last: MeterReading | undefined,
  next: MeterReading,
): Plausibility {
  const ratedW = ratedMaxPowerW(limits);
  const v = next.voltageV;
  if (!(v >= limits.minVoltageV && v <= limits.maxVoltageV)) {
    return refuse(`voltage ${v} V outside ${limits.minVoltageV}..${limits.maxVoltageV} V`);
  }
  if (!(Math.abs(next.currentA) <= limits.maxCurrentA * RANGE_MARGIN)) {
    return refuse(`current ${next.currentA} A above the rated ${limits.maxCurrentA} A`);
  }
  if (!(Math.abs(next.powerW) <= ratedW * RANGE_MARGIN)) {
    return refuse(`power ${next.powerW} W above the rated ${ratedW} W`);
  }
  const e = next.energyImportWh;
  if (!(e >= 0 && e <= limits.maxEnergyWh))
    return refuse(`energy ${e} Wh outside 0..${limits.maxEnergyWh} Wh`);
  if (!last) return { ok: true };
  const grew = e - last.energyImportWh;
  if (grew < 0) return refuse(`energy went backwards from ${last.energyImportWh} Wh to ${e} Wh`);
  const dtMs = Math.max(0, next.takenAt - last.takenAt);
  const w = Math.min(
    ratedW,
    POWER_MARGIN * Math.max(Math.max(0, last.powerW), Math.max(0, next.powerW)) + POWER_SLACK * ratedW,
  );
  const allowed = (w * dtMs) / 3_600_000 + energyResolutionWh(map, e);
  if (grew > allowed) {
    return refuse(
      `energy grew ${grew} Wh in ${dtMs} ms, more than ${allowed.toFixed(1)} Wh at ${w.toFixed(0)} W`,
    );
  }
  return { ok: true };
}

/** Keeps the last accepted reading and judges each new one against it. */
export class PlausibilityFilter {
  private last: MeterReading | undefined;

  constructor(
    private readonly map: MeterMap,
    private readonly limits: MeterLimits = METER_LIMITS[map.model],
  ) {}

  /** The last accepted reading, if any. */
  get lastAccepted(): MeterReading | undefined {
    return this.last;
  }

  /** Accepts (and remembers) or refuses `next`; a refused reading leaves the state unchanged. */
  judge(next: MeterReading): Plausibility {
    const r = checkReading(this.map, this.limits, this.last, next);
    if (r.ok) this.last = next;
    return r;
  }
}
