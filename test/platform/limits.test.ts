// Connection limits of the one port (platform/server.ts, SERVER_* in platform/config.ts):
// stalled and slow clients are closed by timeouts while others keep being served, idle
// HTTP/2 sessions go but one with an open stream stays, connections over the limit are
// closed at once, and HTTP/2 advertises the stream limit.
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import net from "node:net";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { HealthState, registerHealth } from "../../platform/health.js";
import { silentLogger } from "../../platform/logger.js";
import { startServer, type RunningServer } from "../../platform/server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP connection and a promise of when the server closed it (ms after opening). */
function connect(port: number, send?: string): Promise<{ socket: net.Socket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = net.connect(port, "127.0.0.1", () => {
      if (send) socket.write(send);
      resolve({ socket, closed: new Promise((r) => socket.once("close", () => r(Date.now() - t0))) });
    });
    socket.on("error", () => {});
    socket.once("error", reject);
  });
}

describe("platform: connection limits", function () {
  this.timeout(30_000);
  let server: RunningServer;
  const state = new HealthState();
  state.set("svc", Status.SERVING);
  const limits = { headersTimeoutMs: 500, requestTimeoutMs: 1000, idleTimeoutMs: 800, maxConnections: 300, maxConcurrentStreams: 7 };

  before(async () => {
    server = await startServer({ port: 0, host: "127.0.0.1", routes: (r) => registerHealth(r, state), limits, log: silentLogger });
  });
  after(async () => server?.close(100));

  const check = () => createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}` })).check({ service: "svc" }, { timeoutMs: 1000 });

  it("closes 200 connections that send nothing after the headers timeout, answering another client meanwhile within 1 s", async () => {
    const stalled = await Promise.all(Array.from({ length: 200 }, () => connect(server.port)));
    const t0 = Date.now();
    assert.equal((await check()).status, Status.SERVING);
    assert.ok(Date.now() - t0 < 1000, `answered in ${Date.now() - t0} ms`);
    const closedAfter = await Promise.all(stalled.map((c) => c.closed));
    assert.ok(Math.max(...closedAfter) < 3000, `all closed by ${Math.max(...closedAfter)} ms`);
    assert.ok(Math.min(...closedAfter) >= 400, `none before the timeout (${Math.min(...closedAfter)} ms)`);
  });

  it("closes an HTTP/1.1 request whose headers never finish (slowloris)", async () => {
    const c = await connect(server.port, "GET /health HTTP/1.1\r\nhost: x\r\n");
    const trickle = setInterval(() => c.socket.write("x-slow: 1\r\n"), 100);
    try {
      const at = await c.closed;
      assert.ok(at < 3000, `closed after ${at} ms`);
    } finally {
      clearInterval(trickle);
    }
  });

  it("closes an idle HTTP/2 session, keeps one with an open stream, and advertises the stream limit", async () => {
    const idle = http2.connect(`http://127.0.0.1:${server.port}`);
    const settings = await new Promise<http2.Settings>((r) => idle.once("remoteSettings", r));
    assert.equal(settings.maxConcurrentStreams, 7);
    const idleClosed = new Promise<void>((r) => idle.once("close", r));

    const busy = http2.connect(`http://127.0.0.1:${server.port}`);
    let busyClosed = false;
    busy.once("close", () => (busyClosed = true));
    busy.on("error", () => {});
    // A Watch stream: open, no message for longer than the idle timeout.
    const frame = Buffer.from([0, 0, 0, 0, 5, 0x0a, 0x03, 0x73, 0x76, 0x63]);
    const watch = busy.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Watch", "content-type": "application/grpc", te: "trailers" });
    watch.on("error", () => {});
    watch.resume();
    watch.end(frame);
    await Promise.race([idleClosed, sleep(5000).then(() => assert.fail("the idle session was not closed"))]);
    await sleep(limits.idleTimeoutMs + 400);
    assert.equal(busyClosed, false, "the session with an open Watch stays");
    watch.close();
    busy.close();
  });

  it("closes connections over the limit at once and serves again when there is room", async () => {
    const small = await startServer({ port: 0, host: "127.0.0.1", routes: (r) => registerHealth(r, state), limits: { ...limits, maxConnections: 3, headersTimeoutMs: 5000 }, log: silentLogger });
    try {
      const held = await Promise.all([0, 1, 2].map(() => connect(small.port)));
      await sleep(50);
      const over = await connect(small.port);
      const at = await Promise.race([over.closed, sleep(2000).then(() => -1)]);
      assert.ok(at >= 0 && at < 1000, `the 4th connection closed at once (${at} ms)`);
      for (const h of held) h.socket.destroy();
      await sleep(100);
      const ok = await createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${small.port}` })).check({ service: "svc" }, { timeoutMs: 1000 });
      assert.equal(ok.status, Status.SERVING);
    } finally {
      await small.close(100);
    }
  });
});
