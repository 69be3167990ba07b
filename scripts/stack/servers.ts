// Postgres, Redis and RabbitMQ servers from this machine's Debian binaries, for the
// stack (`npm run stack`, data kept under its data dir) and for the tests
// (throwaway, in a temp dir, or TEST_DATABASE_URL / TEST_REDIS_URL).
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { connect as amqpConnect } from "amqplib";
import pg from "pg";
import { freePort, sleep, startProcess, tail, tcpOpen, waitFor, type Managed } from "./process.js";

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

export interface RabbitmqOptions {
  /** Keep the node's data and logs here (created when missing); default: a temp dir removed at stop. */
  dir?: string;
  /** The AMQP port; the node's name derives from it, so the same port and dir find the same data. */
  port?: number;
  /** Enabled plugins, e.g. ["rabbitmq_management"] (default none). */
  plugins?: string[];
  /** The management UI's port, when the plugin is enabled. */
  managementPort?: number;
  logFile?: string;
  readyTimeoutMs?: number;
}

/** pid -> [ppid, start time] of every process (Linux /proc). */
function processTable(): Map<number, [number, string]> {
  const table = new Map<number, [number, string]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // Fields after the ")" that ends the command name: state ppid ... starttime is the 20th.
      const rest = readFileSync(`/proc/${name}/stat`, "utf8").split(") ").pop()!.split(" ");
      table.set(Number(name), [Number(rest[1]), rest[19]]);
    } catch {
      /* exited meanwhile */
    }
  }
  return table;
}

/** The processes below pid (by pid and start time, so a reused pid is not mistaken for one). */
function descendants(pid: number): Array<[number, string]> {
  const table = processTable();
  const found: Array<[number, string]> = [];
  const walk = (parent: number) => {
    for (const [child, [ppid, start]] of table) {
      if (ppid === parent) {
        found.push([child, start]);
        walk(child);
      }
    }
  };
  walk(pid);
  return found;
}

function alive([pid, start]: [number, string]): boolean {
  return processTable().get(pid)?.[1] === start;
}

/**
 * A rabbitmq-server node of its own: own node name, data, logs, cookie (HOME) and its own epmd,
 * all on loopback. The child is the Erlang VM itself; stop() sends it SIGTERM (a clean shutdown),
 * waits for its helper processes (killing what is left after the grace period), then stops epmd,
 * a child of ours.
 */
export async function startRabbitmq(opts: RabbitmqOptions = {}): Promise<Running> {
  const script = ["/usr/lib/rabbitmq/bin/rabbitmq-server"].find((p) => existsSync(p)) ?? findBinary("rabbitmq-server", []);
  const epmd = findBinary("epmd", ["/usr/lib/erlang/bin"]);
  if (!script || !epmd) throw new Error("rabbitmq-server not found: apt-get install -y rabbitmq-server");
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "acme-rabbitmq-"));
  const home = join(dir, "home");
  for (const d of [dir, home, join(dir, "mnesia"), join(dir, "log")]) mkdirSync(d, { recursive: true });
  const port = opts.port ?? (await freePort());
  if (await tcpOpen(port)) throw new Error(`rabbitmq: port ${port} is already in use`);
  const [epmdPort, distPort] = [await freePort(), await freePort()];
  const plugins = opts.plugins ?? [];
  writeFileSync(join(dir, "enabled_plugins"), `[${plugins.join(",")}].\n`);
  const conf = opts.managementPort ? [`management.tcp.ip = 127.0.0.1`, `management.tcp.port = ${opts.managementPort}`] : [];
  writeFileSync(join(dir, "rabbitmq.conf"), conf.map((l) => l + "\n").join(""));
  const logFile = opts.logFile ?? join(dir, "rabbitmq.log");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: "127.0.0.1",
    RABBITMQ_NODENAME: `rabbit-${port}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, "mnesia"),
    RABBITMQ_LOG_BASE: join(dir, "log"),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, "enabled_plugins"),
    RABBITMQ_CONFIG_FILE: join(dir, "rabbitmq.conf"),
    // Not the machine's /etc/rabbitmq settings.
    RABBITMQ_CONF_ENV_FILE: join(dir, "rabbitmq-env.conf"),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, "advanced.config"),
    RABBITMQ_PID_FILE: join(dir, "rabbitmq.pid"),
    // Our epmd, not one the VM would start (and leave behind, daemonized); distribution on loopback.
    // -noinput ourselves and RABBITMQ_ALLOW_INPUT: the script then execs the VM (instead of running it
    // in the background behind a signal-forwarding shell), so the child is beam.smp and its signals its own.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-noinput -start_epmd false -kernel inet_dist_use_interface {127,0,0,1}",
    RABBITMQ_ALLOW_INPUT: "true",
  };
  const epmdProc = await startProcess({
    name: "epmd",
    command: epmd,
    args: ["-port", String(epmdPort), "-address", "127.0.0.1"],
    env,
    logFile: "/dev/null",
    ready: () => tcpOpen(epmdPort),
  });
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  let proc: Managed | undefined;
  let helpers: Array<[number, string]> = [];
  const stop = async () => {
    // The VM's port helpers (erl_child_setup, inet_gethost: sessions of their own) and their
    // children, as found now and once it was ready (the VM may have been killed meanwhile).
    const below = [...helpers, ...(proc?.running() ? descendants(proc.child.pid!) : [])];
    // SIGTERM: the VM stops cleanly (SIGKILL after the grace period).
    await proc?.stop("SIGTERM", 15_000);
    for (let i = 0; i < 100 && below.some(alive); i++) await sleep(50);
    for (const p of below.filter(alive)) {
      try {
        process.kill(p[0], "SIGKILL");
      } catch {
        /* gone meanwhile */
      }
    }
    for (let i = 0; i < 100 && below.some(alive); i++) await sleep(50);
    await epmdProc.stop();
  };
  try {
    proc = await startProcess({ name: "rabbitmq", command: script, args: [], cwd: dir, env, logFile, ready: async () => true });
    const started = proc;
    await waitFor(
      async () => {
        const conn = await amqpConnect(url, { timeout: 2000 });
        await conn.close();
        return true;
      },
      "rabbitmq",
      opts.readyTimeoutMs ?? 60_000,
      () => (started.running() ? undefined : `exited with ${started.child.exitCode ?? started.child.signalCode}`),
    );
    helpers = descendants(started.child.pid!);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n--- ${logFile} (last lines)\n${tail(logFile)}`);
  }
  return {
    url,
    process: proc,
    stop: async () => {
      await stop();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
