/** An `OcppPilePort` double: the test moves it and reads the commands the station gave it. */
import type { CommandResult, OcppPilePort, PileEvent, PileView } from "../../src/ocpp/port.js";

export class FakePile implements OcppPilePort {
  view: PileView = {
    state: "AVAILABLE",
    faults: [],
    contactorMayBeLive: false,
    meterWh: 1000,
    session: undefined,
  };
  readonly commands: string[] = [];
  availableAnswer: CommandResult = "accepted";
  private listeners = new Set<(e: PileEvent) => void>();

  identity() {
    return { vendorName: "piled", model: "test pile", serialNumber: "SN-1", firmwareVersion: "0.1.0" };
  }
  snapshot(): PileView {
    return this.view;
  }
  subscribe(l: (e: PileEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  emit(e: PileEvent): void {
    for (const l of this.listeners) l(e);
  }
  async stopSession(id: string): Promise<"stopped" | "no-session"> {
    this.commands.push(`stop ${id}`);
    return this.view.session?.sessionId === id ? "stopped" : "no-session";
  }
  async setAvailable(a: boolean): Promise<CommandResult> {
    this.commands.push(`available ${a}`);
    return this.availableAnswer;
  }
  async reset(kind: "OnIdle" | "Immediate"): Promise<CommandResult> {
    this.commands.push(`reset ${kind}`);
    return this.view.session === undefined ? "accepted" : "scheduled";
  }
}
