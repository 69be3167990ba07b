// SIGTERM to the real process (app/main.ts) while 50 clients are still
// connecting and sending: 25 over HTTP/1.1 (REST login, a new connection per
// request) and 25 over HTTP/2 (gRPC Login on one session each, a new session
// when the server sends GOAWAY). Every request the server took is answered; the
// others are refused cleanly: connection refused, GOAWAY / REFUSED_STREAM before
// the stream was taken, or a 503 / UNAVAILABLE answer. None the server took is
// cut: it says so itself ("server closed", cutRequests 0), and no HTTP/2 stream
// is reset. What the server cannot help: Linux resets the connections still
// waiting in the listen queue when the listener closes (connected by the
// kernel, never accepted by the process); a client sees ECONNRESET before any
// answer byte, on a request nobody read. Those are counted and bounded.
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freshDatabaseUrl, freshRedisUrl } from "../support/fresh.js";
import { startProduct, type RunningProduct } from "../observability/support/child.js";
import { randomBytes } from "node:crypto";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { grpcFrame } from "./wire.js";

type Outcome = "answered" | "refused" | "reset";
/** A login of an unknown account (a new one each time: no per-account throttling), REST JSON or protobuf. */
const someone = () => `load-${randomBytes(6).toString("hex")}@example.com`;
const loginJson = () => JSON.stringify({ email: someone(), password: "correct horse battery" });
function loginProto(): Buffer {
  const email = Buffer.from(someone());
  const password = Buffer.from("correct horse battery");
  return grpcFrame(Buffer.concat([Buffer.from([0x0a, email.length]), email, Buffer.from([0x12, password.length]), password]));
}

function h1Request(port: number): Promise<{ outcome: Outcome; detail: string }> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: "POST", path: "/v1/auth/login", agent: false, headers: { "content-type": "application/json", connection: "close" } },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ outcome: res.statusCode === 503 ? "refused" : "answered", detail: String(res.statusCode) }));
        res.on("error", (e) => resolve({ outcome: "reset", detail: `mid-answer ${e.message}` }));
      },
    );
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ outcome: e.code === "ECONNREFUSED" ? "refused" : "reset", detail: e.code ?? e.message }));
    req.setTimeout(15_000, () => req.destroy(new Error("timeout")));
    req.end(loginJson());
  });
}

/** One HTTP/2 client: Login calls one after another on a session, a new session after GOAWAY. */
async function h2Client(url: string, until: () => boolean, record: (o: Outcome, detail: string) => void): Promise<void> {
  // Streams above a GOAWAY's last stream id were not processed (RFC 9113 6.8): refused, safe to retry.
  const lastTaken = new WeakMap<http2.ClientHttp2Session, number>();
  let session: http2.ClientHttp2Session | undefined;
  for (let i = 0; i < 200 && !until(); i++) {
    if (!session || session.closed || session.destroyed || (session as { goawayReceived?: boolean }).goawayReceived) {
      const s = http2.connect(url);
      s.on("goaway", (_code: number, lastStreamId: number) => {
        (s as { goawayReceived?: boolean }).goawayReceived = true;
        lastTaken.set(s, lastStreamId);
      });
      const ok = await new Promise<string | undefined>((r) => {
        s.once("connect", () => r(undefined));
        s.once("error", (e: NodeJS.ErrnoException) => r(e.code ?? e.message));
      });
      if (ok) {
        record(ok === "ECONNREFUSED" ? "refused" : "reset", `connect ${ok}`);
        if (ok === "ECONNREFUSED") return;
        continue;
      }
      s.on("error", () => {});
      session = s;
    }
    const current = session;
    const result = await new Promise<{ outcome: Outcome; detail: string }>((resolve) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = current.request({ ":method": "POST", ":path": "/acme.auth.v1.AuthService/Login", "content-type": "application/grpc", te: "trailers" });
      } catch (e) {
        return resolve({ outcome: "refused", detail: `not sent: ${(e as NodeJS.ErrnoException).code}` });
      }
      let status: string | undefined;
      stream.on("response", (h) => (status = h["grpc-status"] as string | undefined));
      stream.on("trailers", (t) => (status = t["grpc-status"] as string | undefined));
      stream.on("data", () => {});
      stream.on("error", () => {});
      stream.on("close", () => {
        if (status !== undefined) resolve({ outcome: status === "14" ? "refused" : "answered", detail: `grpc-status ${status}` });
        else if (stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) resolve({ outcome: "refused", detail: "REFUSED_STREAM" });
        else if (stream.id !== undefined && stream.id > (lastTaken.get(current) ?? Infinity)) resolve({ outcome: "refused", detail: "above GOAWAY's last stream" });
        else resolve({ outcome: "reset", detail: `rst ${stream.rstCode}` });
      });
      stream.setTimeout(15_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
      stream.end(loginProto());
    });
    record(result.outcome, result.detail);
  }
  session?.close();
}

describe("platform: SIGTERM under load from 50 clients (HTTP/1.1 and HTTP/2)", function () {
  this.timeout(120_000);
  let product: RunningProduct;
  let dataDir: string;
  const rl = tempRateLimitConfig(GENEROUS_LIMITS);

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "acme-drain-"));
    product = await startProduct([], {
      DATABASE_URL: await freshDatabaseUrl(),
      REDIS_URL: await freshRedisUrl(),
      DATA_DIR: dataDir,
      BCRYPT_COST: "10",
      LOG_LEVEL: "info",
      METRICS_PORT: "off",
      OTEL_SDK_DISABLED: "true",
      SHUTDOWN_GRACE_MS: "10000",
      // Rate limits out of the way: this is about connections, not quotas.
      RATELIMIT_CONFIG: rl.path,
    });
  });
  after(async () => {
    await product?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    rl.remove();
  });

  it("answers or cleanly refuses every request; cuts none it took", async () => {
    const port = Number(new URL(product.url).port);
    const counts: Record<Outcome, number> = { answered: 0, refused: 0, reset: 0 };
    const details: Record<string, number> = {};
    const record = (o: Outcome, d: string) => {
      counts[o]++;
      details[`${o}: ${d}`] = (details[`${o}: ${d}`] ?? 0) + 1;
    };
    let exited = false;
    const exit = new Promise<number | null>((r) => product.child.once("exit", (code) => ((exited = true), r(code))));
    const t0 = Date.now();
    const stopAt = () => exited || Date.now() - t0 > 30_000;
    let afterSignal = 0;
    let signalled = false;

    const h1Client = async () => {
      for (let i = 0; i < 200 && !stopAt(); i++) {
        const r = await h1Request(port);
        if (signalled) afterSignal++;
        record(r.outcome, r.detail);
        if (r.detail === "ECONNREFUSED") return;
      }
    };
    const clients = [
      ...Array.from({ length: 25 }, () => h1Client()),
      ...Array.from({ length: 25 }, () => h2Client(product.url, stopAt, (o, d) => (signalled && afterSignal++, record(o, d)))),
    ];
    await new Promise((r) => setTimeout(r, 1500));
    const before = { ...counts };
    signalled = true;
    product.child.kill("SIGTERM");
    const code = await exit;
    await Promise.all(clients);
    console.log(`      before SIGTERM: ${before.answered} answered; after: ${JSON.stringify(details)}; exit ${code}`);
    assert.equal(code, 0);
    assert.ok(before.answered >= 20, `load was running (${before.answered} answered before SIGTERM)`);
    assert.ok(counts.refused > 0, "some requests came after the port closed and were refused");
    const closed = product.logs().find((l) => l.msg === "server closed");
    assert.ok(closed, "the server logged its close");
    assert.equal(closed.cutRequests, 0, "requests the server took and cut at close");
    // Only connections reset before any answer (the listen queue at close), at most one per client.
    const resets = Object.entries(details).filter(([k]) => k.startsWith("reset:"));
    const queueResets = resets.filter(([k]) => k === "reset: ECONNRESET" || k === "reset: connect ECONNRESET");
    assert.deepEqual(resets, queueResets, `resets other than a queued connection's: ${JSON.stringify(details)}`);
    assert.ok(counts.reset <= 50, `at most one reset connection per client: ${JSON.stringify(details)}`);
  });
});
