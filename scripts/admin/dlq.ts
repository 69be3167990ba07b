// `npm run admin -- dlq <list|show|replay|purge> --queue <consumer queue> ...`: a
// consumer's dead letters on RabbitMQ (AMQP_URL), through platform/bus/dead-letters.ts.
//   dlq list   --queue Q [--limit N]   one JSON line per dead letter (id, type, routing key, reason, attempts, when)
//   dlq show   --queue Q --id ID       the one dead letter, with its headers
//   dlq replay --queue Q [--id ID]     back to the consumer's queue as first deliveries (all, or one)
//   dlq purge  --queue Q               drop them all
import { connect } from "amqplib";
import { listDeadLetters, purgeDeadLetters, replayDeadLetters, showDeadLetter } from "../../platform/bus/dead-letters.js";
import type { DeadLetter } from "../../platform/bus/bus.js";

export const DLQ_USAGE = "npm run admin -- dlq <list|show|replay|purge> --queue <queue> [--id <event id>] [--limit <n>]   (AMQP_URL)";

export class DlqUsageError extends Error {}

const summary = (d: DeadLetter) => ({
  id: d.message.id, type: d.message.type, routingKey: d.message.routingKey, exchange: d.exchange, reason: d.reason, attempts: d.attempts, failedAt: d.failedAt,
});

export async function deadLetterCommand(sub: string, flags: Map<string, string | true>, amqpUrl: string | undefined, print: (line: string) => void): Promise<void> {
  if (!["list", "show", "replay", "purge"].includes(sub)) throw new DlqUsageError(`dlq: unknown subcommand "${sub}"; ${DLQ_USAGE}`);
  if (!amqpUrl) throw new DlqUsageError("dlq: AMQP_URL is required (the broker the services publish to)");
  const queue = flags.get("queue");
  if (typeof queue !== "string" || !queue) throw new DlqUsageError("dlq: --queue <consumer queue> is required");
  const id = flags.get("id");
  const conn = await connect(amqpUrl);
  try {
    if (sub === "list") {
      const limit = Number(flags.get("limit") ?? 100);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new DlqUsageError("dlq: --limit must be an integer from 1 to 10000");
      for (const d of await listDeadLetters(conn, queue, limit)) print(JSON.stringify(summary(d)));
    } else if (sub === "show") {
      if (typeof id !== "string") throw new DlqUsageError("dlq show: --id <event id> is required");
      const d = await showDeadLetter(conn, queue, id);
      if (!d) throw new DlqUsageError(`dlq show: no dead letter ${id} in ${queue}`);
      print(JSON.stringify({ ...summary(d), headers: d.message.headers, bytes: d.message.body.length }));
    } else if (sub === "replay") {
      const moved = await replayDeadLetters(conn, queue, typeof id === "string" ? { ids: [id] } : {});
      print(JSON.stringify({ replayed: moved, queue }));
    } else {
      print(JSON.stringify({ purged: await purgeDeadLetters(conn, queue), queue }));
    }
  } finally {
    await conn.close().catch(() => {});
  }
}
