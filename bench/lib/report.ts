// The rows of a bench run and bench/results/latest.{md,json} (only.{md,json}
// for a BENCH_ONLY run): the markdown table (printed too) and the same rows
// with the machine as JSON.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import type { EdgePids } from "./edge.js";
import { LOAD_CORE } from "./load.js";
import { SERVER_CORE } from "./procs.js";
import { QUICK, RUNS, SECONDS, WARMUP } from "./run-settings.js";

export interface Row {
  scenario: string;
  rps?: number;
  p50Ms?: number;
  p99Ms?: number;
  spreadPct?: number;
  runs?: number;
  errors?: number;
  ratio?: number;
  ratioOf?: string;
  target?: string;
  met?: boolean;
  note?: string;
  /** CPU time of the process under test per request (or per operation), microseconds. */
  cpuUs?: number;
  /** Through Envoy: CPU per request of each program of the stack, microseconds. */
  cpuByProcessUs?: Partial<Record<keyof EdgePids, number>>;
  /** Through Envoy: share of answered requests envoyproxy/ratelimit answered a check for (the rest failed open). */
  limitsCheckedPct?: number;
}

/** How the run went on the machine: its length, the load average around it, CPU steal during it. */
export interface RunConditions {
  ms: number;
  loadBefore: number[];
  loadAfter: number[];
  stealPct: number;
}

export function writeReport(rows: readonly Row[], { ms, loadBefore, loadAfter, stealPct }: RunConditions): void {
  const cpu = cpus();
  const machine = {
    cores: cpu.length,
    model: cpu[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    date: new Date().toISOString(),
    serverCore: SERVER_CORE,
    loadCore: LOAD_CORE,
    loadAverageBefore: loadBefore.map((x) => Number(x.toFixed(2))),
    loadAverageAfter: loadAfter.map((x) => Number(x.toFixed(2))),
    cpuStealPct: Number(stealPct.toFixed(1)),
  };
  const fmt = (n?: number, d = 0) => (n === undefined || Number.isNaN(n) ? "" : n.toFixed(d));
  const lines = [
    `# Benchmark results`,
    ``,
    `Machine: ${machine.cores} cores (${machine.model}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.date}.`,
    `Load average before ${machine.loadAverageBefore.join(" ")}, after ${machine.loadAverageAfter.join(" ")}; CPU steal during the run ${machine.cpuStealPct}%.`,
    ``,
    `Cores: every process under test (baseline servers, the product, the raw bcrypt/crypto loops) alone on core ${SERVER_CORE}; ` +
      `h2load/wrk, the Node clients of the order and login scenarios, Postgres and Redis on core ${LOAD_CORE}. ` +
      `Rows "via Envoy": the stack of npm run stack (scripts/stack) with Envoy and the auth, user and order processes on core ${SERVER_CORE} ` +
      `(their CPU us/req is the sum of those four), envoyproxy/ratelimit and Jaeger on core ${LOAD_CORE}; trace export off on both paths ` +
      `(services: OTEL_SDK_DISABLED; Envoy: sampling 0 %), rate limits raised but still checked on every request. ` +
      `The embedded start runs on all cores, as npm start does (nothing else runs then).`,
    ``,
    `Runs: ${RUNS} x ${SECONDS} s per scenario (after ${WARMUP} s warm-up for h2load), median of the runs; spread = (max - min) / median of req/s. Total ${(ms / 1000).toFixed(0)} s.`,
    ``,
    `| scenario | req/s | p50 ms | p99 ms | spread % | runs | errors | CPU us/req | ratio | target | met |`,
    `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |`,
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.note ?? fmt(r.rps)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.spreadPct, 0)} | ${r.runs ?? ""} | ${r.errors ?? ""} | ${fmt(r.cpuUs)} | ${r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}x ${r.ratioOf}`} | ${r.target ?? ""} | ${r.met === undefined ? "" : r.met ? "yes" : "**no**"} |`,
    ),
  ];
  const missed = rows.filter((r) => r.met === false).map((r) => r.scenario.trim());
  if (missed.length) {
    lines.push("", `Missed: ${missed.join("; ")}. What bounds each, measured: bench/README.md, "What bounds the targets still missed".`);
  }
  const md = lines.join("\n") + "\n";
  const dir = new URL("../results/", import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  // A BENCH_ONLY run writes only.{md,json} (not committed): it never replaces the whole run's report.
  const name = process.env.BENCH_ONLY ? "only" : "latest";
  writeFileSync(join(dir, `${name}.md`), md);
  writeFileSync(join(dir, `${name}.json`), JSON.stringify({ machine, runs: RUNS, seconds: SECONDS, warmupSeconds: WARMUP, quick: QUICK, totalSeconds: Math.round(ms / 1000), rows }, null, 2) + "\n");
  console.log(md);
}
