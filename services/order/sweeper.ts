// Background job: cancel orders left PENDING longer than the configured age.
// Every instance may run it; the store's batch UPDATE with SKIP LOCKED makes
// concurrent sweeps take disjoint rows, and a row is cancelled only while
// still PENDING.
import type { Logger } from "../../platform/logger.js";
import type { OrderStore } from "./store.js";

export interface SweeperOptions {
  store: OrderStore;
  log: Logger;
  /** Orders PENDING for longer than this are cancelled. */
  ttlSeconds: number;
  /** Pause between sweeps; 0 disables the job. */
  intervalMs: number;
}

export interface Sweeper {
  start(): void;
  /** Stop scheduling and wait for a sweep in progress. */
  stop(): Promise<void>;
  /** One sweep now; the ids cancelled. */
  sweep(): Promise<string[]>;
}

export function createSweeper(opts: SweeperOptions): Sweeper {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const sweep = async () => {
    const ids = await opts.store.cancelExpiredPending(opts.ttlSeconds);
    if (ids.length) opts.log.info("cancelled expired pending orders", { count: ids.length });
    return ids;
  };
  const schedule = () => {
    if (stopped || opts.intervalMs <= 0) return;
    // Jitter spreads instances started together.
    const delay = opts.intervalMs * (0.8 + Math.random() * 0.4);
    timer = setTimeout(() => {
      running = sweep()
        .catch((err) => opts.log.error("pending-order sweep failed", { err }))
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, delay);
    timer.unref();
  };
  return {
    start: () => {
      stopped = false;
      schedule();
    },
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
    sweep,
  };
}
