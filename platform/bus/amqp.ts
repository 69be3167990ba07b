// The Bus (platform/bus/bus.ts) on RabbitMQ, over amqplib: one connection, a confirm
// channel for publishing, a channel per consumer. Reconnects with backoff when the
// broker goes away; meanwhile publish rejects (after at most publishTimeoutMs) and
// the consumers resume once it is back. Topology, declared by consume():
//   exchange (topic, durable) --bindings--> <queue>          the consumer's queue
//   <queue>.retry.<n>  (n = 1 .. maxAttempts-1) each message waits its own `expiration`
//                      = backoffMs(n), then is dead-lettered back to <queue> through the
//                      default exchange. One queue per retry number, so a long wait at the
//                      head never holds back a short one (RabbitMQ expires only at the head).
//   <queue>.dlq        failed messages, with x-failure-reason, x-attempts, x-failed-at.
// A failed message is republished (confirmed) to its retry queue or the DLQ before the
// original is acked, so it is never lost (at worst delivered twice).
import { connect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from "amqplib";
import type { Logger } from "../logger.js";
import { confirmPublish, deadLetterQueue, HEADER, headerString, publishOptions, retryQueue, toBusMessage, withTimeout } from "./amqp-message.js";
import { backoffWithJitter, countDelivery, PoisonMessage, shouldRetry, type Bus, type Consumer, type ConsumerSpec, type MessageHandler } from "./bus.js";

const REASON_MAX = 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Ack or nack, ignoring a channel that is gone (the broker redelivers what it had sent on it). */
const quietly = (f: () => void) => void Promise.resolve().then(f).catch(() => {});


export interface AmqpBusOptions {
  /** Publish (connection wait included) rejects after this long. Default 5000. */
  publishTimeoutMs?: number;
  /** Unacked messages per consumer. Default 16. */
  prefetch?: number;
  /** Reconnect delays: exponential with jitter between these. Default 200 .. 5000 ms. */
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  /** consume() waits this long for a connection. Default 30000. */
  connectTimeoutMs?: number;
  log?: Logger;
}

/** The connection, its publishing channel and the exchanges declared on it. */
type Live = { conn: ChannelModel; pub?: Promise<ConfirmChannel>; exchanges: Set<string> };
/** A consumer, its channel and consumer tag while it consumes, the handlers running. */
type Active = { spec: ConsumerSpec; handler: MessageHandler; ch?: Channel; tag?: string; inFlight: Set<Promise<void>> };

/** A Bus on the RabbitMQ at url (amqp://user:pass@host:port/vhost); connects in the background. */
export function amqpBus(url: string, opts: AmqpBusOptions = {}): Bus {
  const publishTimeoutMs = opts.publishTimeoutMs ?? 5000;
  const reconnectDelay = backoffWithJitter(opts.reconnectBaseMs ?? 200, opts.reconnectMaxMs ?? 5000);
  const log = opts.log;
  const consumers = new Set<Active>();
  let live: Live | undefined;
  let closed = false;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let waiters: Array<() => void> = [];

  /** The live connection, waiting up to ms for one; undefined when none came. */
  const connection = async (ms: number): Promise<Live | undefined> => {
    if (live || closed) return live;
    let wake = () => {};
    const woken = new Promise<void>((r) => (wake = r));
    waiters.push(wake);
    const t = setTimeout(wake, ms);
    await woken;
    clearTimeout(t);
    waiters = waiters.filter((w) => w !== wake);
    return live;
  };

  const open = async () => {
    timer = undefined;
    let conn: ChannelModel;
    try {
      conn = await connect(url, { timeout: Math.min(publishTimeoutMs, 10_000) });
    } catch (err) {
      log?.warn("bus: cannot connect to the broker", { err, attempt: failures + 1 });
      if (!closed) timer = setTimeout(open, reconnectDelay(++failures));
      return;
    }
    if (closed) return void conn.close().catch(() => {});
    const l: Live = { conn, exchanges: new Set() };
    conn.on("error", (err) => log?.warn("bus: connection error", { err }));
    conn.on("close", () => {
      if (live !== l) return;
      live = undefined;
      for (const c of consumers) c.ch = undefined;
      if (closed) return;
      log?.warn("bus: connection to the broker lost; reconnecting");
      timer = setTimeout(open, reconnectDelay(++failures));
    });
    live = l;
    failures = 0;
    for (const w of waiters) w();
    for (const c of consumers) resume(c, l, 0);
  };

  /** Start consumer c again on connection l (after a reconnect, or its channel closed by the broker), until it is. */
  const resume = (c: Active, l: Live, delayMs: number) =>
    setTimeout(() => {
      if (!consumers.has(c) || live !== l || c.ch) return;
      start(c).catch((err) => {
        log?.error("bus: cannot resume a consumer; trying again", { err, queue: c.spec.queue });
        resume(c, l, 1000);
      });
    }, delayMs);

  /** The publishing channel of connection l (made again when the broker closed it). */
  const publisher = (l: Live): Promise<ConfirmChannel> => {
    if (l.pub) return l.pub;
    const p = l.conn.createConfirmChannel().then((ch) => {
      ch.on("error", (err) => log?.warn("bus: publish channel error", { err }));
      ch.on("close", () => {
        if (l.pub === p) l.pub = undefined;
        l.exchanges.clear();
      });
      return ch;
    });
    p.catch(() => l.pub === p && (l.pub = undefined));
    return (l.pub = p);
  };

  /** Publish, confirmed, within publishTimeoutMs; exchange "" is the default one (key = a queue). */
  const send = async (exchange: string, key: string, body: Uint8Array, options: Options.Publish): Promise<void> => {
    const until = Date.now() + publishTimeoutMs;
    const left = () => Math.max(1, until - Date.now());
    const l = await connection(publishTimeoutMs);
    if (!l) throw new Error(closed ? "bus: closed" : "bus: not connected to the broker");
    const ch = await withTimeout(publisher(l), left(), "opening the publish channel");
    if (exchange && !l.exchanges.has(exchange)) {
      await withTimeout(ch.assertExchange(exchange, "topic", { durable: true }), left(), "declaring the exchange");
      l.exchanges.add(exchange);
    }
    await confirmPublish(ch, exchange, key, body, options, left());
  };

  const handle = async (c: Active, ch: Channel, msg: ConsumeMessage) => {
    const spec = c.spec;
    const attempt = Math.max(1, Number(msg.properties.headers?.[HEADER.attempt] ?? 1) || 1);
    const message = toBusMessage(msg);
    try {
      await c.handler({ message, attempt });
      countDelivery(spec.queue, "ok");
      return quietly(() => ch.ack(msg));
    } catch (err) {
      const poison = err instanceof PoisonMessage;
      const exchange = msg.fields.exchange || headerString(msg.properties.headers?.[HEADER.exchange] ?? "");
      const keep = { [HEADER.routingKey]: message.routingKey, [HEADER.exchange]: exchange };
      try {
        if (shouldRetry(err, attempt, spec)) {
          const delay = Math.max(0, Math.round(spec.backoffMs(attempt)));
          const options = { ...publishOptions(message, { ...keep, [HEADER.attempt]: attempt + 1 }), expiration: String(delay) };
          await send("", retryQueue(spec.queue, attempt), message.body, options);
          log?.warn("bus: handler failed; retrying", { queue: spec.queue, id: message.id, attempt, delayMs: delay, err });
          countDelivery(spec.queue, "retried");
        } else {
          const reason = (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, REASON_MAX);
          const failure = { ...keep, [HEADER.reason]: reason, [HEADER.attempts]: attempt, [HEADER.failedAt]: new Date().toISOString() };
          await send("", deadLetterQueue(spec.queue), message.body, publishOptions(message, failure));
          log?.error("bus: message dead-lettered", { queue: spec.queue, id: message.id, attempt, poison, err });
          countDelivery(spec.queue, "dead_lettered");
        }
        quietly(() => ch.ack(msg));
      } catch (sendErr) {
        // Not moved: give it back to the queue (after a pause, not to spin while the broker is away).
        log?.warn("bus: cannot move a failed message; requeueing it", { queue: spec.queue, id: message.id, err: sendErr });
        await sleep(500);
        quietly(() => ch.nack(msg, false, true));
      }
    }
  };

  /** Declare the consumer's topology on the live connection and consume. */
  const start = async (c: Active) => {
    const l = live;
    if (!l) throw new Error("bus: not connected to the broker");
    const { queue, exchange, bindings, maxAttempts } = c.spec;
    const ch = await l.conn.createChannel();
    try {
      await ch.assertExchange(exchange, "topic", { durable: true });
      await ch.assertQueue(queue, { durable: true });
      for (const pattern of bindings) await ch.bindQueue(queue, exchange, pattern);
      const backToQueue = { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue };
      for (let n = 1; n < maxAttempts; n++) await ch.assertQueue(retryQueue(queue, n), { durable: true, arguments: backToQueue });
      await ch.assertQueue(deadLetterQueue(queue), { durable: true });
      await ch.prefetch(opts.prefetch ?? 16);
      ch.on("error", (err) => log?.warn("bus: consumer channel error", { err, queue }));
      ch.on("close", () => {
        if (c.ch !== ch) return;
        c.ch = undefined;
        resume(c, l, 1000); // closed by the broker on a live connection (not by stop(), not a reconnect)
      });
      c.ch = ch;
      const ok = await ch.consume(queue, (msg) => {
        if (!msg) return void ch.close().catch(() => {}); // cancelled by the broker (queue deleted): see "close"
        const p = handle(c, ch, msg).finally(() => c.inFlight.delete(p));
        c.inFlight.add(p);
      });
      c.tag = ok.consumerTag;
    } catch (err) {
      c.ch = undefined;
      await ch.close().catch(() => {});
      throw err;
    }
  };

  /** Cancel, let the handlers running finish (and ack), close the channel. */
  const stopConsumer = async (c: Active) => {
    const ch = c.ch;
    c.ch = undefined;
    if (ch && c.tag) await ch.cancel(c.tag).catch(() => {});
    await Promise.allSettled([...c.inFlight]);
    await ch?.close().catch(() => {});
  };

  void open();

  return {
    kind: "rabbitmq",
    publish: (exchange, message) => send(exchange, message.routingKey, message.body, publishOptions(message)),

    async consume(spec, handler): Promise<Consumer> {
      if (spec.maxAttempts < 1) throw new Error("bus: maxAttempts must be at least 1");
      if (!(await connection(opts.connectTimeoutMs ?? 30_000))) throw new Error("bus: not connected to the broker");
      const c: Active = { spec, handler, inFlight: new Set() };
      consumers.add(c);
      try {
        await start(c);
      } catch (err) {
        consumers.delete(c);
        throw err;
      }
      return { stop: async () => void (consumers.delete(c) && (await stopConsumer(c))) };
    },

    // A round trip on the publishing channel (amq.topic always exists).
    healthy: async () =>
      live !== undefined && withTimeout(publisher(live).then((ch) => ch.checkExchange("amq.topic")), 2000, "the health check").then(() => true, () => false),

    async close() {
      closed = true;
      clearTimeout(timer);
      for (const w of waiters) w();
      const all = [...consumers];
      consumers.clear();
      await Promise.allSettled(all.map(stopConsumer));
      const l = live;
      live = undefined;
      await l?.conn.close().catch(() => {});
    },
  };
}
