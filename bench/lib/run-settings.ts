// What every scenario of `npm run bench` shares: run lengths (`--quick` or
// BENCH_RUNS / BENCH_SECONDS), the load shape, the repeat-and-summarise loop,
// the progress log and the gRPC request h2load sends.
import { grpcFrame } from "./load.js";
import { summarise, type RunResult } from "./stats.js";

export const QUICK = process.argv.includes("--quick");
export const RUNS = QUICK ? 1 : Number(process.env.BENCH_RUNS ?? 3);
export const SECONDS = QUICK ? 3 : Number(process.env.BENCH_SECONDS ?? 5);
export const WARMUP = QUICK ? 1 : 2;
export const IN_FLIGHT = { connections: 2, streams: 25 }; // 50 in flight

export const log = (s: string) => console.error(`[bench] ${s}`);

/** RUNS runs of a load, summarised (medians, spread). */
export async function repeat(fn: () => Promise<RunResult>) {
  const runs: RunResult[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await fn());
  return summarise(runs);
}

export const grpcHeaders = { "content-type": "application/grpc", te: "trailers" };
/** An empty unary gRPC request (Health/Check, GetMe). */
export const emptyRequest = grpcFrame(new Uint8Array());

/**
 * BENCH_ONLY=orders,search: only those parts of the run (unset: all). The
 * baselines run too when a part takes a ratio to them (reads, logins).
 */
export const PARTS = ["baselines", "reads", "orders", "search", "logins", "pieces", "start", "events"] as const;
export type Part = (typeof PARTS)[number];
const only = (process.env.BENCH_ONLY ?? "").split(",").map((s) => s.trim()).filter(Boolean);
const unknownPart = only.find((p) => !(PARTS as readonly string[]).includes(p));
if (unknownPart) throw new Error(`BENCH_ONLY: unknown part "${unknownPart}" (parts: ${PARTS.join(", ")})`);
export const wants = (...parts: Part[]) => only.length === 0 || parts.some((p) => only.includes(p));
