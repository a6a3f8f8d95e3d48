import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface CodeVector {
  name: string;
  keyId: number;
  codeId: string;
  nonce: string;
  plaintext: string;
  V: string;
  code: string;
  now: number;
  expect: string;
}
export interface TamperedVector {
  name: string;
  code: string;
  now: number;
  expect: string;
}
export interface HandshakeVector {
  keyId: number;
  codeId: string;
  clientNonce: string;
  pileNonce: string;
  V: string;
  pileProof: string;
  deviceProof: string;
  stopProof: string;
}
export interface Vectors {
  keys: Record<string, string>;
  pileId: string;
  skewMs: number;
  derived: Record<string, { Kc: string }>;
  codes: CodeVector[];
  tampered: TamperedVector[];
  handshakes: HandshakeVector[];
}

/** The project's copy of the independent implementation's vectors (test/fixtures/v1.json). */
export function loadVectors(): Vectors {
  const here = dirname(fileURLToPath(import.meta.url));
  // compiled to dist/test/helpers; the fixture stays in test/fixtures of the source tree
  const root = join(here, "..", "..", "..");
  return JSON.parse(readFileSync(join(root, "test", "fixtures", "v1.json"), "utf8")) as Vectors;
}
