// Development secrets generated at first start into the data dir (never in
// the repo): the key that encrypts signing keys at rest and the client
// secrets of the built-in service clients. Environment variables override.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "./config.js";

export interface Secrets {
  /** 32 bytes, AES-256-GCM key for private signing keys at rest. */
  readonly keyEncryptionKey: Buffer;
  /** Client secret of each service's own client (`<name>-service`). */
  readonly clientSecrets: Readonly<Record<string, string>>;
}

/** `clients`: the names of the built-in service clients (`<NAME>_CLIENT_SECRET` overrides each). */
export function loadSecrets(dataDir: string, env: Record<string, string | undefined>, clients: readonly string[]): Secrets {
  const file = join(dataDir, "secrets.json");
  let stored: { keyEncryptionKey?: string; clientSecrets?: Record<string, string> } = {};
  if (existsSync(file)) stored = JSON.parse(readFileSync(file, "utf8"));
  let changed = false;
  const gen = () => ((changed = true), randomBytes(32).toString("base64url"));

  let kek: Buffer;
  if (env.KEY_ENCRYPTION_KEY) {
    kek = Buffer.from(env.KEY_ENCRYPTION_KEY, "base64url");
    if (kek.length !== 32) throw new ConfigError("KEY_ENCRYPTION_KEY", "must be 32 bytes, base64url encoded");
  } else {
    kek = Buffer.from((stored.keyEncryptionKey ??= gen()), "base64url");
  }
  const clientSecrets: Record<string, string> = {};
  for (const name of clients) {
    const fromEnv = env[`${name.toUpperCase()}_CLIENT_SECRET`];
    if (fromEnv !== undefined && fromEnv.length < 16) {
      throw new ConfigError(`${name.toUpperCase()}_CLIENT_SECRET`, "must be at least 16 characters");
    }
    clientSecrets[name] = fromEnv || ((stored.clientSecrets ??= {})[name] ??= gen());
  }
  if (changed) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, JSON.stringify(stored, null, 2), { mode: 0o600 });
  }
  return { keyEncryptionKey: kek, clientSecrets };
}
