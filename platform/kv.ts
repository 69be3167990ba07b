// Key-value store: Redis through ioredis when REDIS_URL is set, otherwise an
// in-process store with the same semantics (TTL, atomic increment, sets) so the
// embedded run needs no server. Only the operations the product uses.
import { Redis } from "ioredis";
import { int } from "./config.js";
import { DependencyCircuit } from "./dependency.js";
import { DependencyUnavailableError, kvUnavailableReason } from "./errors.js";

export interface KeyValueStore {
  readonly kind: "redis" | "memory";
  get(key: string): Promise<string | null>;
  /** Several values in one round trip, read atomically (Redis MGET); null for a missing key. */
  mget(...keys: string[]): Promise<(string | null)[]>;
  /** Set a value, with an optional time to live in milliseconds. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Set only if absent; true when this call set it. */
  setNx(key: string, value: string, ttlMs: number): Promise<boolean>;
  del(...keys: string[]): Promise<number>;
  /**
   * Atomically add `by` and return the new value. When ttlMs is given and the
   * key was created by this call, it expires after ttlMs.
   */
  incr(key: string, by?: number, ttlMs?: number): Promise<number>;
  /**
   * incr(key, 1, ttlMs) for several keys in one round trip (each key
   * atomically; not a transaction across keys). The new values, in order.
   */
  incrEach(entries: readonly (readonly [key: string, ttlMs: number])[]): Promise<number[]>;
  /** Remaining time to live in ms; -2 when missing, -1 without expiry. */
  pttl(key: string): Promise<number>;
  sadd(key: string, ...members: string[]): Promise<number>;
  srem(key: string, ...members: string[]): Promise<number>;
  smembers(key: string): Promise<string[]>;
  sismember(key: string, member: string): Promise<boolean>;
  /** Round trip in ms (health). */
  ping(): Promise<number>;
  close(): Promise<void>;
}

const INCR_SCRIPT = `
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 and n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n`;

/** INCR_SCRIPT for each key: KEYS[i] expires after ARGV[i] ms when this call created it. */
const INCR_EACH_SCRIPT = `
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  local ttl = tonumber(ARGV[i])
  if ttl > 0 and n == 1 then redis.call('PEXPIRE', key, ttl) end
  out[i] = n
end
return out`;

type AcmeRedis = Redis & {
  acmeIncr(key: string, by: number, ttlMs: number): Promise<number>;
  acmeIncrEach(numberOfKeys: number, ...keysThenTtls: (string | number)[]): Promise<number[]>;
};

/** How long Redis may take before a request is told UNAVAILABLE (docs/outages.md). */
export interface KvTimeouts {
  /** REDIS_CONNECT_TIMEOUT_MS: opening the connection. */
  connectMs: number;
  /** REDIS_COMMAND_TIMEOUT_MS: one command, from the call to its reply. */
  commandMs: number;
  /** REDIS_CIRCUIT_OPEN_MS: after a timed-out command, calls fail at once for this long, then one probes. */
  circuitOpenMs: number;
  /** REDIS_RECONNECT_MAX_MS: the longest pause between two reconnection attempts (they never stop). */
  reconnectMaxMs: number;
}

export function kvTimeouts(env: Record<string, string | undefined> = process.env): KvTimeouts {
  return {
    connectMs: int(env, "REDIS_CONNECT_TIMEOUT_MS", 1000, 50, 60_000),
    commandMs: int(env, "REDIS_COMMAND_TIMEOUT_MS", 500, 50, 60_000),
    circuitOpenMs: int(env, "REDIS_CIRCUIT_OPEN_MS", 1000, 50, 60_000),
    reconnectMaxMs: int(env, "REDIS_RECONNECT_MAX_MS", 1000, 50, 60_000),
  };
}

export function redisStore(url: string, env: Record<string, string | undefined> = process.env): KeyValueStore & { client: Redis } {
  const t = kvTimeouts(env);
  // Auto-pipelining: commands issued in the same tick (a request's revocation
  // check and rate-limit counters, other requests' commands) go out in one
  // write instead of one syscall each.
  const client = new Redis(url, {
    enableAutoPipelining: true,
    lazyConnect: false,
    connectTimeout: t.connectMs,
    commandTimeout: t.commandMs,
    // Commands queue only until the first connection; after that, see `guard`.
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    // Reconnect for ever, at most reconnectMaxMs apart: recovery needs no restart.
    retryStrategy: (times) => Math.min(times * 100, t.reconnectMaxMs),
  }) as AcmeRedis;
  // EVALSHA of the cached script (EVAL once on NOSCRIPT) instead of sending the script with every call.
  client.defineCommand("acmeIncr", { numberOfKeys: 1, lua: INCR_SCRIPT });
  client.defineCommand("acmeIncrEach", { lua: INCR_EACH_SCRIPT });
  // Connection errors surface on commands; an unhandled 'error' event would crash.
  client.on("error", () => {});
  // Fail fast: once connected, a command issued while the connection is down
  // (reconnecting) or after a timed-out command (circuit open) fails at once
  // with DependencyUnavailableError instead of waiting in the offline queue.
  const circuit = new DependencyCircuit({ dependency: "redis", openMs: t.circuitOpenMs });
  let connectedOnce = false;
  client.on("ready", () => {
    connectedOnce = true;
    circuit.succeeded();
  });
  const guard = <T>(fn: () => Promise<T>): Promise<T> => {
    if (connectedOnce && client.status !== "ready") {
      return Promise.reject(new DependencyUnavailableError("redis", `connection ${client.status}`, { circuitOpen: true, retryAfterSeconds: t.circuitOpenMs / 1000 }));
    }
    return circuit.run(fn, kvUnavailableReason);
  };
  const store = redisCommands(client);
  const guarded = Object.fromEntries(
    Object.entries(store).map(([name, fn]) => [name, (...args: unknown[]) => guard(() => (fn as (...a: unknown[]) => Promise<unknown>)(...args))]),
  ) as unknown as typeof store;
  return {
    ...guarded,
    kind: "redis",
    client,
    close: async () => {
      await client.quit().catch(() => client.disconnect());
    },
  };
}

/** The store's commands on an ioredis client, unguarded. */
function redisCommands(client: AcmeRedis): Omit<KeyValueStore, "kind" | "close"> {
  return {
    get: (k) => client.get(k),
    mget: (...keys) => client.mget(...keys),
    set: async (k, v, ttl) => {
      if (ttl) await client.set(k, v, "PX", Math.max(1, Math.ceil(ttl)));
      else await client.set(k, v);
    },
    setNx: async (k, v, ttl) => (await client.set(k, v, "PX", Math.max(1, Math.ceil(ttl)), "NX")) === "OK",
    del: (...keys) => (keys.length ? client.del(...keys) : Promise.resolve(0)),
    incr: async (k, by = 1, ttl = 0) => Number(await client.acmeIncr(k, by, Math.ceil(ttl))),
    incrEach: async (entries) => {
      if (entries.length === 0) return [];
      const counts = await client.acmeIncrEach(entries.length, ...entries.map(([k]) => k), ...entries.map(([, ttl]) => Math.ceil(ttl)));
      return counts.map(Number);
    },
    pttl: (k) => client.pttl(k),
    sadd: (k, ...m) => client.sadd(k, ...m),
    srem: (k, ...m) => client.srem(k, ...m),
    smembers: (k) => client.smembers(k),
    sismember: async (k, m) => (await client.sismember(k, m)) === 1,
    ping: async () => {
      const t = performance.now();
      await client.ping();
      return performance.now() - t;
    },
  };
}

interface Entry {
  value: string | Set<string>;
  expiresAt?: number;
}

/** In-process stand-in for Redis with the same semantics for these commands. */
export function memoryStore(now: () => number = Date.now): KeyValueStore {
  const data = new Map<string, Entry>();
  const live = (k: string): Entry | undefined => {
    const e = data.get(k);
    if (e && e.expiresAt !== undefined && e.expiresAt <= now()) {
      data.delete(k);
      return undefined;
    }
    return e;
  };
  const str = (k: string): string | null => {
    const e = live(k);
    if (!e) return null;
    if (typeof e.value !== "string") throw new Error("WRONGTYPE Operation against a key holding the wrong kind of value");
    return e.value;
  };
  const set = (k: string): Set<string> | undefined => {
    const e = live(k);
    if (!e) return undefined;
    if (typeof e.value === "string") throw new Error("WRONGTYPE Operation against a key holding the wrong kind of value");
    return e.value;
  };
  const sweep = setInterval(() => {
    for (const k of data.keys()) live(k);
  }, 30_000);
  sweep.unref();
  const incr = async (k: string, by = 1, ttl = 0) => {
    const cur = str(k);
    if (cur !== null && !/^-?\d+$/.test(cur)) throw new Error("ERR value is not an integer or out of range");
    const n = (cur === null ? 0 : Number(cur)) + by;
    const prev = live(k);
    const expiresAt = cur === null ? (ttl > 0 ? now() + ttl : undefined) : prev?.expiresAt;
    data.set(k, { value: String(n), expiresAt });
    return n;
  };
  return {
    kind: "memory",
    get: async (k) => str(k),
    mget: async (...keys) => keys.map((k) => str(k)),
    set: async (k, v, ttl) => {
      data.set(k, { value: v, expiresAt: ttl ? now() + ttl : undefined });
    },
    setNx: async (k, v, ttl) => {
      if (live(k)) return false;
      data.set(k, { value: v, expiresAt: now() + ttl });
      return true;
    },
    del: async (...keys) => keys.filter((k) => live(k) && data.delete(k)).length,
    incr,
    incrEach: (entries) => Promise.all(entries.map(([k, ttl]) => incr(k, 1, ttl))),
    pttl: async (k) => {
      const e = live(k);
      if (!e) return -2;
      return e.expiresAt === undefined ? -1 : e.expiresAt - now();
    },
    sadd: async (k, ...m) => {
      let s = set(k);
      if (!s) data.set(k, { value: (s = new Set()) });
      const before = s.size;
      m.forEach((x) => s!.add(x));
      return s.size - before;
    },
    srem: async (k, ...m) => {
      const s = set(k);
      if (!s) return 0;
      const n = m.filter((x) => s.delete(x)).length;
      if (s.size === 0) data.delete(k);
      return n;
    },
    smembers: async (k) => [...(set(k) ?? [])],
    sismember: async (k, m) => set(k)?.has(m) ?? false,
    ping: async () => 0,
    close: async () => {
      clearInterval(sweep);
      data.clear();
    },
  };
}

export function openStore(url: string | undefined, env: Record<string, string | undefined> = process.env): KeyValueStore {
  return url ? redisStore(url, env) : memoryStore();
}
