// One child process of the stack: started with its output in a log file,
// waited for until a readiness check passes, stopped with a signal (SIGKILL
// after a grace period). Everything the stack and the tests start goes
// through here, so nothing is left running.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import net from "node:net";

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this user and group (a root parent starting Postgres). */
  uid?: number;
  gid?: number;
  /** stdout and stderr go here (appended). */
  logFile: string;
  /** Resolves true once the process serves. */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  /** The signal that stops it gracefully (default SIGTERM). */
  stopSignal?: NodeJS.Signals;
}

export interface Managed {
  readonly name: string;
  readonly spec: ProcessSpec;
  readonly child: ChildProcess;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  running(): boolean;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  /** The last lines of its log. */
  logTail(lines?: number): string;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(check: () => Promise<boolean>, what: string, ms: number, alive?: () => string | undefined): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const dead = alive?.();
    if (dead) throw new Error(`${what}: ${dead}`);
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} did not become ready within ${ms} ms`);
}

export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** Start a process and wait until it is ready; on failure it is stopped and its log shown. */
export async function startProcess(spec: ProcessSpec): Promise<Managed> {
  const fd = openSync(spec.logFile, "a");
  const child = spawn(spec.command, spec.args, { cwd: spec.cwd, env: spec.env ?? process.env, stdio: ["ignore", fd, fd], uid: spec.uid, gid: spec.gid });
  closeSync(fd);
  let spawnError: Error | undefined;
  child.once("error", (err) => (spawnError = err));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  const running = () => child.exitCode === null && child.signalCode === null && !spawnError;
  const stop = async (signal: NodeJS.Signals = spec.stopSignal ?? "SIGTERM", graceMs = 5000) => {
    if (!running()) return;
    const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.kill(signal);
    await exited;
    clearTimeout(killer);
  };
  const m: Managed = { name: spec.name, spec, child, exited, running, stop, logTail: (n) => tail(spec.logFile, n) };
  try {
    await waitFor(spec.ready, spec.name, spec.readyTimeoutMs ?? 30_000, () =>
      spawnError ? `could not start ${spec.command}: ${spawnError.message}` : running() ? undefined : `exited with ${child.exitCode ?? child.signalCode}`,
    );
  } catch (err) {
    await stop("SIGKILL");
    throw new Error(`${(err as Error).message}\n--- ${spec.logFile} (last lines)\n${tail(spec.logFile)}`);
  }
  return m;
}

/** True when something accepts TCP connections on host:port. */
export function tcpOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host, () => {
      s.end();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

/** True when GET url answers with a status below 500 (or the given one). */
export async function httpOk(url: string, expect?: (status: number, body: string) => boolean): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  const body = await res.text();
  return expect ? expect(res.status, body) : res.status < 500;
}

// Ports are handed out below the kernel's ephemeral range (32768-60999 on Linux): a port
// taken from the ephemeral range can be claimed by any outgoing connection between the
// moment it is chosen and the moment a child binds it (seen in CI: Jaeger's query port
// "address already in use"). Each process starts at its own offset and never hands out
// the same port twice, so stacks started side by side do not collide either.
const PORT_LOW = 20_000;
const PORT_HIGH = 32_000;
const handedOut = new Set<number>();
let nextPort = PORT_LOW + ((process.pid * 7919) % (PORT_HIGH - PORT_LOW));

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** A port nobody listens on right now, outside the ephemeral range, never given twice by this process. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < PORT_HIGH - PORT_LOW; tries++) {
    const port = nextPort;
    nextPort = nextPort + 1 >= PORT_HIGH ? PORT_LOW : nextPort + 1;
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port in ${PORT_LOW}-${PORT_HIGH}`);
}
