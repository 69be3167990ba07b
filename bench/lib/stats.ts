// Small statistics helpers for benchmark runs.
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function median(xs: number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 50);
}

/** (max - min) / median, as a percentage. */
export function spreadPct(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = median(xs);
  return m === 0 ? 0 : ((Math.max(...xs) - Math.min(...xs)) / m) * 100;
}

export interface RunResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

/** Median of each field over several runs, plus the spread of the throughput. */
export function summarise(runs: RunResult[]): RunResult & { runs: number; spreadPct: number } {
  return {
    rps: median(runs.map((r) => r.rps)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    errors: runs.reduce((a, r) => a + r.errors, 0),
    runs: runs.length,
    spreadPct: spreadPct(runs.map((r) => r.rps)),
  };
}
