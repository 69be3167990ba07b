// Password hashing with bcrypt behind a bounded gate: at most `concurrency`
// computations at once (about the core count; more only queue inside libuv)
// and at most `queue` waiting. A full queue answers RESOURCE_EXHAUSTED at once
// instead of letting latency grow without bound under a login flood.
import bcrypt from "bcrypt";
import { resourceExhausted } from "../../platform/errors.js";

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
    return this.gate(() => bcrypt.hash(pw, this.opts.cost));
  }

  /** Constant-time comparison inside bcrypt; false for a malformed hash. */
  verify(pw: string, hash: string): Promise<boolean> {
    return this.gate(() => bcrypt.compare(pw, hash).catch(() => false));
  }

  /**
   * Spend one compare against a hash of the configured cost, so an unknown
   * email costs as much as a wrong password.
   */
  async verifyDummy(pw: string): Promise<void> {
    this.dummy ??= bcrypt.hash(`dummy-${Math.random()}`, this.opts.cost);
    await this.verify(pw, await this.dummy);
  }

  /** Warm the dummy hash at start so the first unknown-email login is not faster or slower. */
  async warm(): Promise<void> {
    this.dummy ??= bcrypt.hash(`dummy-${Math.random()}`, this.opts.cost);
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
