// The test harness's Postgres and Redis servers: the stack's (scripts/stack/servers.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../scripts/stack/process.js";
import { startPostgres, startRedis, type Running } from "../../scripts/stack/servers.js";

export { startPostgres, startRabbitmq, startRedis, type Running } from "../../scripts/stack/servers.js";
export { freePort } from "../../scripts/stack/process.js";

/** A server of a test's own that it may stop and start again, on the same port (and, for Postgres, the same data). */
export interface Restartable {
  readonly url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  running(): boolean;
  /** Stop it and remove its data. */
  close(): Promise<void>;
}

function restartable(url: string, launch: () => Promise<Running>, first: Running, cleanup = () => {}): Restartable {
  let current: Running | undefined = first;
  return {
    url,
    stop: async () => {
      await current?.stop();
      current = undefined;
    },
    start: async () => {
      current ??= await launch();
    },
    running: () => current !== undefined,
    close: async () => {
      await current?.stop();
      current = undefined;
      cleanup();
    },
  };
}

/** A Postgres cluster of the test's own (never the shared TEST_DATABASE_URL); its url is the `postgres` database. */
export async function ownPostgres(): Promise<Restartable> {
  const dir = mkdtempSync(join(tmpdir(), "acme-own-pg-"));
  const port = await freePort();
  const launch = () => startPostgres({ dir, port });
  const first = await launch();
  return restartable(first.url, launch, first, () => rmSync(dir, { recursive: true, force: true }));
}

/** A redis-server of the test's own (empty again after each start, like the stack's: no persistence). */
export async function ownRedis(): Promise<Restartable> {
  const port = await freePort();
  const launch = () => startRedis({ port });
  const first = await launch();
  return restartable(first.url, launch, first);
}
