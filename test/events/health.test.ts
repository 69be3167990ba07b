// GET /health reports the message broker and each outbox's lag: a broker down
// degrades the report (200, status "degraded") while the API keeps working and
// the events wait; a lag above HEALTH_OUTBOX_LAG_MAX_MS degrades it too; both
// back to "up" once the events are published.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { memoryBus, type MemoryBus } from "../../platform/bus/memory.js";
import type { HealthReport } from "../../platform/telemetry/health.js";
import { startTestSystem, type TestSystem } from "../support/system.js";

async function health(url: string): Promise<{ status: number; body: HealthReport }> {
  const res = await fetch(`${url}/health`);
  return { status: res.status, body: (await res.json()) as HealthReport };
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("events: /health shows the broker and the outbox lag", function () {
  this.timeout(30_000);
  let t: TestSystem;
  let bus: MemoryBus;

  before(async () => {
    bus = memoryBus();
    t = await startTestSystem({ bus, env: { HEALTH_OUTBOX_LAG_MAX_MS: "300", OUTBOX_MAX_BACKOFF_MS: "100" } });
  });
  after(async () => {
    await t?.stop();
    await bus?.close();
  });

  it("is up with the broker and every outbox's lag while all is published", async () => {
    const h = await health(t.url);
    assert.equal(h.status, 200);
    assert.equal(h.body.status, "up");
    assert.deepEqual({ status: h.body.dependencies.broker.status, kind: h.body.dependencies.broker.kind }, { status: "up", kind: "memory" });
    assert.equal(h.body.services.auth.outbox_lag_ms, 0);
    assert.equal(h.body.services.order.outbox_lag_ms, 0);
    assert.equal(h.body.services.user.outbox_lag_ms, undefined, "the user service has no outbox");
  });

  it("is degraded (200) while the broker is down, shows the lag growing, and up again once the events are out", async () => {
    bus.down(true);
    try {
      const down = await health(t.url);
      assert.equal(down.status, 200, "the API keeps working: degraded, not down");
      assert.equal(down.body.status, "degraded");
      assert.equal(down.body.dependencies.broker.status, "down");
      // A registration while the broker is down: its UserRegistered waits in auth's outbox.
      await t.auth().register({ email: `h-${randomUUID()}@example.com`, password: "correct horse battery staple", name: "H" });
      const lagging = await eventually("the lag to pass the limit", async () => {
        const h = await health(t.url);
        return (h.body.services.auth.outbox_lag_ms ?? 0) > 300 ? h : undefined;
      });
      assert.equal(lagging.body.status, "degraded");
      assert.equal(lagging.body.services.order.outbox_lag_ms, 0);
    } finally {
      bus.down(false);
    }
    const up = await eventually("the report to be up again", async () => {
      const h = await health(t.url);
      return h.body.status === "up" ? h : undefined;
    });
    assert.equal(up.status, 200);
    assert.equal(up.body.services.auth.outbox_lag_ms, 0);
  });
});
