// Client-side resilience for service-to-service calls, as connect client
// interceptors: a circuit breaker (fail fast with UNAVAILABLE while a
// dependency is down, probe it again after a pause) and a bounded retry of
// UNAVAILABLE for unary calls. Put the breaker first (outermost) so one
// logical call, retries included, counts once:
//
//   const breaker = new CircuitBreaker({ name: "user service" });
//   serviceClient(UserInternalService, {
//     baseUrl, tokens, timeoutMs: 1000,
//     interceptors: [breaker.interceptor(), retryInterceptor({ attempts: 3 })],
//   });
//
// Retries stay inside the call's deadline (the transport's signal covers them
// all). Only retry idempotent methods: UNAVAILABLE may come after the server
// has acted.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

export type BreakerState = "closed" | "open" | "half-open";

export interface BreakerOptions {
  /** Used in the error message: "<name> unavailable (circuit open)". */
  name: string;
  /** Consecutive failed calls that open the circuit (default 5). */
  failureThreshold?: number;
  /** How long the circuit stays open before one probe call is let through (default 5000 ms). */
  resetTimeoutMs?: number;
  /** Which errors count as the dependency failing (default UNAVAILABLE, DEADLINE_EXCEEDED). */
  isFailure?: (err: ConnectError) => boolean;
  /** Notified on every state change (logs, metrics). */
  onStateChange?: (state: BreakerState, previous: BreakerState) => void;
  now?: () => number;
}

const circuitOpen = Symbol("circuit open");

/**
 * Did this error come from an open circuit (the dependency was not called)?
 * (A marker, not a subclass: ConnectError's instanceof matches any ConnectError.)
 */
export function isCircuitOpen(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as Record<symbol, unknown>)[circuitOpen] === true;
}

const defaultIsFailure = (err: ConnectError) => err.code === Code.Unavailable || err.code === Code.DeadlineExceeded;

export class CircuitBreaker {
  private current: BreakerState = "closed";
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private readonly threshold: number;
  private readonly resetMs: number;
  private readonly isFailure: (err: ConnectError) => boolean;
  private readonly now: () => number;

  constructor(private readonly opts: BreakerOptions) {
    this.threshold = Math.max(1, opts.failureThreshold ?? 5);
    this.resetMs = Math.max(0, opts.resetTimeoutMs ?? 5000);
    this.isFailure = opts.isFailure ?? defaultIsFailure;
    this.now = opts.now ?? Date.now;
  }

  /** The state as of now (an open circuit past its pause reports half-open). */
  get state(): BreakerState {
    if (this.current === "open" && this.now() - this.openedAt >= this.resetMs) return "half-open";
    return this.current;
  }

  private set(next: BreakerState) {
    if (next === "closed") this.failures = 0;
    const prev = this.current;
    if (prev === next) return;
    this.current = next;
    if (next === "open") this.openedAt = this.now();
    this.opts.onStateChange?.(next, prev);
  }

  /** What an open circuit throws: UNAVAILABLE, without calling the dependency. */
  private rejectFast(): ConnectError {
    const err = new ConnectError(`${this.opts.name} unavailable (circuit open)`, Code.Unavailable);
    Object.defineProperty(err, circuitOpen, { value: true });
    return err;
  }

  /** Run one call through the breaker. */
  async run<T>(call: () => Promise<T>): Promise<T> {
    let probe = false;
    if (this.current === "open") {
      if (this.now() - this.openedAt < this.resetMs) throw this.rejectFast();
      this.set("half-open");
    }
    if (this.current === "half-open") {
      // Exactly one probe at a time; everyone else fails fast until it settles.
      if (this.probing) throw this.rejectFast();
      this.probing = probe = true;
    }
    try {
      const result = await call();
      this.set("closed");
      return result;
    } catch (err) {
      const ce = ConnectError.from(err);
      if (this.isFailure(ce)) {
        this.failures++;
        if (this.current === "half-open" || this.failures >= this.threshold) {
          this.set("open");
        }
      } else if (ce.code !== Code.Canceled) {
        // The dependency answered (NOT_FOUND, INVALID_ARGUMENT...): it is up.
        this.set("closed");
      }
      throw err;
    } finally {
      if (probe) this.probing = false;
    }
  }

  interceptor(): Interceptor {
    return (next) => (req) => this.run(() => next(req));
  }
}

export interface RetryOptions {
  /** Total attempts including the first (default 3). */
  attempts?: number;
  /** First backoff; doubles per attempt, with jitter in [50%, 100%] (default 50 ms). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Codes worth retrying (default UNAVAILABLE only). */
  retryOn?: readonly Code[];
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Bounded retry with exponential backoff for unary calls; streams pass through untouched. */
export function retryInterceptor(opts: RetryOptions = {}): Interceptor {
  const attempts = Math.max(1, opts.attempts ?? 3);
  const base = opts.baseDelayMs ?? 50;
  const max = opts.maxDelayMs ?? 1000;
  const retryOn = opts.retryOn ?? [Code.Unavailable];
  return (next) => async (req) => {
    if (req.stream) return next(req);
    for (let i = 1; ; i++) {
      try {
        return await next(req);
      } catch (err) {
        const code = ConnectError.from(err).code;
        if (i >= attempts || !retryOn.includes(code) || req.signal.aborted) throw err;
        const delay = Math.min(max, base * 2 ** (i - 1));
        await sleep(delay * (0.5 + Math.random() / 2), req.signal);
        if (req.signal.aborted) throw err;
      }
    }
  };
}
