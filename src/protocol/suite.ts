/**
 * The cryptographic primitives the protocol needs, as one interface. The pile uses the
 * node:crypto implementation (`nodeSuite` in node-suite.ts); the SDK provides a node-forge one so
 * it runs where node:crypto does not. Everything above this interface is shared byte layout.
 */
export interface CryptoSuite {
  readonly name: string;
  /** HKDF-SHA256 (RFC 5869). `salt` undefined means the RFC default (HashLen zero bytes). */
  hkdf(ikm: Uint8Array, salt: Uint8Array | undefined, info: Uint8Array, length: number): Uint8Array;
  /** HMAC-SHA256 over the concatenation of `parts`. */
  hmac(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array;
  /** AES-256-GCM, 96-bit nonce, 128-bit tag: returns ciphertext || tag. */
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** AES-256-GCM open of ciphertext || tag; undefined when authentication fails. */
  open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined;
  randomBytes(n: number): Uint8Array;
  /** Constant-time equality of two equal-length byte strings. */
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
}
