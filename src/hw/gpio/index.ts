export { systemTimers, type Timers } from "../ports.js";
export * from "./chip.js";
export * from "./debounce.js";
export * from "./errors.js";
export * from "./onoff-lines.js";
export * from "./pile-lines.js";
export * from "./safe.js";
export * from "./sysfs.js";
export * from "./vehicle-sense.js";
