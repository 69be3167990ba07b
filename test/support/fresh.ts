// Isolated databases for each test suite on the shared throwaway servers.
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run tests through mocha (test/support/global.ts starts the servers)`);
  return v;
}

/** A new, empty Postgres database on the test server; returns its URL. */
export async function freshDatabaseUrl(): Promise<string> {
  const base = required("ACME_TEST_PG_URL");
  const name = `t_${randomBytes(6).toString("hex")}`;
  const c = new pg.Client(base);
  await c.connect();
  try {
    await c.query(`create database ${name}`);
  } finally {
    await c.end();
  }
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

let nextDb = 1;
/** A flushed Redis logical database on the test server; returns its URL. */
export async function freshRedisUrl(): Promise<string> {
  const base = required("ACME_TEST_REDIS_URL");
  const db = nextDb;
  nextDb = (nextDb % 63) + 1;
  const url = `${base}/${db}`;
  const r = new Redis(url);
  await r.flushdb();
  r.disconnect();
  return url;
}
