// What travels on RabbitMQ for the bus (platform/bus/amqp.ts) and its dead-letter tools
// (dead-letters.ts): queue names, the bus's own headers, a BusMessage to and from an
// AMQP message, and the one confirmed, mandatory publish.
import type { ConfirmChannel, Message, Options } from "amqplib";
import { UnroutableMessage, type BusMessage } from "./bus.js";

export const retryQueue = (queue: string, retry: number) => `${queue}.retry.${retry}`;
export const deadLetterQueue = (queue: string) => `${queue}.dlq`;

/**
 * The bus's own headers (never shown to handlers): x-attempt, the number of the next delivery
 * (absent: 1); the original routing key and exchange (retries and replays travel through the
 * default exchange); on dead letters, the failure.
 */
export const HEADER = { attempt: "x-attempt", routingKey: "x-routing-key", exchange: "x-exchange", reason: "x-failure-reason", attempts: "x-attempts", failedAt: "x-failed-at" } as const;
const OURS = new Set<string>(Object.values(HEADER));

export const headerString = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString("utf8") : String(v));
export const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`bus: ${what} timed out after ${ms} ms`)), ms);
    p.then(resolve, reject).finally(() => clearTimeout(t));
  });

/** The producer's headers of a message (without the bus's and the broker's own). */
export function producerHeaders(headers: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (!OURS.has(k) && !/^x-(death|first-death|last-death)/.test(k) && v !== undefined && v !== null) out[k] = headerString(v);
  }
  return out;
}

export function toBusMessage(msg: Message): BusMessage {
  const h = msg.properties.headers ?? {};
  return {
    id: String(msg.properties.messageId ?? ""),
    type: String(msg.properties.type ?? ""),
    routingKey: h[HEADER.routingKey] !== undefined ? headerString(h[HEADER.routingKey]) : msg.fields.routingKey,
    body: new Uint8Array(msg.content.buffer, msg.content.byteOffset, msg.content.byteLength),
    headers: producerHeaders(h),
  };
}

/** Publish options for a message, with extra (bus) headers. */
export function publishOptions(m: Pick<BusMessage, "id" | "type" | "headers">, extra: Record<string, unknown> = {}): Options.Publish {
  return { persistent: true, messageId: m.id, type: m.type, contentType: "application/x-protobuf", headers: { ...m.headers, ...extra } };
}

/** Message ids the broker returned as unroutable on each channel (basic.return comes before the confirm). */
const returned = new WeakMap<ConfirmChannel, Set<string>>();

function returnedOn(ch: ConfirmChannel): Set<string> {
  let ids = returned.get(ch);
  if (!ids) {
    const set = (ids = new Set<string>());
    returned.set(ch, set);
    ch.on("return", (msg: Message) => {
      if (typeof msg.properties.messageId === "string") set.add(msg.properties.messageId);
    });
  }
  return ids;
}

/**
 * Publish with `mandatory` and wait for the broker's confirm: rejects when the broker refuses it,
 * and when no queue took it (returned: UnroutableMessage), so the caller keeps it and tries again.
 */
export function confirmPublish(ch: ConfirmChannel, exchange: string, key: string, body: Uint8Array, opts: Options.Publish, timeoutMs: number): Promise<void> {
  const ids = returnedOn(ch);
  const id = opts.messageId;
  const confirmed = new Promise<void>((resolve, reject) => {
    const content = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    ch.publish(exchange, key, content, { ...opts, mandatory: true }, (err) => {
      if (err) return reject(err instanceof Error ? err : new Error(`bus: the broker refused the message (${err})`));
      if (id !== undefined && ids.delete(id)) return reject(new UnroutableMessage(exchange, key));
      resolve();
    });
  });
  return withTimeout(confirmed, timeoutMs, "the broker's confirm");
}
