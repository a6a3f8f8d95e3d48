/** What a technician should do about each latched fault, shown beside it on the dashboard. */
const ADVICE: Record<string, string> = {
  WELD: "Contactor reads closed while commanded open. Isolate the supply, inspect and replace the contactor, then relay test and clear.",
  CONTACTOR_CLOSE_TIMEOUT:
    "Contactor did not close. Check its coil supply, wiring and feedback contact, then relay test and clear.",
  CONTACTOR_LOST:
    "Contactor dropped out under load. Check the coil supply and the feedback wiring, then clear.",
  LOCK_ENGAGE_TIMEOUT:
    "Cable lock did not engage. Check the socket for debris and the lock actuator, then clear.",
  LOCK_LOST: "Cable lock released during a session. Check the actuator and its feedback switch, then clear.",
  LOCK_RELEASE_TIMEOUT:
    "Cable lock did not release. Free the cable by hand if needed, check the actuator, then clear.",
  EMERGENCY_STOP: "Emergency stop pressed. Find out why, release the button, then clear.",
  FEEDBACK_UNREADABLE:
    "A feedback line cannot be read. Check the GPIO wiring and the board (piled doctor), then clear.",
  INTERNAL: "The controller failed safe. Save the log (journalctl -u piled), report it, then clear.",
};

export function faultAdvice(code: string): string {
  return ADVICE[code] ?? "Inspect the pile and its log before clearing.";
}
