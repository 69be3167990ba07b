// The real edge for tests: the stack of `npm run stack` (scripts/stack) on
// free ports, with Envoy, envoyproxy/ratelimit and Jaeger from `npm run tools`.
// sharedEdgeStack() is started once per mocha run, on first use, and stopped by
// the global teardown; tests that stop or restart its programs start it back
// before they end. startEdgeStack() gives a suite a stack of its own.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { freePorts, startStack, type Stack, type StackOptions } from "../../scripts/stack/index.js";
import { freshDatabaseUrl } from "./fresh.js";

export interface EdgeStack extends Stack {
  /** The admin account created at the first start (ADMIN_EMAIL / ADMIN_PASSWORD). */
  readonly admin: { email: string; password: string };
}

export interface EdgeStackOptions {
  env?: Record<string, string>;
  ratelimitConfig?: string;
  edge?: StackOptions["edge"];
  /** A database to use instead of a fresh one on the harness's server (e.g. a server the suite stops). */
  databaseUrl?: string;
  /** A Redis to use instead of one the stack starts (e.g. a server the suite stops). */
  redisUrl?: string;
}

export async function startEdgeStack(opts: EdgeStackOptions = {}): Promise<EdgeStack> {
  const dir = mkdtempSync(join(tmpdir(), "acme-stack-"));
  const admin = { email: `admin-${randomBytes(4).toString("hex")}@example.com`, password: "edge-stack-admin-password" };
  try {
    const stack = await startStack({
      dir,
      ports: await freePorts(),
      databaseUrl: opts.databaseUrl ?? (await freshDatabaseUrl()),
      redisUrl: opts.redisUrl,
      ratelimitConfig: opts.ratelimitConfig,
      edge: opts.edge,
      env: {
        BCRYPT_COST: "10",
        LOG_LEVEL: "warn",
        ORDER_SWEEP_INTERVAL_MS: "0",
        SHUTDOWN_GRACE_MS: "2000",
        ADMIN_EMAIL: admin.email,
        ADMIN_PASSWORD: admin.password,
        // As in test/support/system.ts: throwaway accounts order unverified; tests of the policy pass "enforce".
        VERIFIED_EMAIL_POLICY: "off",
        ...opts.env,
      },
      envoyLogLevel: process.env.ACME_ENVOY_LOG_LEVEL ?? "warn",
    });
    await adminCreated(stack.databaseUrl, admin.email).catch(async (err) => {
      await stack.close();
      throw err;
    });
    return {
      ...stack,
      admin,
      close: async () => {
        await stack.close();
        if (!process.env.ACME_KEEP_STACK) rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * The auth service creates the first admin after it starts, retrying with backoff while the
 * user service comes up; a suite that logs in as the admin at once would race it (and polling
 * the login would trip the sign-in throttle). Waits for the admin's profile in the database.
 */
async function adminCreated(databaseUrl: string, email: string, withinMs = 60_000): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (const started = Date.now(); ; await sleep(100)) {
      const r = await client.query("select 1 from users.profiles where email = $1 and role = 'admin'", [email]).catch(() => ({ rowCount: 0 }));
      if (r.rowCount) return;
      if (Date.now() - started > withinMs) throw new Error(`the stack's admin ${email} was not created within ${withinMs} ms`);
    }
  } finally {
    await client.end();
  }
}

let shared: Promise<EdgeStack> | undefined;

/** The run's shared stack (started on first use). */
export function sharedEdgeStack(): Promise<EdgeStack> {
  shared ??= startEdgeStack();
  return shared;
}

/** Called by the global teardown. */
export async function closeSharedEdgeStack(): Promise<void> {
  const s = await shared?.catch(() => undefined);
  shared = undefined;
  await s?.close();
}

/** gRPC address (host:port, h2c) of Envoy's listener, for the foreign-client suites. */
export async function envoyTarget(): Promise<{ name: string; grpcAddress: string; stop(): Promise<void> }> {
  const s = await sharedEdgeStack();
  return { name: "envoy", grpcAddress: `127.0.0.1:${s.ports.envoy}`, stop: async () => {} };
}
