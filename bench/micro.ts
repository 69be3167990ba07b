// CPU cost of the pieces of an authenticated read, each alone, on the server
// core, against a real Postgres and Redis: microseconds of this process's CPU
// per operation with 50 operations in flight (as under the bench's load).
// `npm run bench` runs it (bench/run.ts, rows "piece: ..."); alone:
//   node --import tsx bench/micro.ts            (starts its own Postgres and Redis)
//   node --import tsx bench/micro.ts <pg-url> <redis-url>   (prints JSON)
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { createRateLimiter, descriptorsFor, parseRateLimitConfig } from "../edge/ratelimit.js";
import { isSessionRevoked, markRevocationsLoaded } from "../platform/auth/revocation.js";
import { prepared } from "../platform/prepared.js";
import { createVerifier } from "../platform/auth/verifier.js";
import { memoryStore, redisStore } from "../platform/kv.js";
import { startPostgres, startRedis } from "../test/support/servers.js";
import { LOAD_CORE } from "./lib/load.js";

export interface Piece {
  piece: string;
  usPerOp: number;
  opsPerSec: number;
}

async function cost(piece: string, n: number, op: () => Promise<unknown>): Promise<Piece> {
  for (let i = 0; i < 500; i++) await op();
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  let left = n;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (left-- > 0) await op();
    }),
  );
  const u = process.cpuUsage(u0);
  return { piece, usPerOp: (u.user + u.system) / n, opsPerSec: (n / (performance.now() - t0)) * 1000 };
}

function userToken(privateKey: ReturnType<typeof generateKeyPairSync>["privateKey"]): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: "acme-auth", aud: "acme-api", sub: randomUUID(), sid: randomUUID(), jti: randomUUID(), roles: ["user"], iat: now, nbf: now, exp: now + 900 })
    .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: "k1" })
    .sign(privateKey);
}

export async function measurePieces(pgUrl: string, redisUrl: string, n = 20_000): Promise<Piece[]> {
  const pool = new pg.Pool({ connectionString: pgUrl, max: 10 });
  const out: Piece[] = [];
  await pool.query("create table if not exists bench_profiles (id uuid primary key, email text, name text, role text, active bool default true, created_at timestamptz default now(), updated_at timestamptz default now())");
  const id = randomUUID();
  await pool.query("insert into bench_profiles (id, email, name, role) values ($1, 'a@example.com', 'A', 'user')", [id]);
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  const kv = redisStore(redisUrl);
  const big = "{unit: second, requests_per_unit: 100000000}";
  const limiter = createRateLimiter({
    kv,
    config: parseRateLimitConfig(`domain: acme\ndescriptors:\n  - key: remote_address\n    rate_limit: ${big}\n  - key: user_per_second\n    rate_limit: ${big}\n  - key: user_per_minute\n    rate_limit: ${big}\n`),
  });
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const mem = memoryStore();
  // No auth service here: mark the (empty) revocation lists loaded, as it would.
  await markRevocationsLoaded(kv);
  await markRevocationsLoaded(mem);
  const verifierOf = (cacheSize: number) =>
    createVerifier({ issuer: "acme-auth", userAudience: "acme-api", serviceAudiences: [], keys: { get: async () => publicKey }, kv: mem, cacheSize });
  const fresh = verifierOf(0);
  const remembering = verifierOf(10_000);
  const token = await userToken(privateKey);
  try {
    out.push(await cost("JWT check, first sight of a token (jose: decode, signature, claims)", n / 4, () => fresh.verify(token)));
    out.push(await cost("JWT check, token seen before (remembered; expiry, key, revocation rechecked)", n, () => remembering.verify(token)));
    out.push(await cost("Postgres point read, kysely query built per call + pg", n, () => db.selectFrom("bench_profiles").selectAll().where("id", "=", id).executeTakeFirst()));
    const byId = prepared(db, (pk: string) => db.selectFrom("bench_profiles").selectAll().where("id", "=", pk));
    out.push(await cost("Postgres point read, kysely query compiled once + pg (platform/prepared.ts, what GetMe runs)", n, () => byId.first(id)));
    out.push(await cost("Postgres point read, pg named prepared statement (not used)", n, () => pool.query({ name: "bench_get", text: "select * from bench_profiles where id = $1", values: [id] })));
    out.push(await cost("Redis revocation lookup (MGET of the sentinel and the session)", n, () => isSessionRevoked(kv, id)));
    out.push(await cost("edge rate limits: 3 descriptors in one EVALSHA", n, () => limiter.check(descriptorsFor("127.0.0.1", id, "default"))));
  } finally {
    await kv.close();
    await mem.close();
    await db.destroy();
  }
  return out;
}

if (process.argv[1]?.endsWith("micro.ts")) {
  const [pgUrl, redisUrl] = process.argv.slice(2);
  if (pgUrl && redisUrl) {
    console.log(JSON.stringify(await measurePieces(pgUrl, redisUrl)));
  } else {
    execFileSync("taskset", ["-a", "-p", "-c", LOAD_CORE, String(process.pid)], { stdio: "ignore" });
    const [pgs, redis] = await Promise.all([startPostgres(), startRedis()]);
    execFileSync("taskset", ["-p", "-c", process.env.BENCH_SERVER_CORE ?? "0", String(process.pid)], { stdio: "ignore" });
    try {
      for (const p of await measurePieces(pgs.url, redis.url)) console.log(`${p.piece.padEnd(80)} ${p.usPerOp.toFixed(0).padStart(5)} us CPU/op`);
    } finally {
      await Promise.all([pgs.stop(), redis.stop()]);
    }
  }
}
