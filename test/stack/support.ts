// Helpers for the tests against the real edge (test/support/edge-stack.ts):
// REST calls through Envoy, and the auth service's signing keys read from the
// stack's database (to forge tokens that differ from good ones in one claim).
import type { Kysely } from "kysely";
import { loadConfig } from "../../platform/config.js";
import { openDatabase } from "../../platform/db.js";
import { silentLogger } from "../../platform/logger.js";
import { loadSecrets } from "../../platform/secrets.js";
import { SERVICE_NAMES } from "../../app/services.js";
import { AdjustableClock } from "../../services/auth/clock.js";
import { loadAuthConfig } from "../../services/auth/config.js";
import { SigningKeys, type SigningKey } from "../../services/auth/keys.js";
import type { AuthDb } from "../../services/auth/store.js";
import type { Stack } from "../../scripts/stack/index.js";

export { rest, type Json } from "../support/http.js";

/** The stack's signing keys, loaded from its database with its key-encryption key. */
export async function stackKeys(stack: Stack, env: Record<string, string> = {}): Promise<{ keys: SigningKeys; current(): SigningKey; close(): Promise<void> }> {
  const dataDir = `${stack.dir}/data`;
  // The auth service's key settings (env), so a rotation here schedules as the service would.
  const config = loadConfig({ ...env, METRICS_PORT: "0", DATABASE_URL: stack.databaseUrl, DATA_DIR: dataDir });
  const db = await openDatabase({ url: config.databaseUrl, dataDir, max: 1 });
  const keys = new SigningKeys(db.db as Kysely<AuthDb>, loadSecrets(dataDir, {}, SERVICE_NAMES).keyEncryptionKey, loadAuthConfig(config), new AdjustableClock(), silentLogger);
  await keys.load();
  return { keys, current: () => keys.current(), close: () => db.close() };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll until check() is truthy (or throw after ms, with the last value). */
export async function eventually<T>(check: () => Promise<T | undefined | false | null>, what: string, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(200);
  }
}
