// Password hashing with bcrypt behind a bounded gate: at most `concurrency`
// computations at once (about the core count; more only queue) and at most
// `queue` waiting. A full queue answers RESOURCE_EXHAUSTED at once instead of
// letting latency grow without bound under a login flood.
//
// The hashes run on worker threads at the lowest CPU priority (nice 19; on
// Linux the nice value is per thread), not on libuv's pool at the event
// loop's priority: a login storm then takes only the CPU the event loop
// leaves, so other requests keep their latency (bench/: read p99 during a
// storm on the same core), while bcrypt still gets all idle CPU.
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import bcrypt from "bcrypt";
import { resourceExhausted } from "../../platform/errors.js";

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
try { require("node:os").setPriority(19); } catch {}
const bcrypt = require(workerData.bcrypt);
parentPort.on("message", (m) => {
  let result, error;
  try {
    result = m.op === "hash" ? bcrypt.hashSync(m.pw, m.cost) : bcrypt.compareSync(m.pw, m.hash);
  } catch (e) {
    error = String(e && e.message || e);
  }
  parentPort.postMessage({ id: m.id, result, error });
});`;

type Job = { op: "hash"; pw: string; cost: number } | { op: "compare"; pw: string; hash: string };

/** Low-priority bcrypt threads shared by every hasher of the process, started on first use. */
class BcryptThreads {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly waiting: Array<{ job: Job; resolve(v: unknown): void; reject(e: Error): void }> = [];
  private size = 0;
  private broken = false;
  private readonly max = availableParallelism();

  run<T>(job: Job): Promise<T> {
    if (this.broken) return (job.op === "hash" ? bcrypt.hash(job.pw, job.cost) : bcrypt.compare(job.pw, job.hash)) as Promise<T>;
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ job, resolve: resolve as (v: unknown) => void, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.waiting.length) {
      const w = this.idle.pop() ?? (this.size < this.max ? this.spawn() : undefined);
      if (!w) return;
      const { job, resolve, reject } = this.waiting.shift()!;
      this.busy.set(w, { resolve, reject });
      w.ref(); // keep the process alive while a hash is running
      w.postMessage({ id: 0, ...job });
    }
  }

  private spawn(): Worker | undefined {
    let w: Worker;
    try {
      w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { bcrypt: createRequire(import.meta.url).resolve("bcrypt") } });
    } catch {
      this.fallBack();
      return undefined;
    }
    this.size++;
    w.on("message", (m: { result?: unknown; error?: string }) => {
      const job = this.busy.get(w);
      this.busy.delete(w);
      w.unref();
      this.idle.push(w);
      if (job) {
        if (m.error !== undefined) job.reject(new Error(m.error));
        else job.resolve(m.result);
      }
      this.dispatch();
    });
    w.on("error", (err) => {
      const job = this.busy.get(w);
      this.busy.delete(w);
      job?.reject(err);
    });
    w.on("exit", () => {
      this.size--;
      this.busy.get(w)?.reject(new Error("bcrypt worker exited"));
      this.busy.delete(w);
      const i = this.idle.indexOf(w);
      if (i >= 0) this.idle.splice(i, 1);
      this.dispatch();
    });
    w.unref();
    return w;
  }

  /** No worker threads here: the jobs go to bcrypt's async API (libuv's pool). */
  private fallBack(): void {
    this.broken = true;
    for (const { job, resolve, reject } of this.waiting.splice(0)) {
      (job.op === "hash" ? bcrypt.hash(job.pw, job.cost) : bcrypt.compare(job.pw, job.hash)).then(resolve, reject);
    }
  }
}

const threads = new BcryptThreads();

/** bcrypt reads at most 72 bytes; longer passwords are refused, never truncated. */
export const MIN_PASSWORD_BYTES = 8;
export const MAX_PASSWORD_BYTES = 72;

/** Why a password is unacceptable, or undefined when it is fine. */
export function passwordProblem(pw: string): string | undefined {
  const n = Buffer.byteLength(pw, "utf8");
  if (n < MIN_PASSWORD_BYTES) return `must be at least ${MIN_PASSWORD_BYTES} bytes`;
  if (n > MAX_PASSWORD_BYTES) return `must be at most ${MAX_PASSWORD_BYTES} bytes (UTF-8)`;
  return undefined;
}

export interface HasherOptions {
  cost: number;
  concurrency: number;
  /** Waiting jobs allowed beyond the running ones. */
  queue: number;
}

export class PasswordHasher {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private dummy?: Promise<string>;

  constructor(private readonly opts: HasherOptions) {}

  get cost(): number {
    return this.opts.cost;
  }

  /** Counts for metrics and tests. */
  stats() {
    return { running: this.running, waiting: this.waiting.length };
  }

  hash(pw: string): Promise<string> {
    return this.gate(() => threads.run<string>({ op: "hash", pw, cost: this.opts.cost }));
  }

  /** Constant-time comparison inside bcrypt; false for a malformed hash. */
  verify(pw: string, hash: string): Promise<boolean> {
    return this.gate(() => threads.run<boolean>({ op: "compare", pw, hash }).catch(() => false));
  }

  /**
   * Spend one compare against a hash of the configured cost, so an unknown
   * email costs as much as a wrong password.
   */
  async verifyDummy(pw: string): Promise<void> {
    this.dummy ??= threads.run<string>({ op: "hash", pw: `dummy-${Math.random()}`, cost: this.opts.cost });
    await this.verify(pw, await this.dummy);
  }

  /** Warm the dummy hash at start so the first unknown-email login is not faster or slower. */
  async warm(): Promise<void> {
    this.dummy ??= threads.run<string>({ op: "hash", pw: `dummy-${Math.random()}`, cost: this.opts.cost });
    await this.dummy;
  }

  needsRehash(hash: string): boolean {
    try {
      return bcrypt.getRounds(hash) !== this.opts.cost;
    } catch {
      return true;
    }
  }

  private async gate<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.opts.concurrency) {
      if (this.waiting.length >= this.opts.queue) throw resourceExhausted("server busy: too many password checks in progress, retry shortly");
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next waiter (running stays the same) or free it.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
