/**
 * One relay output with its feedback line and the deadline by which the feedback must match the
 * command: the contactor and the lock are both one of these. Command, feedback, confirm and
 * timeout live here once; what a confirmation or a silence means is the phase's business.
 */

/** What a feedback reading did to the actuator. */
export type FeedbackOutcome =
  /** The awaited feedback came: the command is confirmed (the deadline is cleared). */
  | { kind: "confirmed" }
  /** A command is still awaited and this reading does not answer it. */
  | { kind: "pending" }
  /** No command awaited: the reading is a change (or not) of a settled output. */
  | { kind: "settled"; was: boolean | undefined };

export class Actuator {
  /** Last commanded position (undefined before the first command). */
  cmd: boolean | undefined = undefined;
  /** Last position read back (undefined = never read). */
  fb: boolean | undefined = undefined;
  /** Monotonic ms by which `fb` must match `cmd`; undefined = nothing awaited. */
  deadline: number | undefined = undefined;

  /**
   * Commands a position; a deadline is set unless the feedback already matches. A command that
   * reverses one still unconfirmed gets its deadline even so: the relay may still be on its way
   * through the other position, and a reading of it then is no change of a settled output.
   */
  command(on: boolean, now: number, ms: number): void {
    const reversing = this.deadline !== undefined && this.cmd !== on;
    this.cmd = on;
    this.deadline = this.fb === on && !reversing ? undefined : now + ms;
  }

  /** At its deadline, the feedback reads what was commanded (a reversal the relay never made). */
  inPlace(): boolean {
    return this.cmd !== undefined && this.fb === this.cmd;
  }

  /** Records a reading of the feedback line. */
  feedback(on: boolean): FeedbackOutcome {
    const was = this.fb;
    this.fb = on;
    if (this.deadline === undefined) return { kind: "settled", was };
    if (on !== this.cmd) return { kind: "pending" };
    this.deadline = undefined;
    return { kind: "confirmed" };
  }

  /** Whether a reading of `on` would answer the awaited command. */
  answers(on: boolean): boolean {
    return this.deadline !== undefined && on === this.cmd;
  }

  /** The deadline passed: it is dropped; the caller reads `cmd` to know what failed. */
  expire(): boolean | undefined {
    this.deadline = undefined;
    return this.cmd;
  }
}
