// Processes under test: spawned pinned to the server core, port read from
// their first line of stdout (baselines) or polled until healthy (the system).
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../../gen/health/v1/health_pb.js";

export const SERVER_CORE = process.env.BENCH_SERVER_CORE ?? "0";
const root = new URL("../..", import.meta.url).pathname;

export interface Proc {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

function nodeArgs(script: string, extra: string[] = []): [string, string[]] {
  return ["taskset", ["-c", SERVER_CORE, process.execPath, "--import", "tsx", script, ...extra]];
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

/** The product (services/main.ts, all services + embedded edge) on a given port. */
export async function startSystem(port: number, env: Record<string, string>): Promise<Proc & { startMs: number }> {
  const [cmd, args] = nodeArgs("services/main.ts");
  const t0 = performance.now();
  const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env, PORT: String(port) }, stdio: ["ignore", "ignore", "inherit"] });
  await waitHealthy(port);
  return { child, port, startMs: performance.now() - t0, stop: stopper(child) };
}

/** Resident set size of a process in MB (Linux). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The node process behind `taskset ... node`: taskset execs, so the pid is the same. */
export function pidOf(p: Proc): number {
  return p.child.pid!;
}
