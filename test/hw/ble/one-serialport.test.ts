/**
 * The BLE stack's UART (the HCI socket's serialport) is the serialport the meter and console use:
 * one copy of its JavaScript and one native binding in the daemon (package.json `overrides`).
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { test } from "node:test";

test("the HCI socket's UART loads the project's serialport, not a copy of its own", () => {
  const req = createRequire(import.meta.url);
  const ours = req.resolve("serialport");
  const hci = createRequire(req.resolve("@stoprocent/bluetooth-hci-socket"));
  assert.equal(hci.resolve("serialport"), ours);
  assert.equal(
    createRequire(hci.resolve("serialport")).resolve("@serialport/bindings-cpp"),
    createRequire(ours).resolve("@serialport/bindings-cpp"),
  );
});
