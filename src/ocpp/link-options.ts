/**
 * The OCPP link's secrets and TLS material, read and checked from the config's files: light
 * enough for the daemon to check them before it touches anything, without loading the station.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { err, ok, type Result } from "../protocol/bytes.js";
import { readSmallFile, type SafeFileError } from "../sdk/files.js";
import type { OcppConfig } from "./config.js";

/** The check of every OCPP secret file: owned by this user or root, mode 0600 or tighter. */
function readSecretFile(path: string, what: string, maxBytes?: number): Result<string, SafeFileError> {
  return readSmallFile(path, { what, owner: true, forbidMode: 0o077, ...(maxBytes ? { maxBytes } : {}) });
}

/** Reads the Basic-auth password: owned by this user or root, mode 0600 or tighter. */
export function readPassword(path: string): Result<string, SafeFileError> {
  const r = readSecretFile(path, "OCPP password file", 1024);
  if (!r.ok) return r;
  return ok(r.value.replace(/\r?\n$/, ""));
}

/** Reads the station's private key (security profile 3) with the password file's checks. */
export function readClientKey(path: string): Result<string, SafeFileError> {
  return readSecretFile(path, "OCPP client key file");
}

export interface LinkOptions {
  cfg: OcppConfig;
  password: string | null;
  /** PEM of the operator's CA (wss://). */
  ca?: string | undefined;
  /** Security profile 3: the station's certificate (chain) and private key, PEM. */
  cert?: string | undefined;
  key?: string | undefined;
}

/**
 * Security profile 3's certificate and key: the key with the secret-file checks, then both
 * parsed and matched (a mismatch would only show at the first connect). Messages name the
 * files, never the key's content.
 */
function clientCertificate(certFile: string, keyFile: string): Result<{ cert: string; key: string }, Error> {
  const key = readClientKey(keyFile);
  if (!key.ok) return err(key.error);
  let cert: string;
  try {
    cert = readFileSync(certFile, "utf8");
  } catch {
    return err(new Error(`OCPP client certificate file ${certFile} cannot be read`));
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    return err(new Error(`OCPP client certificate file ${certFile} is not a PEM certificate`));
  }
  let pk: ReturnType<typeof createPrivateKey>;
  try {
    pk = createPrivateKey(key.value);
  } catch {
    return err(new Error(`OCPP client key file ${keyFile} is not an unencrypted PEM private key`));
  }
  if (!x509.checkPrivateKey(pk))
    return err(new Error(`OCPP client key file ${keyFile} is not the key of the certificate in ${certFile}`));
  return ok({ cert, key: key.value });
}

/** Loads the link's secrets named by the config; errors name the file, never its content. */
export function linkOptions(cfg: OcppConfig): Result<LinkOptions, Error> {
  let password: string | null = null;
  if (cfg.passwordFile !== undefined) {
    const p = readPassword(cfg.passwordFile);
    if (!p.ok) return err(p.error);
    password = p.value;
  }
  let ca: string | undefined;
  if (cfg.caFile !== undefined) {
    try {
      ca = readFileSync(cfg.caFile, "utf8");
    } catch {
      return err(new Error(`OCPP CA file ${cfg.caFile} cannot be read`));
    }
  }
  if (cfg.securityProfile !== 3 || cfg.certFile === undefined || cfg.keyFile === undefined)
    return ok({ cfg, password, ca });
  const cc = clientCertificate(cfg.certFile, cfg.keyFile);
  if (!cc.ok) return err(cc.error);
  // Profile 3 sends no Basic auth: the CSMS knows the station by its certificate.
  return ok({ cfg, password: null, ca, ...cc.value });
}

/** The files an enabled OCPP config names, checked as the link will read them; nothing is kept. */
export function checkLinkFiles(cfg: OcppConfig & { enabled: boolean }): Result<void, Error> {
  if (!cfg.enabled) return ok(undefined);
  const lo = linkOptions(cfg);
  return lo.ok ? ok(undefined) : err(lo.error);
}
