// Events through outbox, RabbitMQ and an idempotent consumer (bench/events.ts),
// as rows of the bench's table: each product row as a ratio to amqplib
// publishing the same messages alone (confirms pipelined) in the same run.
import { eventsBench } from "../events.js";
import type { Row } from "./report.js";

/** Events per run (BENCH_EVENTS, default 5000). */
const COUNT = Number(process.env.BENCH_EVENTS ?? 5000);

export async function eventScenarios(): Promise<Row[]> {
  const results = await eventsBench(COUNT);
  const ceiling = results.find((r) => r.scenario.includes("pipelined"))!.eventsPerSec;
  return [
    { scenario: `Events (${COUNT} per run; events/s in the req/s column)`, note: "bench/events.ts" },
    ...results.map((r) => ({
      scenario: `  ${r.scenario}`,
      rps: r.eventsPerSec,
      runs: 1,
      ratio: r.eventsPerSec / ceiling,
      ratioOf: "amqplib alone, pipelined",
      note: r.note,
    })),
  ];
}
