// Mocha global fixtures: one Postgres and one Redis server for the whole run.
// Each test gets its own database (freshDatabaseUrl) and Redis db (freshRedisUrl).
// The real-edge stack (edge-stack.ts) starts on first use and stops here.
import { closeSharedEdgeStack } from "./edge-stack.js";
import { startPostgres, startRedis, type Running } from "./servers.js";

let pgServer: Running | undefined;
let redisServer: Running | undefined;

export async function mochaGlobalSetup() {
  // Products started by tests (in process or as children) take any free port for /metrics.
  process.env.METRICS_PORT ??= "0";
  [pgServer, redisServer] = await Promise.all([startPostgres(), startRedis()]);
  process.env.ACME_TEST_PG_URL = pgServer.url;
  process.env.ACME_TEST_REDIS_URL = redisServer.url;
}

export async function mochaGlobalTeardown() {
  await closeSharedEdgeStack();
  await Promise.all([pgServer?.stop(), redisServer?.stop()]);
}
