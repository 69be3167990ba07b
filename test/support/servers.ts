// The test harness's Postgres and Redis servers: the stack's (scripts/stack/servers.ts).
export { startPostgres, startRedis, type Running } from "../../scripts/stack/servers.js";
export { freePort } from "../../scripts/stack/process.js";
