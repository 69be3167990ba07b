// Throwaway Postgres and Redis servers for integration tests, started from
// the binaries on this machine (or TEST_DATABASE_URL / TEST_REDIS_URL).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

export interface Running {
  url: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function findBinary(name: string, extraDirs: string[]): string | undefined {
  const onPath = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).stdout.trim();
  if (onPath) return onPath;
  for (const dir of extraDirs) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function pgBinDirs(): string[] {
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return [];
  return readdirSync(base)
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => join(base, v, "bin"));
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
    child.kill(signal);
  });
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready within ${ms} ms`);
}

/** A Postgres server in a temp dir (initdb + postgres), or TEST_DATABASE_URL. */
export async function startPostgres(): Promise<Running> {
  if (process.env.TEST_DATABASE_URL) return { url: process.env.TEST_DATABASE_URL, stop: async () => {} };
  const initdb = findBinary("initdb", pgBinDirs());
  const postgres = initdb && join(initdb, "..", "postgres");
  if (!initdb || !postgres || !existsSync(postgres)) {
    throw new Error("PostgreSQL server binaries not found: apt-get install -y postgresql (or set TEST_DATABASE_URL)");
  }
  const dir = mkdtempSync(join(tmpdir(), "acme-pg-"));
  // Postgres refuses to run as root: run it as the postgres (or nobody) user.
  const asRoot = process.getuid?.() === 0;
  const user = asRoot ? (spawnSync("id", ["-u", "postgres"]).status === 0 ? "postgres" : "nobody") : undefined;
  if (asRoot) {
    const uid = Number(spawnSync("id", ["-u", user!], { encoding: "utf8" }).stdout);
    const gid = Number(spawnSync("id", ["-g", user!], { encoding: "utf8" }).stdout);
    chownSync(dir, uid, gid);
  }
  const wrap = (cmd: string, args: string[]): [string, string[]] => (asRoot ? ["runuser", ["-u", user!, "--", cmd, ...args]] : [cmd, args]);
  const data = join(dir, "data");
  const [c1, a1] = wrap(initdb, ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions"]);
  const init = spawnSync(c1, a1, { encoding: "utf8" });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  const port = await freePort();
  const [c2, a2] = wrap(postgres, [
    "-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1",
    "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300",
  ]);
  const child = spawn(c2, a2, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`postgres exited: ${stderr}`);
      const c = new pg.Client(url);
      await c.connect();
      await c.end();
      return true;
    }, "postgres");
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return {
    url,
    stop: async () => {
      await stopChild(child, "SIGINT");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A redis-server without persistence, or TEST_REDIS_URL. */
export async function startRedis(): Promise<Running> {
  if (process.env.TEST_REDIS_URL) return { url: process.env.TEST_REDIS_URL, stop: async () => {} };
  const bin = findBinary("redis-server", []);
  if (!bin) throw new Error("redis-server not found: apt-get install -y redis-server (or set TEST_REDIS_URL)");
  const port = await freePort();
  const child = spawn(bin, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--databases", "64"], {
    stdio: "ignore",
  });
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => {
          s.end();
          resolve(true);
        });
        s.on("error", () => resolve(false));
      }),
    "redis-server",
  );
  return { url: `redis://127.0.0.1:${port}`, stop: () => stopChild(child) };
}
