// `node --import tsx bench/micro.ts`: CPU cost of the pieces of an
// authenticated read, each alone in this process against a real Postgres and
// Redis (started here): microseconds of this process's CPU per operation,
// with 50 operations in flight as under the bench's load. For finding what
// bounds GetMe (bench/README.md).
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { startPostgres, startRedis } from "../test/support/servers.js";
import { redisStore } from "../platform/kv.js";
import { isSessionRevoked } from "../platform/auth/revocation.js";
import { createRateLimiter, descriptorsFor, parseRateLimitConfig } from "../edge/ratelimit.js";
import { LOAD_CORE } from "./lib/load.js";
import { SERVER_CORE } from "./lib/procs.js";

execFileSync("taskset", ["-a", "-p", "-c", LOAD_CORE, String(process.pid)], { stdio: "ignore" });
const [pgs, redis] = await Promise.all([startPostgres(), startRedis()]);
execFileSync("taskset", ["-p", "-c", SERVER_CORE, String(process.pid)], { stdio: "ignore" });

async function cost(name: string, n: number, op: () => Promise<unknown>) {
  for (let i = 0; i < 500; i++) await op();
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  let left = n;
  await Promise.all(Array.from({ length: 50 }, async () => { while (left-- > 0) await op(); }));
  const u = process.cpuUsage(u0);
  const ms = performance.now() - t0;
  console.log(`${name.padEnd(58)} ${(((u.user + u.system) / n)).toFixed(0).padStart(5)} us CPU/op  ${((n / ms) * 1000).toFixed(0).padStart(6)} op/s`);
}

try {
  const pool = new pg.Pool({ connectionString: pgs.url, max: 10 });
  await pool.query("create table if not exists p (id uuid primary key, email text, name text, role text, active bool default true, created_at timestamptz default now(), updated_at timestamptz default now())");
  const id = randomUUID();
  await pool.query("insert into p (id, email, name, role) values ($1, 'a@b.c', 'A', 'user')", [id]);
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  const kv = redisStore(redis.url);
  const limiter = createRateLimiter({ kv, config: parseRateLimitConfig("domain: acme\ndescriptors:\n  - key: remote_address\n    rate_limit: {unit: second, requests_per_unit: 100000000}\n  - key: user_per_second\n    rate_limit: {unit: second, requests_per_unit: 100000000}\n  - key: user_per_minute\n    rate_limit: {unit: minute, requests_per_unit: 100000000}\n") });
  const N = 20000;
  await cost("pg: select 1 row, pool.query (text)", N, () => pool.query("select * from p where id = $1", [id]));
  await cost("pg: select 1 row, pool.query (named prepared)", N, () => pool.query({ name: "getp", text: "select * from p where id = $1", values: [id] }));
  await cost("kysely: select 1 row (selectAll, where, executeTakeFirst)", N, () => db.selectFrom("p").selectAll().where("id", "=", id).executeTakeFirst());
  await cost("redis: GET (revocation check)", N, () => isSessionRevoked(kv, id));
  await cost("edge rate limiter: 3 descriptors (3 EVALSHA)", N, () => limiter.check(descriptorsFor("127.0.0.1", id, "default")));
  await kv.close();
  await db.destroy();
} finally {
  await Promise.all([pgs.stop(), redis.stop()]);
}
