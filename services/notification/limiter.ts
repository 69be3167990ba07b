// At most `max` messages handled at once by this process's consumers. A
// message holds one database connection while it is handled (its transaction
// stays open during the send), and the bus hands a consumer up to its prefetch
// (16 on RabbitMQ) at once: without a bound two queues could take every pooled
// connection and starve the RPCs. The others wait here, in arrival order
// (already delivered to us: their number is bounded by the prefetch).
export function concurrencyLimit(max: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    running--;
    waiting.shift()?.();
  };
  return async (task) => {
    if (running >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await task();
    } finally {
      release();
    }
  };
}

/**
 * Tasks of one key run one after another, in arrival order; tasks of different
 * keys side by side. The consumers key by aggregate (the user, the order): the
 * events of one aggregate arrive in the order they happened (the relay
 * publishes them so), and are handled in that order too, so a user's mails are
 * logged in the order of their events (the welcome before the verification).
 */
export function serialByKey(): <T>(key: string | undefined, task: () => Promise<T>) => Promise<T> {
  const tails = new Map<string, Promise<void>>();
  return (key, task) => {
    if (!key) return task();
    const run = (tails.get(key) ?? Promise.resolve()).then(task);
    const tail = run.then(
      () => {},
      () => {},
    );
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return run;
  };
}
