// Background job: settle pending reservations past reserved_until. The
// catalogue never decides alone that an order does not exist: for each such
// reservation it first asks the order service (SettleReservation, under the
// lock CreateOrder's insert takes for that order id):
//   the order exists     -> keep its units: Hold (PENDING), Commit (CONFIRMED,
//                           SHIPPED) or Release (CANCELLED), through the same
//                           state machine as the order events (exactly once)
//   the order does not   -> the order service marked the id abandoned (it is
//                           never inserted after): release the units
//   no answer            -> nothing: the reservation waits for the next sweep
// Every instance may run it; each move runs in its own transaction under the
// order's advisory lock, taken without waiting, and only from the state it
// needs (reservations.ts), so concurrent sweeps move every order once.
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { OrderStatus, type OrderInternalService } from "../../gen/acme/order/v1/order_pb.js";
import type { Logger } from "../../platform/logger.js";
import type { ReservationStore, Transition } from "./reservations.js";

export interface SweeperOptions {
  store: ReservationStore;
  /** OrderInternalService client, with a bounded deadline (SettleReservation is idempotent). */
  orders: () => Client<typeof OrderInternalService>;
  log: Logger;
  /** Pause between sweeps; 0 disables the job. */
  intervalMs: number;
  /** Order ids read per query (default 200). */
  batchSize?: number;
}

export interface Sweeper {
  start(): void;
  /** Stop scheduling and wait for a sweep in progress. */
  stop(): Promise<void>;
  /** One sweep now; the order ids whose units it released. */
  sweep(): Promise<string[]>;
}

/** What an existing order's status asks of its expired pending reservation. */
export function moveForStatus(status: OrderStatus): Exclude<Transition, "expire"> {
  switch (status) {
    case OrderStatus.CANCELLED:
      return "release";
    case OrderStatus.CONFIRMED:
    case OrderStatus.SHIPPED:
      return "commit";
    default:
      return "hold";
  }
}

/** The order service cannot answer now: no point asking about the other reservations in this sweep. */
const unreachable = (code: Code) => code === Code.Unavailable || code === Code.DeadlineExceeded || code === Code.Unknown;

export function createSweeper(opts: SweeperOptions): Sweeper {
  const { store, log } = opts;
  const batchSize = opts.batchSize ?? 200;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;

  const sweep = async () => {
    const released: string[] = [];
    let kept = 0;
    let after: string | undefined;
    for (;;) {
      const due = await store.dueOrders(after, batchSize);
      for (const orderId of due) {
        let answer;
        try {
          answer = await opts.orders().settleReservation({ orderId });
        } catch (err) {
          const ce = ConnectError.from(err);
          // Never released without the order service's answer: it waits for the next sweep.
          log.warn("expired reservation kept: the order service did not settle it", { orderId, code: Code[ce.code], message: ce.rawMessage });
          if (unreachable(ce.code)) return released;
          continue;
        }
        if (!answer.orderExists) {
          const r = await store.transition(orderId, "expire", { tryOnly: true });
          if (r.outcome === "changed") released.push(orderId);
          continue;
        }
        // The order exists: its units stay with it, whatever reserved_until says.
        const move = moveForStatus(answer.status);
        const r = await store.transition(orderId, move, { tryOnly: true, orderExists: true });
        if (r.outcome === "changed") {
          if (move === "release") released.push(orderId);
          else kept++;
          log.warn("expired reservation of an existing order settled by the sweeper (its Hold and order events were late)", { orderId, move });
        } else if (r.outcome === "refused") {
          log.error("expired reservation of an existing order cannot follow it", { orderId, move, state: r.state });
        }
      }
      if (due.length < batchSize) break;
      after = due[due.length - 1];
    }
    if (released.length || kept) log.info("settled expired reservations", { released: released.length, kept });
    return released;
  };

  const schedule = () => {
    if (stopped || opts.intervalMs <= 0) return;
    // Jitter spreads instances started together.
    const delay = opts.intervalMs * (0.8 + Math.random() * 0.4);
    timer = setTimeout(() => {
      running = sweep()
        .catch((err) => log.error("reservation sweep failed", { err }))
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
