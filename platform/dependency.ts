// A fail-fast circuit for a storage dependency (Postgres, Redis). While the
// dependency is known to be down, callers get DependencyUnavailableError at
// once (UNAVAILABLE / 503 with Retry-After) instead of queueing behind a dead
// pool or a reconnecting client; after `openMs` one call is let through as a
// probe (the others still fail fast), and its success closes the circuit, so
// the service recovers by itself when the dependency returns.
//
//   const circuit = new DependencyCircuit({ dependency: "postgres", openMs: 1000 });
//   const client = await circuit.run(() => pool.connect(), (err) => dbUnavailableReason(err));
//
// `isOutage` says which failures open the circuit (a refused or timed-out
// connection), with a short reason; other errors pass through untouched.
import type { Interceptor } from "@connectrpc/connect";
import { DependencyUnavailableError, type Dependency } from "./errors.js";
import { policyOfCall, type PolicyTable } from "./policy.js";

export interface DependencyCircuitOptions {
  dependency: Dependency;
  /** How long the circuit stays open before one probe call is let through. */
  openMs: number;
  /** Notified when the dependency is found down (with the reason) or back up. */
  onChange?: (up: boolean, reason?: string) => void;
  now?: () => number;
}

export class DependencyCircuit {
  private openedAt: number | undefined;
  private probing = false;
  private lastReason = "";
  private readonly now: () => number;

  constructor(private readonly opts: DependencyCircuitOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** False while the circuit is open (the dependency failed recently and has not answered since). */
  get up(): boolean {
    return this.openedAt === undefined;
  }

  /** The last failure's reason while down. */
  get reason(): string | undefined {
    return this.up ? undefined : this.lastReason;
  }

  /** Fail fast when open; otherwise run fn, opening the circuit on an outage and closing it on success. */
  async run<T>(fn: () => Promise<T>, isOutage: (err: unknown) => string | undefined): Promise<T> {
    let probe = false;
    if (this.openedAt !== undefined) {
      const left = this.openedAt + this.opts.openMs - this.now();
      if (left > 0 || this.probing) {
        throw new DependencyUnavailableError(this.opts.dependency, `circuit open after: ${this.lastReason}`, {
          circuitOpen: true,
          retryAfterSeconds: Math.max(left, this.opts.openMs) / 1000,
        });
      }
      probe = this.probing = true;
    }
    try {
      const out = await fn();
      this.succeeded();
      return out;
    } catch (err) {
      const reason = isOutage(err);
      if (reason === undefined) {
        // The dependency answered (with an error of the request): it is up.
        this.succeeded();
        throw err;
      }
      this.failed(reason);
      throw err instanceof DependencyUnavailableError
        ? err
        : new DependencyUnavailableError(this.opts.dependency, reason, { cause: err, retryAfterSeconds: this.opts.openMs / 1000 });
    } finally {
      if (probe) this.probing = false;
    }
  }

  /** Record a failure seen outside run (e.g. the client reports a lost connection). */
  failed(reason: string): void {
    this.lastReason = reason;
    const wasUp = this.up;
    this.openedAt = this.now();
    if (wasUp) this.opts.onChange?.(false, reason);
  }

  /** Record an answer from the dependency. */
  succeeded(): void {
    if (this.up) return;
    this.openedAt = undefined;
    this.opts.onChange?.(true);
  }
}

/**
 * Server interceptor: while Postgres is known down (its circuit open), an RPC
 * of the product (one with a policy; health and reflection pass) is answered
 * UNAVAILABLE at once, before its handler does work that cannot be kept (a
 * password hash before the insert, calls to other services). The circuit's
 * probes (platform/telemetry/health.ts, every HEALTH_PROBE_INTERVAL_MS) close
 * it when Postgres is back. Put it after errorInterceptor.
 */
export function dependencyGate(db: { available?: () => boolean }, policies: PolicyTable): Interceptor {
  return (next) => async (req) => {
    if (db.available && !db.available() && policyOfCall(policies, req)) {
      throw new DependencyUnavailableError("postgres", "circuit open", { circuitOpen: true });
    }
    return next(req);
  };
}
