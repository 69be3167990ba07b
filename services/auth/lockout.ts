// Brute-force throttling (docs/auth-policy.md), counters in the shared KV
// store (Redis) so every instance sees them. Nobody can lock an owner out:
//  - per (account, client address): from the threshold-th failure on, that
//    address waits base * 2^(n - threshold) (capped) before its next try for
//    that account; a success from the address forgets its failures;
//  - per client address, across accounts: the same growing wait once an
//    address has failed too often in its window (password spraying);
//  - per account, from every address (soft): past a number of failures in the
//    window every login for the account waits a short fixed delay before the
//    password is checked; nothing is refused.
// Accounts are keyed by a hash of the normalised email, so unknown emails
// behave exactly like known ones. Atomic under concurrency without scripts:
// INCR hands every failure its own number n, and the time of failure n is
// written under a key of its own, so a throttle is always derived from the
// latest failure. Every key has a TTL: nothing is permanent.
//
// A failure that starts a per-(account, address) wait "locks" the account from
// that address (AccountLocked, once per lock): the first such failure claims a
// marker for the length of the wait (SET NX), so a concurrent failure that
// also started (or lengthened) the wait does not tell it again, and failures
// refused while it lasts are never counted at all.
import { createHash } from "node:crypto";
import type { KeyValueStore } from "../../platform/kv.js";
import type { Clock } from "./clock.js";
import type { AuthConfig } from "./config.js";

/** What a throttle applies to: one account from one address, or one address for every account. */
export type ThrottleScope = "account_address" | "address";

export interface ThrottleStatus {
  throttled: boolean;
  /** Remaining wait in ms when throttled. */
  retryAfterMs: number;
  failures: number;
}

export interface Refusal {
  scope: ThrottleScope;
  retryAfterMs: number;
}

/** A failure recorded: the throttles it started (waitMs 0 when none) and whether the account is now slowed. */
export interface FailureOutcome {
  started: Array<{ scope: ThrottleScope; failures: number; waitMs: number }>;
  accountFailures: number;
  /** True for the failure that reached the per-account soft limit (once per window). */
  slowedNow: boolean;
  /** Set when this failure locked the account from its address, and was the first to lock it: the lock to announce. */
  locked?: { failures: number; waitMs: number };
}

const h = (s: string) => createHash("sha256").update(s, "utf8").digest("hex").slice(0, 40);

interface Rule {
  threshold: number;
  baseSeconds: number;
  maxSeconds: number;
  windowSeconds: number;
}

/** One growing-wait counter (the algorithm above) under a key prefix. */
class Throttle {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly clock: Clock,
    private readonly prefix: string,
    private readonly rule: Rule,
  ) {}

  private count = (id: string) => `${this.prefix}:n:${id}`;
  private at = (id: string, n: number) => `${this.prefix}:at:${id}:${n}`;

  /** Wait (ms) imposed by the n-th failure; 0 below the threshold. */
  waitMs(n: number): number {
    if (n < this.rule.threshold) return 0;
    const exp = Math.min(n - this.rule.threshold, 30);
    return Math.min(this.rule.baseSeconds * 2 ** exp, this.rule.maxSeconds) * 1000;
  }

  async status(id: string): Promise<ThrottleStatus> {
    const n = Number((await this.kv.get(this.count(id))) ?? 0);
    if (n < this.rule.threshold) return { throttled: false, retryAfterMs: 0, failures: n };
    const at = await this.kv.get(this.at(id, n));
    // Missing: the failure that set n is still being recorded, or its wait expired.
    if (at === null) return { throttled: false, retryAfterMs: 0, failures: n };
    const left = Number(at) + this.waitMs(n) - this.clock.now();
    return left > 0 ? { throttled: true, retryAfterMs: left, failures: n } : { throttled: false, retryAfterMs: 0, failures: n };
  }

  async fail(id: string): Promise<{ failures: number; waitMs: number }> {
    const n = await this.kv.incr(this.count(id), 1, this.rule.windowSeconds * 1000);
    const waitMs = this.waitMs(n);
    if (waitMs > 0) await this.kv.set(this.at(id, n), String(this.clock.now()), waitMs + 60_000);
    return { failures: n, waitMs };
  }

  async reset(id: string): Promise<void> {
    const n = Number((await this.kv.get(this.count(id))) ?? 0);
    const keys = [this.count(id)];
    // Older failure times expire on their own within maxSeconds.
    for (let i = Math.max(this.rule.threshold, n - 63); i <= n; i++) keys.push(this.at(id, i));
    await this.kv.del(...keys);
  }
}

export class Lockout {
  private readonly pair: Throttle;
  private readonly address: Throttle;
  private readonly accountKey = (email: string) => `auth:login:acct:${h(email)}`;

  constructor(
    private readonly kv: KeyValueStore,
    private readonly cfg: AuthConfig,
    private readonly clock: Clock,
  ) {
    this.pair = new Throttle(kv, clock, "auth:login:pair", {
      threshold: cfg.lockoutThreshold,
      baseSeconds: cfg.lockoutBaseSeconds,
      maxSeconds: cfg.lockoutMaxSeconds,
      windowSeconds: cfg.lockoutWindowSeconds,
    });
    this.address = new Throttle(kv, clock, "auth:login:ip", {
      threshold: cfg.ipMaxFailures,
      baseSeconds: cfg.ipBaseSeconds,
      maxSeconds: cfg.ipMaxSeconds,
      windowSeconds: cfg.ipWindowSeconds,
    });
  }

  private pairId = (email: string, ip: string) => h(`${email}\n${ip}`);

  /** Wait (ms) the n-th failure of one account from one address imposes. */
  pairWaitMs(n: number): number {
    return this.pair.waitMs(n);
  }

  pairStatus(email: string, ip: string): Promise<ThrottleStatus> {
    return this.pair.status(this.pairId(email, ip));
  }

  addressStatus(ip: string): Promise<ThrottleStatus> {
    return this.address.status(ip);
  }

  /** The refusal that applies to this attempt (address first), or undefined. */
  async check(email: string, ip: string): Promise<Refusal | undefined> {
    const [addr, pair] = await Promise.all([this.address.status(ip), this.pair.status(this.pairId(email, ip))]);
    if (addr.throttled) return { scope: "address", retryAfterMs: addr.retryAfterMs };
    if (pair.throttled) return { scope: "account_address", retryAfterMs: pair.retryAfterMs };
    return undefined;
  }

  /** Delay (ms) every login for this account waits before its password check: the soft limit. */
  async softDelayMs(email: string): Promise<number> {
    if (this.cfg.accountSoftDelayMs === 0) return 0;
    const n = Number((await this.kv.get(this.accountKey(email))) ?? 0);
    return n >= this.cfg.accountSoftLimit ? this.cfg.accountSoftDelayMs : 0;
  }

  /** Count a failed password for `email` from `ip` under all three rules. */
  async recordFailure(email: string, ip: string): Promise<FailureOutcome> {
    const [pair, address, accountFailures] = await Promise.all([
      this.pair.fail(this.pairId(email, ip)),
      this.address.fail(ip),
      this.kv.incr(this.accountKey(email), 1, this.cfg.lockoutWindowSeconds * 1000),
    ]);
    const started: FailureOutcome["started"] = [];
    if (pair.waitMs > 0) started.push({ scope: "account_address", ...pair });
    if (address.waitMs > 0) started.push({ scope: "address", ...address });
    const locked = pair.waitMs > 0 && (await this.firstOfLock(this.pairId(email, ip), pair.waitMs)) ? pair : undefined;
    return { started, accountFailures, slowedNow: this.cfg.accountSoftDelayMs > 0 && accountFailures === this.cfg.accountSoftLimit, locked };
  }

  /** Claim the lock marker of (account, address) for `waitMs`; false when a lock of it is already announced. */
  private async firstOfLock(pairId: string, waitMs: number): Promise<boolean> {
    const key = `auth:login:locked:${pairId}`;
    const until = this.clock.now() + waitMs;
    if (await this.kv.setNx(key, String(until), waitMs)) return true;
    // Still there after its lock ended by the service's clock (only when a test moved the clock): a new lock.
    if (Number(await this.kv.get(key)) > this.clock.now()) return false;
    await this.kv.set(key, String(until), waitMs);
    return true;
  }

  /** A successful login from `ip` forgets that address's failures for the account (not the address's own count). */
  reset(email: string, ip: string): Promise<void> {
    return this.pair.reset(this.pairId(email, ip));
  }
}
