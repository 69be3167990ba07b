// Postgres and Redis servers from this machine's Debian binaries, for the
// stack (`npm run stack`, data kept under its data dir) and for the tests
// (throwaway, in a temp dir, or TEST_DATABASE_URL / TEST_REDIS_URL).
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import pg from "pg";
import { freePort, startProcess, tcpOpen, type Managed } from "./process.js";

export interface Running {
  url: string;
  stop(): Promise<void>;
  /** The process, when this started one. */
  process?: Managed;
}

function findBinary(name: string, extraDirs: string[]): string | undefined {
  const onPath = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).stdout.trim();
  if (onPath) return onPath;
  return extraDirs.map((d) => join(d, name)).find((p) => existsSync(p));
}

function pgBinDirs(): string[] {
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return [];
  return readdirSync(base)
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => join(base, v, "bin"));
}

/** The unprivileged user a root process runs Postgres as. */
function serverUser(): { uid: number; gid: number } {
  const user = spawnSync("id", ["-u", "postgres"]).status === 0 ? "postgres" : "nobody";
  const id = (flag: string) => Number(spawnSync("id", [flag, user], { encoding: "utf8" }).stdout);
  return { uid: id("-u"), gid: id("-g") };
}

export interface PostgresOptions {
  /** Keep the cluster here (created when missing); default: a temp dir removed at stop. */
  dir?: string;
  port?: number;
  logFile?: string;
  /** Tuned for tests: no fsync. */
  durable?: boolean;
}

/** A Postgres server (initdb + postgres, as the postgres user when run as root). */
export async function startPostgres(opts: PostgresOptions = {}): Promise<Running> {
  if (!opts.dir && process.env.TEST_DATABASE_URL) return { url: process.env.TEST_DATABASE_URL, stop: async () => {} };
  const initdb = findBinary("initdb", pgBinDirs());
  const postgres = initdb && join(initdb, "..", "postgres");
  if (!initdb || !postgres || !existsSync(postgres)) {
    throw new Error("PostgreSQL server binaries not found: apt-get install -y postgresql (or set TEST_DATABASE_URL)");
  }
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "acme-pg-"));
  mkdirSync(dir, { recursive: true });
  // Postgres refuses to run as root: run it as the postgres (or nobody) user, directly
  // (not through runuser, which would stand between the signals and the server).
  const as = process.getuid?.() === 0 ? serverUser() : undefined;
  if (as) {
    chownSync(dir, as.uid, as.gid);
    // The server user must be able to reach its directory (mkdtemp makes 0700 parents).
    const parent = dirname(dir);
    const mode = statSync(parent).mode & 0o777;
    if ((mode & 0o001) === 0) chmodSync(parent, mode | 0o711);
  }
  const data = join(dir, "data");
  if (!existsSync(join(data, "PG_VERSION"))) {
    const init = spawnSync(initdb, ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions"], {
      encoding: "utf8", cwd: dir, ...(as ?? {}),
    });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout || init.error}`);
  }
  const port = opts.port ?? (await freePort());
  if (await tcpOpen(port)) throw new Error(`postgres: port ${port} is already in use`);
  const fast = opts.durable ? [] : ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"];
  const args = ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", ...fast, "-c", "max_connections=300"];
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const proc = await startProcess({
    name: "postgres",
    command: postgres,
    args,
    cwd: dir,
    uid: as?.uid,
    gid: as?.gid,
    logFile: opts.logFile ?? join(dir, "postgres.log"),
    stopSignal: "SIGINT",
    ready: async () => {
      const c = new pg.Client(url);
      await c.connect();
      await c.end();
      return true;
    },
  });
  return {
    url,
    process: proc,
    stop: async () => {
      await proc.stop();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisOptions {
  port?: number;
  logFile?: string;
}

/** A redis-server without persistence (caches and counters only), or TEST_REDIS_URL. */
export async function startRedis(opts: RedisOptions = {}): Promise<Running> {
  if (!opts.port && process.env.TEST_REDIS_URL) return { url: process.env.TEST_REDIS_URL, stop: async () => {} };
  const bin = findBinary("redis-server", []);
  if (!bin) throw new Error("redis-server not found: apt-get install -y redis-server (or set TEST_REDIS_URL)");
  const port = opts.port ?? (await freePort());
  if (await tcpOpen(port)) throw new Error(`redis: port ${port} is already in use`);
  const proc = await startProcess({
    name: "redis",
    command: bin,
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--databases", "64"],
    logFile: opts.logFile ?? "/dev/null",
    ready: () => tcpOpen(port),
  });
  return { url: `redis://127.0.0.1:${port}`, process: proc, stop: () => proc.stop() };
}
