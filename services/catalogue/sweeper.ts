// Background job: release pending reservations past reserved_until (the
// order never came to hold them). Every instance may run it; each order is
// released in its own transaction under the order's advisory lock, taken
// without waiting, and only while still pending and expired
// (reservations.ts), so concurrent sweeps release every order once.
import type { Logger } from "../../platform/logger.js";
import type { ReservationStore } from "./reservations.js";

export interface SweeperOptions {
  store: ReservationStore;
  log: Logger;
  /** Pause between sweeps; 0 disables the job. */
  intervalMs: number;
}

export interface Sweeper {
  start(): void;
  /** Stop scheduling and wait for a sweep in progress. */
  stop(): Promise<void>;
  /** One sweep now; the order ids released. */
  sweep(): Promise<string[]>;
}

export function createSweeper(opts: SweeperOptions): Sweeper {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const sweep = async () => {
    const ids = await opts.store.releaseExpired();
    if (ids.length) opts.log.info("released expired reservations", { count: ids.length });
    return ids;
  };
  const schedule = () => {
    if (stopped || opts.intervalMs <= 0) return;
    // Jitter spreads instances started together.
    const delay = opts.intervalMs * (0.8 + Math.random() * 0.4);
    timer = setTimeout(() => {
      running = sweep()
        .catch((err) => opts.log.error("reservation sweep failed", { err }))
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
