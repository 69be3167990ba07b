// Brute-force protection, counters in the shared KV store (Redis) so every
// instance sees them:
//  - per account (keyed by a hash of the normalised email, so unknown emails
//    behave exactly like known ones): the n-th consecutive failure, n >=
//    threshold, locks for base * 2^(n - threshold), capped at max; success resets;
//  - per client IP: failures in a fixed window; over the limit, logins from
//    that IP are refused before any password check.
// Atomic under concurrency without scripts: INCR hands every failure its own
// number n, and the time of failure n is written under a key of its own, so
// the lock is always derived from the latest failure (no lost updates). Every
// key has a TTL: nothing is permanent.
import { createHash } from "node:crypto";
import type { KeyValueStore } from "../../platform/kv.js";
import type { Clock } from "./clock.js";
import type { AuthConfig } from "./config.js";

export interface LockStatus {
  locked: boolean;
  /** Until when (epoch ms by the service clock) when locked. */
  until?: number;
  failures: number;
}

const h = (email: string) => createHash("sha256").update(email, "utf8").digest("hex").slice(0, 40);
const failKey = (email: string) => `auth:login:fail:${h(email)}`;
const atKey = (email: string, n: number) => `auth:login:failat:${h(email)}:${n}`;
const ipKey = (ip: string) => `auth:login:ipfail:${ip}`;

export class Lockout {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly cfg: AuthConfig,
    private readonly clock: Clock,
  ) {}

  /** Lock duration (ms) after the n-th consecutive failure; 0 below the threshold. */
  lockMs(n: number): number {
    if (n < this.cfg.lockoutThreshold) return 0;
    const exp = Math.min(n - this.cfg.lockoutThreshold, 30);
    return Math.min(this.cfg.lockoutBaseSeconds * 2 ** exp, this.cfg.lockoutMaxSeconds) * 1000;
  }

  async status(email: string): Promise<LockStatus> {
    const n = Number((await this.kv.get(failKey(email))) ?? 0);
    if (n < this.cfg.lockoutThreshold) return { locked: false, failures: n };
    const at = await this.kv.get(atKey(email, n));
    // Missing: the failure that set n is still being recorded, or its lock expired.
    if (at === null) return { locked: false, failures: n };
    const until = Number(at) + this.lockMs(n);
    return this.clock.now() < until ? { locked: true, until, failures: n } : { locked: false, failures: n };
  }

  /** Count a failure; returns the new count and the lock it starts (0 ms when none). */
  async recordFailure(email: string): Promise<{ failures: number; lockMs: number }> {
    const n = await this.kv.incr(failKey(email), 1, this.cfg.lockoutWindowSeconds * 1000);
    const lockMs = this.lockMs(n);
    if (lockMs > 0) await this.kv.set(atKey(email, n), String(this.clock.now()), lockMs + 60_000);
    return { failures: n, lockMs };
  }

  /** A successful login forgets the failures. */
  async reset(email: string): Promise<void> {
    const n = Number((await this.kv.get(failKey(email))) ?? 0);
    const keys = [failKey(email)];
    // Older failure times expire on their own within lockoutMaxSeconds.
    for (let i = Math.max(this.cfg.lockoutThreshold, n - 63); i <= n; i++) keys.push(atKey(email, i));
    await this.kv.del(...keys);
  }

  async ipBlocked(ip: string): Promise<boolean> {
    return Number((await this.kv.get(ipKey(ip))) ?? 0) >= this.cfg.ipMaxFailures;
  }

  async recordIpFailure(ip: string): Promise<number> {
    return this.kv.incr(ipKey(ip), 1, this.cfg.ipWindowSeconds * 1000);
  }
}
