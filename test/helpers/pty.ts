/** The socat pty pair lives in src/sim/pty.ts (the default run uses it too). */
export * from "../../src/sim/pty.js";
