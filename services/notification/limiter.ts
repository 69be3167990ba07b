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
