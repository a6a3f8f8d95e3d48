export * from "./frame.js";
export * from "./link.js";
export * from "./messages.js";
export * from "./pilot-mcu.js";
export * from "./vehicle.js";
