// The dead letters of a consumer queue (<queue>.dlq, see platform/bus/amqp.ts): list and
// show them without taking them off the queue, replay them to the consumer's queue (with
// the attempt count reset), purge them. Functions over an amqplib connection; the admin
// CLI connects and calls them.
//
// Browsing: messages are fetched with basic.get without acking, then the channel is
// closed, which puts every unacked one back (in its place). Nothing else consumes a DLQ.
import type { ChannelModel, GetMessage } from "amqplib";
import type { BusMessage, DeadLetter } from "./bus.js";
import { confirmPublish, deadLetterQueue, HEADER, headerString, publishOptions, toBusMessage } from "./amqp-message.js";

function deadLetter(msg: GetMessage): DeadLetter {
  const h = msg.properties.headers ?? {};
  const str = (k: string) => (h[k] === undefined ? "" : headerString(h[k]));
  return { message: toBusMessage(msg), exchange: str(HEADER.exchange), reason: str(HEADER.reason), attempts: Number(h[HEADER.attempts] ?? 0), failedAt: str(HEADER.failedAt) };
}

/**
 * Walk the DLQ once from its head (at most the messages it holds now, and at most limit):
 * visit gets each message and says whether it was taken (acked); the rest go back.
 */
async function walk(conn: ChannelModel, queue: string, limit: number, visit: (msg: GetMessage) => Promise<boolean>): Promise<void> {
  const ch = await conn.createConfirmChannel();
  try {
    const { messageCount } = await ch.checkQueue(deadLetterQueue(queue));
    for (let i = 0; i < Math.min(messageCount, limit); i++) {
      const msg = await ch.get(deadLetterQueue(queue), { noAck: false });
      if (!msg) break;
      if (await visit(msg)) ch.ack(msg);
    }
  } finally {
    await ch.close().catch(() => {}); // requeues what was not acked
  }
}

/** The dead letters of the consumer queue, oldest first, at most limit (default 100). */
export async function listDeadLetters(conn: ChannelModel, queue: string, limit = 100): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  await walk(conn, queue, limit, async (msg) => {
    out.push(deadLetter(msg));
    return false;
  });
  return out;
}

/** One dead letter by message id. */
export async function showDeadLetter(conn: ChannelModel, queue: string, id: string): Promise<DeadLetter | undefined> {
  let found: DeadLetter | undefined;
  await walk(conn, queue, Number.MAX_SAFE_INTEGER, async (msg) => {
    if (!found && msg.properties.messageId === id) found = deadLetter(msg);
    return false;
  });
  return found;
}

export interface ReplayOptions {
  /** Only these message ids (default: all). */
  ids?: readonly string[];
  /** Per message. Default 5000. */
  confirmTimeoutMs?: number;
}

/**
 * Move dead letters back to the consumer's queue, as first deliveries (attempt count and
 * failure headers dropped, routing key kept). Each is confirmed there before it is acked
 * here, so none is lost. Returns how many were moved.
 */
export async function replayDeadLetters(conn: ChannelModel, queue: string, opts: ReplayOptions = {}): Promise<number> {
  const ids = opts.ids ? new Set(opts.ids) : undefined;
  const pub = await conn.createConfirmChannel();
  let moved = 0;
  try {
    await walk(conn, queue, Number.MAX_SAFE_INTEGER, async (msg) => {
      if (ids && !ids.has(String(msg.properties.messageId))) return false;
      const d = deadLetter(msg);
      const keep = { [HEADER.routingKey]: d.message.routingKey, [HEADER.exchange]: d.exchange };
      await confirmPublish(pub, "", queue, d.message.body, publishOptions(d.message, keep), opts.confirmTimeoutMs ?? 5000);
      moved++;
      return true;
    });
  } finally {
    await pub.close().catch(() => {});
  }
  return moved;
}

/** Drop every dead letter of the consumer queue; returns how many there were. */
export async function purgeDeadLetters(conn: ChannelModel, queue: string): Promise<number> {
  const ch = await conn.createChannel();
  try {
    return (await ch.purgeQueue(deadLetterQueue(queue))).messageCount;
  } finally {
    await ch.close().catch(() => {});
  }
}
