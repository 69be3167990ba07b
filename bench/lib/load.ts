// Native load generators: h2load (HTTP/2, gRPC) and wrk (HTTP/1.1), pinned to
// their own core when taskset is available. Latency percentiles come from
// h2load's per-request log and wrk's --latency distribution.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { percentile, type RunResult } from "./stats.js";

const run = promisify(execFile);

export const LOAD_CORE = process.env.BENCH_LOAD_CORE ?? "1";

export async function hasCommand(cmd: string): Promise<boolean> {
  return run("sh", ["-c", `command -v ${cmd}`]).then(
    () => true,
    () => false,
  );
}

async function pinned(cmd: string, args: string[], timeoutMs: number) {
  const useTaskset = await hasCommand("taskset");
  const [c, a] = useTaskset ? ["taskset", ["-c", LOAD_CORE, cmd, ...args]] : [cmd, args];
  return run(c, a, { encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}

/** A gRPC message frame: 1 byte flag, 4 bytes length, payload. */
export function grpcFrame(payload: Uint8Array): Buffer {
  const b = Buffer.alloc(5 + payload.length);
  b.writeUInt32BE(payload.length, 1);
  Buffer.from(payload).copy(b, 5);
  return b;
}

export interface H2loadOptions {
  /** Several: h2load sends each connection's requests to them in turn (one host and port). */
  url: string | string[];
  body?: Uint8Array;
  headers?: Record<string, string>;
  connections: number;
  streams: number;
  seconds: number;
  warmupSeconds?: number;
  /** Offered load per connection (h2load --rps); unset = as fast as possible. */
  rps?: number;
}

/**
 * One h2load run (prior-knowledge h2c). gRPC calls are POSTs with a framed
 * body. Throughput is h2load's (measurement window only, after the warm-up);
 * latencies come from its per-request log, which holds only the measurement
 * window. Errors: h2load's failed/errored/timed-out requests and non-200
 * answers (gRPC status codes travel in trailers h2load does not read: the
 * scenarios check those on the server's /metrics).
 */
export async function h2load(o: H2loadOptions): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), "bench-h2-"));
  try {
    const args = ["-t", "1", "-c", String(o.connections), "-m", String(o.streams), "-D", String(o.seconds)];
    if (o.warmupSeconds) args.push(`--warm-up-time=${o.warmupSeconds}`);
    if (o.rps) args.push(`--rps=${o.rps}`);
    for (const [k, v] of Object.entries(o.headers ?? {})) args.push("-H", `${k}: ${v}`);
    if (o.body) {
      writeFileSync(join(dir, "body"), o.body);
      args.push("-d", join(dir, "body"));
    }
    const log = join(dir, "log");
    args.push(`--log-file=${log}`, ...[o.url].flat());
    const { stdout } = await pinned("h2load", args, (o.seconds + (o.warmupSeconds ?? 0) + 30) * 1000);
    const lines = readFileSync(log, "utf8").trim().split("\n").filter(Boolean).map((l) => l.split("\t"));
    // Status 0: a request that was in flight when the measurement window opened (not an answer).
    const answered = lines.filter((l) => l[1] !== "0");
    const lat = answered.filter((l) => l[1] === "200").map((l) => Number(l[2]) / 1000).sort((a, b) => a - b);
    const m = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(stdout);
    // h2load's "failed" counts HTTP-level failures and errored/timed-out requests.
    const failed = Number(/(\d+) failed, \d+ errored/.exec(stdout)?.[1] ?? 0);
    const non200 = answered.length - lat.length;
    return { rps: m ? Number(m[3]) : NaN, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), errors: Math.max(failed, non200) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface WrkOptions {
  url: string;
  headers?: Record<string, string>;
  connections: number;
  seconds: number;
}

const toMs = (v: string, unit: string) => Number(v) * (unit === "us" ? 0.001 : unit === "s" ? 1000 : 1);

/** One wrk run (HTTP/1.1 keep-alive). */
export async function wrk(o: WrkOptions): Promise<RunResult> {
  const args = ["-t", "1", "-c", String(o.connections), "-d", `${o.seconds}s`, "--latency"];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push("-H", `${k}: ${v}`);
  args.push(o.url);
  const { stdout } = await pinned("wrk", args, (o.seconds + 30) * 1000);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const pct = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(stdout);
    return m ? toMs(m[1], m[2]) : NaN;
  };
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = non2xx + (sockErr ? sockErr.slice(1).reduce((a, x) => a + Number(x), 0) : 0);
  return { rps, p50Ms: pct("50"), p99Ms: pct("99"), errors };
}
