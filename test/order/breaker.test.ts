// platform/breaker.ts as a unit: the breaker's states on a fake clock and the
// retry interceptor's bounds, against a fake "next" (no network, no timing).
import { strict as assert } from "node:assert";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { CircuitBreaker, isCircuitOpen, retryInterceptor, type BreakerState } from "../../platform/breaker.js";

const unavailable = () => new ConnectError("down", Code.Unavailable);

describe("platform/breaker: CircuitBreaker", () => {
  let now = 0;
  let changes: BreakerState[];
  let breaker: CircuitBreaker;
  beforeEach(() => {
    now = 1_000;
    changes = [];
    breaker = new CircuitBreaker({ name: "dep", failureThreshold: 3, resetTimeoutMs: 1000, now: () => now, onStateChange: (s) => changes.push(s) });
  });
  const fail = () => breaker.run(() => Promise.reject(unavailable()));
  const ok = () => breaker.run(() => Promise.resolve("ok"));

  it("opens after N consecutive failures and then fails fast without calling", async () => {
    for (let i = 0; i < 3; i++) await assert.rejects(fail(), { code: Code.Unavailable, rawMessage: "down" });
    assert.equal(breaker.state, "open");
    let called = false;
    await assert.rejects(
      breaker.run(async () => ((called = true), "x")),
      (e: ConnectError) => e.code === Code.Unavailable && /circuit open/.test(e.rawMessage) && isCircuitOpen(e),
    );
    assert.equal(called, false);
    assert.equal(isCircuitOpen(unavailable()), false);
  });

  it("a success resets the count; answers like NOT_FOUND count as success", async () => {
    await assert.rejects(fail());
    await assert.rejects(fail());
    await ok();
    await assert.rejects(fail());
    await assert.rejects(breaker.run(() => Promise.reject(new ConnectError("x", Code.NotFound))), { code: Code.NotFound });
    await assert.rejects(fail());
    await assert.rejects(fail());
    assert.equal(breaker.state, "closed");
  });

  it("half-open lets exactly one probe through; its success closes the circuit", async () => {
    for (let i = 0; i < 3; i++) await assert.rejects(fail());
    now += 1000;
    assert.equal(breaker.state, "half-open");
    let release!: (v: string) => void;
    const probe = breaker.run(() => new Promise<string>((r) => (release = r)));
    // A second call while the probe is out fails fast.
    await assert.rejects(ok(), /circuit open/);
    release("fine");
    assert.equal(await probe, "fine");
    assert.equal(breaker.state, "closed");
    assert.equal(await ok(), "ok");
    assert.deepEqual(changes, ["open", "half-open", "closed"]);
  });

  it("a failed probe opens the circuit again for another pause", async () => {
    for (let i = 0; i < 3; i++) await assert.rejects(fail());
    now += 1000;
    await assert.rejects(fail(), { rawMessage: "down" });
    assert.equal(breaker.state, "open");
    now += 999;
    await assert.rejects(ok(), /circuit open/);
    now += 1;
    assert.equal(await ok(), "ok");
    assert.deepEqual(changes, ["open", "half-open", "open", "half-open", "closed"]);
  });

  it("DEADLINE_EXCEEDED counts as a failure, INVALID_ARGUMENT does not", async () => {
    for (let i = 0; i < 3; i++) await assert.rejects(breaker.run(() => Promise.reject(new ConnectError("x", Code.InvalidArgument))));
    assert.equal(breaker.state, "closed");
    for (let i = 0; i < 3; i++) await assert.rejects(breaker.run(() => Promise.reject(new ConnectError("x", Code.DeadlineExceeded))));
    assert.equal(breaker.state, "open");
  });
});

describe("platform/breaker: retryInterceptor", () => {
  // A fake unary call through the interceptor: `results` are consumed per attempt.
  const call = (interceptor: Interceptor, results: (Error | "ok")[], signal = new AbortController().signal) => {
    let attempts = 0;
    const next = async () => {
      const r = results[attempts++];
      if (r === "ok") return { stream: false, message: {} } as never;
      throw r;
    };
    const run = interceptor(next as never);
    return { promise: run({ stream: false, signal } as never), attempts: () => attempts };
  };

  it("retries UNAVAILABLE up to the attempt bound, then gives up with the last error", async () => {
    const c = call(retryInterceptor({ attempts: 3, baseDelayMs: 1 }), [unavailable(), unavailable(), unavailable(), "ok"]);
    await assert.rejects(c.promise, { code: Code.Unavailable });
    assert.equal(c.attempts(), 3);
  });

  it("succeeds when a retry succeeds", async () => {
    const c = call(retryInterceptor({ attempts: 3, baseDelayMs: 1 }), [unavailable(), "ok"]);
    await c.promise;
    assert.equal(c.attempts(), 2);
  });

  it("does not retry other codes (INTERNAL, DEADLINE_EXCEEDED, PERMISSION_DENIED)", async () => {
    for (const code of [Code.Internal, Code.DeadlineExceeded, Code.PermissionDenied]) {
      const c = call(retryInterceptor({ attempts: 5, baseDelayMs: 1 }), [new ConnectError("x", code), "ok"]);
      await assert.rejects(c.promise, { code });
      assert.equal(c.attempts(), 1);
    }
  });

  it("stops retrying once the call's deadline/abort signal fires", async () => {
    const ac = new AbortController();
    ac.abort();
    const c = call(retryInterceptor({ attempts: 5, baseDelayMs: 1 }), [unavailable(), "ok"], ac.signal);
    await assert.rejects(c.promise, { code: Code.Unavailable });
    assert.equal(c.attempts(), 1);
  });
});
