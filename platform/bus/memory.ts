// The in-process Bus (npm start, tests) with the semantics of bus.ts: publish
// is confirmed once the message sits in every bound queue (a synchronous
// accept); topic routing ("*" one word, "#" zero or more); one queue per
// consumer, kept when the consumer stops (durable); a handler that throws is
// retried after spec.backoffMs(attempt) on a timer, up to maxAttempts
// deliveries, then dead-lettered with the reason and the attempt count;
// PoisonMessage is dead-lettered at once. Deliveries of one queue run one at
// a time; a message waiting for its retry does not hold the queue.
// down(true) simulates an outage: publish rejects, nothing is delivered.
import { countDelivery, shouldRetry, UnroutableMessage, type Bus, type BusMessage, type Consumer, type ConsumerSpec, type DeadLetter, type MessageHandler } from "./bus.js";

export interface MemoryBus extends Bus {
  /** Simulate an outage (true) or its end (false). */
  down(isDown: boolean): void;
  /** Dead-lettered messages of a queue, oldest first. */
  deadLetters(queue: string): readonly DeadLetter[];
  /** Resolves once no delivery is running, waiting or scheduled for retry (tests). */
  idle(): Promise<void>;
}

interface Pending {
  message: BusMessage;
  attempt: number;
}

interface Queue {
  spec: ConsumerSpec;
  ready: Pending[];
  handler?: MessageHandler;
  /** The delivery running now. */
  running?: Promise<void>;
  retries: Set<NodeJS.Timeout>;
  dead: DeadLetter[];
}

/** Whether a topic routing key matches a binding pattern ("*" one word, "#" zero or more). */
export function topicMatches(pattern: string, key: string): boolean {
  const p = pattern.split(".");
  const k = key.split(".");
  const match = (i: number, j: number): boolean => {
    if (i === p.length) return j === k.length;
    if (p[i] === "#") return match(i + 1, j) || (j < k.length && match(i, j + 1));
    return j < k.length && (p[i] === "*" || p[i] === k[j]) && match(i + 1, j + 1);
  };
  return match(0, 0);
}

const reasonOf = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

export function memoryBus(): MemoryBus {
  const queues = new Map<string, Queue>();
  let isDown = false;
  let closed = false;
  let waiters: (() => void)[] = [];

  const busy = () => [...queues.values()].some((q) => q.running || q.retries.size > 0 || (q.handler && q.ready.length > 0));
  const settle = () => {
    if (busy() && !isDown) return;
    const w = waiters;
    waiters = [];
    for (const resolve of w) resolve();
  };

  const deadLetter = (q: Queue, p: Pending, reason: string) => {
    q.dead.push({ message: p.message, exchange: q.spec.exchange, reason, attempts: p.attempt, failedAt: new Date().toISOString() });
  };

  /** Deliver the queue's messages one at a time while it has a handler and the bus is up. */
  const pump = (q: Queue) => {
    if (q.running || isDown || closed || !q.handler || q.ready.length === 0) return settle();
    const p = q.ready.shift()!;
    const handler = q.handler;
    q.running = (async () => {
      try {
        await handler({ message: p.message, attempt: p.attempt });
        countDelivery(q.spec.queue, "ok");
      } catch (err) {
        if (!shouldRetry(err, p.attempt, q.spec)) {
          deadLetter(q, p, reasonOf(err));
          countDelivery(q.spec.queue, "dead_lettered");
        } else {
          countDelivery(q.spec.queue, "retried");
          const timer = setTimeout(() => {
            q.retries.delete(timer);
            if (closed) return settle();
            q.ready.push({ message: p.message, attempt: p.attempt + 1 });
            pump(q);
          }, Math.max(0, q.spec.backoffMs(p.attempt)));
          q.retries.add(timer);
        }
      }
    })().finally(() => {
      q.running = undefined;
      pump(q);
    });
  };

  return {
    kind: "memory",
    async publish(exchange, message) {
      if (closed) throw new Error("bus closed");
      if (isDown) throw new Error("bus unavailable");
      const bound = [...queues.values()].filter((q) => q.spec.exchange === exchange && q.spec.bindings.some((b) => topicMatches(b, message.routingKey)));
      if (bound.length === 0) throw new UnroutableMessage(exchange, message.routingKey);
      for (const q of bound) {
        q.ready.push({ message, attempt: 1 });
        setImmediate(() => pump(q));
      }
    },

    async consume(spec, handler): Promise<Consumer> {
      if (closed) throw new Error("bus closed");
      if (isDown) throw new Error("bus unavailable");
      if (!(spec.maxAttempts >= 1)) throw new Error(`consumer ${spec.queue}: maxAttempts must be at least 1`);
      let q = queues.get(spec.queue);
      if (q?.handler) throw new Error(`queue ${spec.queue} already has a consumer`);
      if (!q) queues.set(spec.queue, (q = { spec, ready: [], retries: new Set(), dead: [] }));
      q.spec = spec;
      q.handler = handler;
      const queue = q;
      setImmediate(() => pump(queue));
      return {
        async stop() {
          if (queue.handler === handler) queue.handler = undefined;
          await queue.running;
          settle();
        },
      };
    },

    async healthy() {
      return !isDown && !closed;
    },

    async close() {
      closed = true;
      for (const q of queues.values()) {
        q.handler = undefined;
        for (const t of q.retries) clearTimeout(t);
        q.retries.clear();
      }
      await Promise.all([...queues.values()].map((q) => q.running));
      settle();
    },

    down(value) {
      isDown = value;
      if (!value) for (const q of queues.values()) pump(q);
      settle();
    },

    deadLetters(queue) {
      return [...(queues.get(queue)?.dead ?? [])];
    },

    idle() {
      if (!busy() || isDown) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}
