// Processes under test: spawned pinned to the server core, port read from
// their first line of stdout (baselines) or polled until healthy (the system).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { promisify } from "node:util";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../../gen/health/v1/health_pb.js";
import { freePort } from "../../test/support/servers.js";

export const SERVER_CORE = process.env.BENCH_SERVER_CORE ?? "0";
const root = new URL("../..", import.meta.url).pathname;

export interface Proc {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

/** Extra node flags for the processes under test (e.g. BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof"). */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean);

function nodeArgs(script: string): [string, string[]] {
  return ["taskset", ["-c", SERVER_CORE, process.execPath, ...NODE_FLAGS, "--import", "tsx", script]];
}

function stopper(child: ChildProcess) {
  return () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 5000).unref();
    });
}

/** A baseline server that prints its port. */
export async function startBaseline(script: string): Promise<Proc> {
  const [cmd, args] = nodeArgs(script);
  const child = spawn(cmd, args, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (d) => resolve(Number(String(d).trim().split("\n")[0])));
    child.once("exit", (c) => reject(new Error(`${script} exited ${c}`)));
  });
  return { child, port, stop: stopper(child) };
}

export async function waitHealthy(port: number, timeoutMs = 60_000): Promise<number> {
  const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    try {
      await health.check({ service: "" }, { timeoutMs: 500 });
      return performance.now() - t0;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error(`system on ${port} not healthy after ${timeoutMs} ms`);
}

/**
 * The product as `npm start` runs it (scripts/start.mjs: compile, then the
 * telemetry preload and app/main: all services + embedded edge) on a
 * given port; startMs is the time from spawning node to the first answer (a
 * gRPC health check).
 */
export async function startSystem(port: number, env: Record<string, string>, cores = SERVER_CORE, cwd = root, script?: string): Promise<Proc & { startMs: number; metricsUrl: string }> {
  const metricsPort = await freePort();
  // BENCH_VIA_TSX=1: run the sources through tsx instead (as the tests and the Docker image do);
  // `script`: a bench composition of the product in place of app/main.ts (always through tsx).
  const viaTsx = (main: string) => ["--import", "tsx", "--import", "./platform/telemetry/register.ts", main];
  const entry = script ? viaTsx(script) : process.env.BENCH_VIA_TSX ? viaTsx("app/main.ts") : ["scripts/start.mjs"];
  const [cmd, args] = ["taskset", ["-c", cores, process.execPath, ...NODE_FLAGS, ...entry]];
  const t0 = performance.now();
  // BENCH_SERVER_LOG=<file>: the product's stdout (e.g. with BENCH_NODE_FLAGS=--trace-gc) goes there.
  const out = process.env.BENCH_SERVER_LOG ? openSync(process.env.BENCH_SERVER_LOG, "a") : "ignore";
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env, PORT: String(port), METRICS_PORT: String(metricsPort) }, stdio: ["ignore", out, "inherit"] });
  if (typeof out === "number") closeSync(out);
  let onExit: (code: number | null) => void = () => {};
  const exited = new Promise<never>((_, reject) => {
    onExit = (c) => reject(new Error(`app/main.ts exited ${c} before answering`));
    child.once("exit", onExit);
  });
  try {
    await Promise.race([waitHealthy(port), exited]);
  } finally {
    child.off("exit", onExit);
  }
  return { child, port, metricsUrl: `http://127.0.0.1:${metricsPort}`, startMs: performance.now() - t0, stop: stopper(child) };
}

/** Run a script to completion on the server core; its stdout. */
export async function runPinned(script: string, args: string[] = []): Promise<string> {
  const [cmd, a] = nodeArgs(script);
  const { stdout } = await promisify(execFile)(cmd, [...a, ...args], { cwd: root, encoding: "utf8", timeout: 300_000 });
  return stdout;
}

function status(pid: number, field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Resident set size of a process in MB (Linux). */
export const rssMb = (pid: number) => status(pid, "VmRSS");

/** Peak resident set size of a process so far in MB (Linux VmHWM). */
export const peakRssMb = (pid: number) => status(pid, "VmHWM");

/** The node process behind `taskset ... node`: taskset execs, so the pid is the same. */
export function pidOf(p: Proc): number {
  return p.child.pid!;
}
